#!/usr/bin/env python3
"""The real BotFather companion for sanctum's BotFather plugin, on Telethon (see README.md).

The plugin cannot speak MTProto, so the operator grants it this program as a subprocess. It
serves ONE request per run, per PROTOCOL.md: one JSON object on stdin, one JSON object on
stdout, exit 0 if ok and 1 if not. It acts as the operator's Telegram *user account*, through a
session file that was authorized once by hand:

    python3 botfather_client.py login    # interactive: phone number, login code, 2FA password
    python3 botfather_client.py          # serve one protocol request from stdin

Environment: TELEGRAM_API_ID, TELEGRAM_API_HASH (from https://my.telegram.org) and
TELEGRAM_SESSION (path of the Telethon session file; Telethon adds ".session" unless the path
already ends with it).

What it must not do: talk to anyone but @BotFather; press buttons that would share the phone
number or location, open URLs or need the 2FA password; log in (or create a session file)
outside `login`; print anything on stdout except the one response (Telethon's own logging goes
to stderr); or show the session's contents anywhere. Bot tokens in BotFather's replies are
passed through as they are: the plugin redacts them before an agent sees them.
"""

import asyncio
import json
import logging
import os
import sys
import traceback
from datetime import timezone

BOTFATHER = "BotFather"
QUIET_S = 1.5         # a reply is complete after this long without new messages or edits
MAX_WAIT_S = 15.0     # never wait longer than this for BotFather to answer
POLL_S = 0.5          # how often the chat is re-read while waiting
TOTAL_S = 25.0        # the whole request, connecting included (sanctum's grant: 30 s)
NOT_AUTHORIZED = "session not authorized; run `botfather_client.py login` once"


class Fail(Exception):
    """Ends the request with {"ok": false, "error": str(self)}."""


# --- the request (same rules as fake_botfather.py) ----------------------------------------

def parse_request(raw):
    try:
        request = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise Fail(f"malformed JSON request: {err}") from None
    if not isinstance(request, dict):
        raise Fail("request must be a JSON object")
    fields = {"send_message": {"op", "text"}, "click_button": {"op", "message_id", "button"},
              "read": {"op", "limit"}}
    op = request.get("op")
    if op not in fields:
        raise Fail(f"unknown op {op!r} (expected send_message, click_button or read)")
    extra = sorted(set(request) - fields[op])
    if extra:
        raise Fail(f"unknown field(s) for op {op!r}: {', '.join(extra)}")

    def need(field, kind, check, what):
        value = request.get(field)
        if not isinstance(value, kind) or isinstance(value, bool) or not check(value):
            raise Fail(f"field {field!r} must be {what}")
        return value

    if op == "send_message":
        need("text", str, lambda s: 0 < len(s.strip()) and len(s) <= 4096,
             "a non-empty string of at most 4096 characters")
    elif op == "click_button":
        need("message_id", int, lambda n: n > 0, "a positive integer")
        need("button", str, lambda s: s != "", "a non-empty string")
    else:
        need("limit", int, lambda n: 1 <= n <= 20, "an integer 1-20")
    return request


# --- Telethon messages -> protocol messages ------------------------------------------------

def button_rows(msg):
    """The keyboard's raw rows (inline or reply keyboard), or [] if it has none."""
    return getattr(getattr(msg, "reply_markup", None), "rows", None) or []


def to_protocol(msg):
    date = msg.date.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": msg.id,
        "from_botfather": not msg.out,
        "date": date,
        "text": getattr(msg, "message", None) or "",  # plain text, no markdown rendering
        "buttons": [[button.text for button in row.buttons] for row in button_rows(msg)],
        "edited": getattr(msg, "edit_date", None) is not None,
    }


def fingerprint(msg):
    """What changes when BotFather sends or edits a message."""
    return json.dumps([to_protocol(msg), str(getattr(msg, "edit_date", None))])


