#!/usr/bin/env python3
"""FAKE services for the sanctum demo and tests: a fake Telegram Bot API and fake app health.

THIS IS A FAKE. It is not Telegram and talks to nothing outside this process. It stands in for

* the Telegram Bot API (https://core.telegram.org/bots/api) at ``/bot<token>/<method>``, for the
  bot-profile methods the BotFather plugin uses (getMe, set/getMyName, set/getMyDescription,
  set/getMyShortDescription, set/get/deleteMyCommands, set/getChatMenuButton,
  set/getMyDefaultAdministratorRights, setWebhook/deleteWebhook/getWebhookInfo), with state
  kept in memory per token and Telegram-like validation and error descriptions;
* application health endpoints ``GET /apps/<app>/<environment>/health``, which report the
  version that ``demo/deploy-demo.sh`` wrote into ``--apps-dir``;
* a test-support route ``GET /_fake/requests``: every call made with a known token (also the
  ones answered 400/404), in order, as ``{"method", "params"}``. ``method`` is the canonical
  spelling when the method exists; ``params`` are as received (form/query values stay
  strings), with ``secret_token`` replaced by ``"<redacted>"``.

Every response carries the header ``X-Fake-Service: sanctum-demo``.

Usage::

    python3 demo/fake_services.py [--host 127.0.0.1] [--port 0] --token TOKEN [--token T2 ...]
                                  [--apps-dir DIR]

Tokens may instead come from ``FAKE_BOT_TOKEN`` (comma-separated). After binding, the one line
``fake services listening on http://HOST:PORT`` is printed to stdout; request logs go to stderr.
SIGTERM/SIGINT stop it with exit status 0.

What it must not do: print or log a bot token (log lines show ``<token>`` instead), echo a
webhook ``secret_token`` back, read or write anything but ``--apps-dir`` (read-only), or make
any outgoing connection. Python 3 standard library only.
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

FAKE_HEADER = ("X-Fake-Service", "sanctum-demo")
TOKEN_RE = re.compile(r"^([0-9]{1,20}):([A-Za-z0-9_-]{1,200})$")
BOT_PATH_RE = re.compile(r"^/bot([^/]*)/([^/]*)$")
HEALTH_PATH_RE = re.compile(r"^/apps/([^/]+)/([^/]+)/health$")
SAFE_COMPONENT_RE = re.compile(r"^[a-z0-9_-]+$")
COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
LANG_RE = re.compile(r"^[a-z]{2}$")
MAX_BODY = 1 << 20  # 1 MiB: far above anything these methods take

SCOPE_TYPES = {
    # scope type -> the extra fields it requires
    "default": (), "all_private_chats": (), "all_group_chats": (),
    "all_chat_administrators": (), "chat": ("chat_id",),
    "chat_administrators": ("chat_id",), "chat_member": ("chat_id", "user_id"),
}
ADMIN_RIGHTS = (
    "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
    "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
    "can_post_stories", "can_edit_stories", "can_delete_stories", "can_post_messages",
    "can_edit_messages", "can_pin_messages", "can_manage_topics",
)
DEFAULT_BOT_NAME = "Demo Bot"


class BadRequest(Exception):
    """A 400 answer; the message is the text after "Bad Request: "."""


# --- parameter helpers: Telegram accepts JSON values, or strings in form/query mode ---------

def p_str(params, name, max_len, required=False):
    """A string parameter (absent -> None unless required); numbers/bools are stringified."""
    value = params.get(name)
    if value is None:
        if required:
            raise BadRequest(f'parameter "{name}" is required')
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (int, float)):
        value = str(value)
    elif not isinstance(value, str):
        raise BadRequest(f'field "{name}" must be of type String')
    if len(value) > max_len:
        raise BadRequest(f"{name} is too long")
    return value


def p_bool(params, name):
    value = params.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0", ""):
        return value.lower() in ("true", "1")
    raise BadRequest(f'field "{name}" must be of type Boolean')


def p_int(params, name):
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value.strip()):
        return int(value)
    raise BadRequest(f'field "{name}" must be of type Integer')


def p_json(params, name, kind):
    """An object/array parameter; in form/query mode it arrives as a JSON-encoded string."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadRequest(f"can't parse {name} JSON object") from None
    if not isinstance(value, kind):
        raise BadRequest(f"can't parse {name} JSON object")
    return value


def p_lang(params):
    lang = p_str(params, "language_code", 16) or ""
    if lang and not LANG_RE.match(lang):
        raise BadRequest("invalid language code specified")
    return lang