async def collect(client, botfather, after_id, watched=None, active=False):
    """Wait for BotFather to finish answering, then return what it sent or edited.

    Returns BotFather's messages with an id above `after_id`, plus any message of `watched`
    (id -> fingerprint before the action) that changed; oldest first. Waits until QUIET_S
    passes without a change after the first one (`active`: count the action itself as one),
    and at most MAX_WAIT_S; the list may be empty if BotFather said nothing.
    """
    watched = watched or {}
    loop = asyncio.get_running_loop()
    start = loop.time()
    last_change = start if active else None
    seen, seen_prints = {}, {}
    while True:
        current = {m.id: m for m in await client.get_messages(botfather, min_id=after_id,
                                                               limit=50) if not m.out}
        if watched:
            for m in await client.get_messages(botfather, ids=list(watched)):
                if m is not None and fingerprint(m) != watched[m.id]:
                    current[m.id] = m
        prints = {i: fingerprint(m) for i, m in current.items()}
        now = loop.time()
        if prints != seen_prints:
            seen, seen_prints, last_change = current, prints, now
        if last_change is not None and now - last_change >= QUIET_S:
            break
        if now - start >= MAX_WAIT_S:
            break
        await asyncio.sleep(POLL_S)
    return [to_protocol(seen[i]) for i in sorted(seen)]


# --- operations -----------------------------------------------------------------------------

async def send_message(client, botfather, request):
    sent = await client.send_message(botfather, request["text"], parse_mode=None,
                                     link_preview=False)
    return {"messages": await collect(client, botfather, after_id=sent.id)}


async def click_button(client, botfather, request):
    from telethon.errors import BotResponseTimeoutError
    from telethon.tl import types
    from telethon.tl.functions.messages import GetBotCallbackAnswerRequest

    message_id, text = request["message_id"], request["button"]
    msg = await client.get_messages(botfather, ids=message_id)
    if msg is None or isinstance(msg, types.MessageEmpty):
        raise Fail(f"message {message_id} not found in the chat with @BotFather")
    if msg.out:
        raise Fail(f"message {message_id} is not from @BotFather")
    matches = [b for row in button_rows(msg) for b in row.buttons if b.text == text]
    if not matches:
        raise Fail(f"message {message_id} has no button {text!r}")
    kind = getattr(matches[0], "type", None)

    if isinstance(kind, types.ButtonTypeDefault):
        # A plain reply-keyboard button: pressing it sends its text as a message.
        sent = await client.send_message(botfather, text, parse_mode=None, link_preview=False)
        return {"messages": await collect(client, botfather, after_id=sent.id)}
    if not isinstance(kind, types.InlineButtonTypeCallback):
        # URL, web app, phone/location sharing, payments, inline switch...: never pressed here.
        raise Fail(f"button {text!r} is of type {type(kind).__name__}; only callback buttons "
                   "and plain reply-keyboard buttons can be pressed")
    if kind.requires_password:
        raise Fail(f"button {text!r} needs the account's 2FA password; do this one by hand")

    newest = await client.get_messages(botfather, limit=1)
    after_id = max(newest[0].id if newest else 0, msg.id)
    try:
        answer = await client(GetBotCallbackAnswerRequest(peer=botfather, msg_id=msg.id,
                                                          data=kind.data))
    except BotResponseTimeoutError:
        answer = None  # BotFather did not answer the callback; it may still edit the message
    notice = getattr(answer, "message", None)
    messages = await collect(client, botfather, after_id, watched={msg.id: fingerprint(msg)},
                             active=bool(notice))
    response = {"messages": messages}
    if notice:
        response["callback_answer"] = notice  # the toast/alert BotFather showed, if any
    return response


async def read(client, botfather, request):
    messages = await client.get_messages(botfather, limit=request["limit"])
    return {"messages": [to_protocol(m) for m in reversed(messages)]}


OPS = {"send_message": send_message, "click_button": click_button, "read": read}


# --- client setup ---------------------------------------------------------------------------

def settings():
    """(session path, api id, api hash) from the environment."""
    missing = [n for n in ("TELEGRAM_API_ID", "TELEGRAM_API_HASH", "TELEGRAM_SESSION")
               if not os.environ.get(n)]
    if missing:
        raise Fail(f"missing environment variable(s): {', '.join(missing)}")
    try:
        api_id = int(os.environ["TELEGRAM_API_ID"])
    except ValueError:
        raise Fail("TELEGRAM_API_ID must be an integer") from None
    return os.environ["TELEGRAM_SESSION"], api_id, os.environ["TELEGRAM_API_HASH"]


def session_file(session):
    return session if session.endswith(".session") else session + ".session"


def make_client(session, api_id, api_hash):
    try:
        from telethon import TelegramClient
    except ImportError:
        raise Fail("telethon is not installed (pip install -r requirements.txt)") from None
    return TelegramClient(
        session, api_id, api_hash,
        device_model="sanctum botfather companion",  # how the session shows in Telegram
        receive_updates=False,      # it polls the chat; no update handling needed
        connection_retries=2, retry_delay=1, timeout=8, request_retries=2,
        flood_sleep_threshold=3,    # longer flood waits fail fast instead of sleeping
    )


async def serve(raw):
    request = parse_request(raw)
    session, api_id, api_hash = settings()
    if not os.path.exists(session_file(session)):
        raise Fail(NOT_AUTHORIZED)  # and do not let Telethon create an empty session
    client = make_client(session, api_id, api_hash)
    from telethon import errors  # importable: make_client succeeded
    try:
        await client.connect()
        if not await client.is_user_authorized():
            raise Fail(NOT_AUTHORIZED)
        botfather = await client.get_input_entity(BOTFATHER)
        return await OPS[request["op"]](client, botfather, request)
    except errors.FloodWaitError as err:
        raise Fail(f"Telegram flood control: try again in {err.seconds} s") from None
    except errors.RPCError as err:
        raise Fail(f"Telegram error: {err}") from None
    finally:
        try:
            await asyncio.wait_for(client.disconnect(), 3)
        except Exception:  # noqa: BLE001 - disconnecting is best effort
            pass


async def login():
    session, api_id, api_hash = settings()
    client = make_client(session, api_id, api_hash)
    await client.start()  # asks for the phone number, the login code and any 2FA password
    try:
        me = await client.get_me()
        await client.get_input_entity(BOTFATHER)  # resolve once; cached in the session
        print(f"logged in as {me.first_name} (id {me.id}); "
              f"session saved in {session_file(session)} -- keep it secret", file=sys.stderr)
    finally:
        await client.disconnect()
    os.chmod(session_file(session), 0o600)


def main(argv):
    os.umask(0o077)  # the session file and its journal are readable by the owner only
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="botfather-client: %(levelname)s %(name)s: %(message)s")
    if argv == ["login"]:
        try:
            asyncio.run(login())
        except Fail as err:
            print(f"botfather-client: {err}", file=sys.stderr)
            return 1
        return 0
    if argv:
        print("usage: botfather_client.py [login]  (no argument: serve one request from stdin)",
              file=sys.stderr)
        return 2

    out, sys.stdout = sys.stdout, sys.stderr  # anything else printed lands on stderr
    try:
        raw = sys.stdin.buffer.read()
        result = asyncio.run(asyncio.wait_for(serve(raw), TOTAL_S))
        response = {"ok": True, **result}
    except Fail as err:
        response = {"ok": False, "error": str(err)}
    except asyncio.TimeoutError:
        response = {"ok": False, "error": f"timed out after {TOTAL_S:.0f} s talking to Telegram"}
    except (ConnectionError, OSError, EOFError) as err:  # EOFError: IncompleteReadError
        response = {"ok": False, "error": f"cannot reach Telegram: {err}"}
    except Exception as err:  # noqa: BLE001 - the caller must still get one JSON answer
        traceback.print_exc()
        response = {"ok": False, "error": f"unexpected error: {type(err).__name__}: {err}"}
    out.write(json.dumps(response) + "\n")
    out.flush()
    return 0 if response["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