def chat_id_value(value):
    """Canonical chat_id: an integer, or an @username string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        if re.fullmatch(r"-?[0-9]{1,20}", value):
            return int(value)
        if re.fullmatch(r"@[A-Za-z0-9_]{4,32}", value):
            return value
    raise BadRequest("chat not found")


def parse_scope(params):
    """BotCommandScope -> canonical JSON string (sorted keys, only the fields of its type)."""
    scope = p_json(params, "scope", dict)
    if scope is None:
        return json.dumps({"type": "default"})
    kind = scope.get("type")
    if kind not in SCOPE_TYPES:
        raise BadRequest("can't parse BotCommandScope: unsupported type")
    canon = {"type": kind}
    for field in SCOPE_TYPES[kind]:
        if scope.get(field) is None:
            raise BadRequest(f"{field} is empty")
        canon[field] = (chat_id_value(scope[field]) if field == "chat_id"
                        else p_int(scope, field))
    return json.dumps(canon, sort_keys=True)


def parse_commands(params):
    commands = p_json(params, "commands", list)
    if commands is None:
        raise BadRequest('parameter "commands" is required')
    if len(commands) > 100:
        raise BadRequest("BOT_COMMANDS_TOO_MUCH")
    out = []
    for item in commands:
        if not isinstance(item, dict):
            raise BadRequest("can't parse BotCommand JSON object")
        command, description = item.get("command"), item.get("description")
        if not isinstance(command, str) or not command:
            raise BadRequest("command is empty")
        if not COMMAND_RE.match(command):
            raise BadRequest("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not description.strip():
            raise BadRequest("command description is empty")
        if len(description) > 256:
            raise BadRequest("BOT_COMMAND_DESCRIPTION_INVALID")
        out.append({"command": command, "description": description})
    return out


def parse_menu_button(params):
    button = p_json(params, "menu_button", dict)
    if button is None:
        return {"type": "default"}
    kind = button.get("type")
    if kind in ("default", "commands"):
        return {"type": kind}
    if kind != "web_app":
        raise BadRequest("can't parse menu button: unsupported type")
    text, web_app = button.get("text"), button.get("web_app")
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("menu button text is empty")
    url = web_app.get("url") if isinstance(web_app, dict) else None
    if not isinstance(url, str) or not url:
        raise BadRequest("menu button Web App URL is empty")
    if not url.lower().startswith("https://") or len(url) <= len("https://"):
        raise BadRequest(f"menu button Web App URL '{url}' is invalid: "
                         "Only HTTPS links are allowed")
    return {"type": "web_app", "text": text, "web_app": {"url": url}}


# --- the fake bot ---------------------------------------------------------------------------

class FakeBot:
    """In-memory state of one bot (one token). Callers hold FakeServices.lock."""

    def __init__(self, token, username):
        self.id = int(token.split(":", 1)[0])
        self.username = username
        self.names = {}          # language_code ("" = default) -> name
        self.descriptions = {}   # language_code -> description
        self.short_descriptions = {}
        self.commands = {}       # (canonical scope JSON, language_code) -> [BotCommand]
        self.menu_buttons = {}   # chat_id or None (bot default) -> MenuButton
        self.admin_rights = {False: {}, True: {}}  # for_channels -> {right: True}
        self.webhook = None      # dict while a webhook is set

    def localized(self, table, lang, default=""):
        return table.get(lang) or table.get("") or default

    def call(self, method, params):
        """Run one Bot API method; returns (result, description or None)."""
        handler = getattr(self, "m_" + method)
        return handler(params)

    def m_getMe(self, params):
        return {
            "id": self.id, "is_bot": True,
            "first_name": self.localized(self.names, "", DEFAULT_BOT_NAME),
            "username": self.username, "can_join_groups": True,
            "can_read_all_group_messages": False, "supports_inline_queries": False,
            "can_connect_to_business": False, "has_main_web_app": False,
        }, None

    def _set_text(self, table, params, field, max_len):
        value, lang = p_str(params, field, max_len), p_lang(params)
        if value:
            table[lang] = value
        else:
            table.pop(lang, None)  # empty or absent removes the text for that language
        return True, None

    def m_setMyName(self, params):
        return self._set_text(self.names, params, "name", 64)

    def m_getMyName(self, params):
        return {"name": self.localized(self.names, p_lang(params), DEFAULT_BOT_NAME)}, None

    def m_setMyDescription(self, params):
        return self._set_text(self.descriptions, params, "description", 512)

    def m_getMyDescription(self, params):
        return {"description": self.localized(self.descriptions, p_lang(params))}, None

    def m_setMyShortDescription(self, params):
        return self._set_text(self.short_descriptions, params, "short_description", 120)

    def m_getMyShortDescription(self, params):
        text = self.localized(self.short_descriptions, p_lang(params))
        return {"short_description": text}, None

    def m_setMyCommands(self, params):
        commands = parse_commands(params)
        key = (parse_scope(params), p_lang(params))
        if commands:
            self.commands[key] = commands
        else:
            self.commands.pop(key, None)
        return True, None

    def m_getMyCommands(self, params):
        return list(self.commands.get((parse_scope(params), p_lang(params)), [])), None

    def m_deleteMyCommands(self, params):
        self.commands.pop((parse_scope(params), p_lang(params)), None)
        return True, None

    def m_setChatMenuButton(self, params):
        chat = params.get("chat_id")
        chat = None if chat in (None, "") else chat_id_value(chat)
        button = parse_menu_button(params)
        if button["type"] == "default":
            self.menu_buttons.pop(chat, None)
        else:
            self.menu_buttons[chat] = button
        return True, None

    def m_getChatMenuButton(self, params):
        chat = params.get("chat_id")
        chat = None if chat in (None, "") else chat_id_value(chat)
        return dict(self.menu_buttons.get(chat, {"type": "default"})), None

    def m_setMyDefaultAdministratorRights(self, params):
        rights = p_json(params, "rights", dict) or {}
        granted = {}
        for name, value in rights.items():
            if name in ADMIN_RIGHTS:
                if not isinstance(value, bool):
                    raise BadRequest(f'field "{name}" must be of type Boolean')
                if value:
                    granted[name] = True
        self.admin_rights[p_bool(params, "for_channels")] = granted
        return True, None

    def m_getMyDefaultAdministratorRights(self, params):
        granted = self.admin_rights[p_bool(params, "for_channels")]
        return {name: granted.get(name, False) for name in ADMIN_RIGHTS}, None

    def m_setWebhook(self, params):
        url = p_str(params, "url", 2048) or ""  # Telegram treats a missing url like ""
        if not url:
            return self.m_deleteWebhook(params)
        parts = urlsplit(url)
        if parts.scheme.lower() != "https" or not parts.hostname:
            raise BadRequest("bad webhook: An HTTPS URL must be provided for webhook")
        try:
            port = parts.port or 443
        except ValueError:
            raise BadRequest("bad webhook: Failed to parse port number") from None
        if port not in (80, 88, 443, 8443):
            raise BadRequest("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = p_str(params, "secret_token", 256)
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise BadRequest("bad webhook: Secret token contains unallowed characters")
        max_connections = p_int(params, "max_connections")
        if max_connections is not None and not 1 <= max_connections <= 100:
            raise BadRequest("bad webhook: max_connections must be between 1 and 100")
        allowed = p_json(params, "allowed_updates", list)
        if allowed is not None and not all(isinstance(u, str) for u in allowed):
            raise BadRequest("can't parse allowed_updates JSON object")
        ip_address = p_str(params, "ip_address", 64)
        hook = {"url": url, "max_connections": max_connections or 40}
        if allowed is not None:
            hook["allowed_updates"] = allowed
        if ip_address:
            hook["ip_address"] = ip_address
        already = self.webhook is not None and self.webhook["url"] == url
        self.webhook = hook  # the secret_token is deliberately not kept
        return True, ("Webhook is already set" if already else "Webhook was set")

    def m_deleteWebhook(self, params):
        p_bool(params, "drop_pending_updates")  # validated; there are never pending updates
        was_set, self.webhook = self.webhook is not None, None
        return True, ("Webhook was deleted" if was_set else "Webhook is already deleted")

    def m_getWebhookInfo(self, params):
        info = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        if self.webhook:
            info.update(self.webhook)
        return info, None


# Method names are case-insensitive in the real Bot API; map lower-case -> canonical spelling.
METHODS = {name[2:].lower(): name[2:] for name in dir(FakeBot) if name.startswith("m_")}


class FakeServices:
    """All shared state: the bots by token, the request journal, the apps directory."""

    def __init__(self, tokens, apps_dir):
        self.lock = threading.Lock()
        self.bots = {}
        for index, token in enumerate(tokens):
            bot_id = token.split(":", 1)[0]
            username = "demo_sanctum_bot" if index == 0 else f"fake_{bot_id}_bot"
            self.bots[token] = FakeBot(token, username)
        self.tokens = sorted(self.bots, key=len, reverse=True)  # for log redaction
        self.journal = []
        self.apps_dir = apps_dir

    def bot_api(self, token, method_name, params):
        """Returns (HTTP status, JSON body) for one /bot<token>/<method> call."""
        with self.lock:
            bot = self.bots.get(token)
            if bot is None:
                return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            method = METHODS.get(method_name.lower())
            recorded = {k: ("<redacted>" if k == "secret_token" else v) for k, v in params.items()}
            self.journal.append({"method": method or method_name, "params": recorded})
            if method is None:
                return 404, {"ok": False, "error_code": 404,
                             "description": "Not Found: method not found"}
            try:
                result, description = bot.call(method, params)
            except BadRequest as err:
                return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {err}"}
            body = {"ok": True, "result": result}
            if description:
                body["description"] = description
            return 200, body

    def health(self, app, environment):
        base = {"app": app, "environment": environment}
        if not (SAFE_COMPONENT_RE.match(app) and SAFE_COMPONENT_RE.match(environment)):
            return 404, {"status": "not found"}
        if not self.apps_dir:
            return 503, {"status": "down", **base, "reason": "no --apps-dir configured"}
        path = os.path.join(self.apps_dir, f"{app}.{environment}.version")
        try:
            with open(path, encoding="utf-8") as f:
                version = f.read().strip()
        except FileNotFoundError:
            return 503, {"status": "down", **base, "reason": "not deployed"}
        except (OSError, UnicodeDecodeError) as err:
            return 503, {"status": "down", **base, "reason": f"cannot read version: {err}"}
        if not version:
            return 503, {"status": "down", **base, "reason": "empty version file"}
        return 200, {"status": "ok", **base, "version": version}

    def redact(self, text):
        """Remove every token from a log line: known ones anywhere, any /bot<...> segment."""
        for token in self.tokens:
            text = text.replace(token, "<token>")
        return re.sub(r"/bot[^/\s'\"]+", "/bot<token>", text)


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeTelegramAndHealth/1 (sanctum-demo, NOT Telegram)"
    protocol_version = "HTTP/1.1"
    services = None  # set in main()

    def end_headers(self):
        self.send_header(*FAKE_HEADER)  # on every response, error pages included
        super().end_headers()

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-services: " + self.services.redact(fmt % args) + "\n")

    def read_body(self):
        """The request body (Content-Length or chunked), or None if it is too large/malformed."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1024).split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    return None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)  # CRLF after each chunk
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        if length < 0 or length > MAX_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def send_json(self, status, body):
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def handle_any(self):
        body = self.read_body()  # always read first, so keep-alive stays in sync
        if body is None:
            self.close_connection = True
            return self.send_json(400, {"ok": False, "error_code": 400,
                                        "description": "Bad Request: invalid request body"})
        url = urlsplit(self.path)
        bot_match = BOT_PATH_RE.match(url.path)
        if bot_match:
            try:
                params = self.bot_params(url.query, body)
            except ValueError as err:
                return self.send_json(400, {"ok": False, "error_code": 400,
                                            "description": f"Bad Request: {err}"})
            token, method = (unquote(part) for part in bot_match.groups())
            return self.send_json(*self.services.bot_api(token, method, params))
        health_match = HEALTH_PATH_RE.match(url.path)
        if health_match and self.command == "GET":
            return self.send_json(*self.services.health(*health_match.groups()))
        if url.path == "/_fake/requests" and self.command == "GET":
            with self.services.lock:
                return self.send_json(200, list(self.services.journal))
        self.send_json(404, {"ok": False, "error_code": 404, "description": "Not Found"})

    def bot_params(self, query, body):
        """Query-string parameters, overridden by a JSON or form-urlencoded body."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if body and content_type == "application/json":
            try:
                decoded = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise ValueError("can't parse JSON body") from None
            if not isinstance(decoded, dict):
                raise ValueError("JSON body must be an object")
            params.update(decoded)
        elif body and content_type == "application/x-www-form-urlencoded":
            try:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                raise ValueError("can't parse form body") from None
        return params


def parse_args(argv):
    parser = argparse.ArgumentParser(description="FAKE Telegram Bot API + app health (demo/tests)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    parser.add_argument("--token", action="append", default=[],
                        help="bot token to accept (repeatable; default: $FAKE_BOT_TOKEN, comma-separated)")
    parser.add_argument("--apps-dir", help="directory holding <app>.<environment>.version files")
    args = parser.parse_args(argv)
    if not args.token:
        args.token = [t.strip() for t in os.environ.get("FAKE_BOT_TOKEN", "").split(",") if t.strip()]
    if not args.token:
        parser.error("give at least one --token (or set FAKE_BOT_TOKEN)")
    for token in args.token:
        if not TOKEN_RE.match(token):
            # Say which one without printing it.
            parser.error("a token is not of the form <digits>:<[A-Za-z0-9_-]+>")
    return args


def main(argv=None):
    args = parse_args(argv)
    Handler.services = FakeServices(args.token, args.apps_dir)
    try:
        server = ThreadingHTTPServer((args.host, args.port), Handler)
    except OSError as err:
        print(f"fake-services: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    server.daemon_threads = True
    host, port = server.server_address[:2]
    print(f"fake services listening on http://{host}:{port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
