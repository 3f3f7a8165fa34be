#!/usr/bin/env python3
"""FAKE BotFather companion: speaks PROTOCOL.md like botfather_client.py, but talks to no one.

THIS IS A FAKE, for sanctum's tests and demo. It simulates the chat with Telegram's @BotFather
(its wording, inline and reply keyboards, message ids, edits) for the flows the BotFather
plugin uses: /start, /help, /newbot, /mybots (bot menu -> "API Token" -> "Revoke current token"),
/revoke, /deletebot and /cancel. Other real BotFather commands and buttons answer
{"ok": false, "error": "... not simulated ..."} so a test notices instead of getting a guess.

One request object on stdin, one response object (one line, ASCII JSON) on stdout; exit 0 if
ok, 1 if not. The conversation lives in the JSON file named by FAKE_BOTFATHER_STATE (created if
missing, rewritten atomically, locked while in use). FAKE_BOTFATHER_SEED_BOTS is a comma list
of bot usernames (optionally `username=token`) created when the state file is first made.

What it must not do: touch the network, write anything but the state file (and its lock and
temp files beside it), or print anything to stdout except the one response. The tokens it
makes up are random and fake; they work nowhere but in tests. Python 3 standard library only.
"""

import fcntl
import json
import os
import re
import secrets
import string
import sys
import tempfile
from datetime import datetime, timezone

MAX_BOTS = 20
KEEP_MESSAGES = 500
USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{4,31}$")
TAKEN_ELSEWHERE = {"tetrisbot", "tetris_bot", "examplebot", "example_bot", "botfather",
                   "testbot", "test_bot", "gamebot", "stickers_bot"}  # other people's bots
CONFIRM_DELETE = "Yes, I am totally sure."
BOT_API_LINE = "For a description of the Bot API, see this page: https://core.telegram.org/bots/api"

HELP = """I can help you create and manage Telegram bots. If you're new to the Bot API, please see the manual.

You can control me by sending these commands:

/newbot - create a new bot
/mybots - edit your bots

Edit Bots
/setname - change a bot's name
/setdescription - change bot description
/setabouttext - change bot about info
/setuserpic - change bot profile photo
/setcommands - change the list of commands
/deletebot - delete a bot

Bot Settings
/token - generate authorization token
/revoke - revoke bot access token
/setinline - toggle inline mode
/setinlinegeo - toggle inline location requests
/setinlinefeedback - change inline feedback settings
/setjoingroups - can your bot be added to groups?
/setprivacy - toggle privacy mode in groups

Web Apps
/myapps - edit your web apps
/newapp - create a new web app
/listapps - get a list of your web apps
/editapp - edit a web app
/deleteapp - delete an existing web app

Games
/mygames - edit your games
/newgame - create a new game
/listgames - get a list of your games
/editgame - edit a game
/deletegame - delete an existing game"""

# Commands the real BotFather knows but this fake does not act out.
UNSIMULATED = set(re.findall(r"^(/\w+) - ", HELP, re.M)) - {
    "/newbot", "/mybots", "/deletebot", "/revoke"} | {"/setmenubutton", "/setdomain", "/empty"}
BOT_MENU = [["API Token", "Edit Bot"], ["Bot Settings", "Payments"],
            ["Transfer Ownership", "Delete Bot"], ["« Back to Bots List"]]


class Fail(Exception):
    """Ends the request with {"ok": false, "error": str(self)}; the state is not saved."""


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_token(bot_id=None):
    """A realistic fake token `<10 digits>:<35 chars>`; revoking keeps the bot id."""
    bot_id = bot_id or str(secrets.randbelow(8_000_000_000) + 1_000_000_000)
    alphabet = string.ascii_letters + string.digits + "_-"
    return bot_id + ":AA" + "".join(secrets.choice(alphabet) for _ in range(33))


def rows_of(items, width=2):
    return [items[i:i + width] for i in range(0, len(items), width)]


class Chat:
    """The conversation with the fake BotFather, loaded from and saved to the state dict."""

    def __init__(self, state):
        self.state = state
        self.touched = []  # ids of BotFather messages created or edited by this request

    # --- messages -------------------------------------------------------------------------
    def add(self, text, from_botfather=True, buttons=None, keyboard=None, screen=None):
        msg = {"id": self.state["next_id"], "from_botfather": from_botfather, "date": now(),
               "text": text, "buttons": buttons or [], "edited": False,
               "keyboard": keyboard if buttons else None, "screen": screen}
        self.state["next_id"] += 1
        self.state["messages"].append(msg)
        if from_botfather:
            self.touched.append(msg["id"])
        return msg

    def reply(self, text, buttons=None, keyboard="inline", screen=None):
        return self.add(text, True, buttons, keyboard, screen)

    def edit(self, msg, text, buttons, screen):
        msg.update(text=text, buttons=buttons, edited=True, screen=screen,
                   keyboard="inline" if buttons else None)
        if msg["id"] not in self.touched:
            self.touched.append(msg["id"])

    def find(self, message_id):
        for msg in self.state["messages"]:
            if msg["id"] == message_id:
                return msg
        raise Fail(f"message {message_id} not found in the chat with @BotFather")

    # --- bots -----------------------------------------------------------------------------
    def bot(self, username):
        username = username.lstrip("@").lower()
        for bot in self.state["bots"]:
            if bot["username"].lower() == username:
                return bot
        return None

    def bot_buttons(self):
        return rows_of(["@" + b["username"] for b in self.state["bots"]])

    def no_bots(self):
        self.reply("You have currently no bots.")

    # --- user input -----------------------------------------------------------------------
    def user_text(self, text):
        """The agent sends `text`; BotFather answers."""
        self.add(text, from_botfather=False)
        pending = self.state["pending"]
        if text.startswith("/"):
            command = text.split()[0].split("@")[0].lower()
            if command == "/cancel":
                return self.cancel()
            self.state["pending"] = None  # any other command abandons the current one
            return self.command(command)
        if pending is None:
            return self.reply("Unrecognized command. Say what?")
        getattr(self, "step_" + pending["command"][1:])(text.strip(), pending)

    def command(self, command):
        bots = self.state["bots"]
        if command in ("/start", "/help"):
            self.reply(HELP)
        elif command == "/newbot":
            if len(bots) >= MAX_BOTS:
                return self.reply(
                    "That I cannot do.\n\nYou come to me asking for more than 20 bots. But you "
                    "didn't ask with respect. You didn't offer friendship. You didn't even think "
                    "to call me Godfather.")
            self.state["pending"] = {"command": "/newbot", "step": "name"}
            self.reply("Alright, a new bot. How are we going to call it? "
                       "Please choose a name for your bot.")
        elif command == "/mybots":
            if not bots:
                return self.no_bots()
            self.reply("Choose a bot from the list below:", self.bot_buttons(), screen={"on": "list"})
        elif command in ("/revoke", "/deletebot"):
            if not bots:
                return self.no_bots()
            self.state["pending"] = {"command": command, "step": "choose"}
            prompt = ("Choose a bot to generate a new token." if command == "/revoke"
                      else "Choose a bot to delete.")
            self.reply(prompt, self.bot_buttons(), keyboard="reply")
        elif command in UNSIMULATED:
            raise Fail(f"the fake BotFather does not simulate {command}")
        else:
            self.reply("Unrecognized command. Say what?")

    def cancel(self):
        pending, self.state["pending"] = self.state["pending"], None
        if pending is None:
            return self.reply("No active command to cancel. I wasn't doing anything anyway. "
                              "Zzzzzz...")
        self.reply(f"The command {pending['command']} has been cancelled. Anything else I can do "
                   "for you?\n\nSend /help for a list of commands. To learn more about Telegram "
                   "Bots, see https://core.telegram.org/bots")

    def step_newbot(self, text, pending):
        if pending["step"] == "name":
            if len(text) > 64:
                return self.reply("Sorry, this name is too long. Please try something shorter.")
            pending.update(step="username", name=text)
            return self.reply("Good. Now let's choose a username for your bot. It must end in "
                              "`bot`. Like this, for example: TetrisBot or tetris_bot.")
        username = text.lstrip("@")
        if not username.lower().endswith("bot"):
            return self.reply("Sorry, the username must end in 'bot'. "
                              "E.g. 'Tetris_bot' or 'Tetrisbot'")
        if not USERNAME_RE.match(username):
            return self.reply("Sorry, this username is invalid.")
        if self.bot(username) or username.lower() in TAKEN_ELSEWHERE:
            return self.reply("Sorry, this username is already taken. "
                              "Please try something different.")
        bot = {"name": pending["name"], "username": username, "token": new_token()}
        self.state["bots"].append(bot)
        self.state["pending"] = None
        self.reply(
            f"Done! Congratulations on your new bot. You will find it at t.me/{username}. You can "
            "now add a description, about section and profile picture for your bot, see /help "
            "for a list of commands. By the way, when you've finished creating your cool bot, "
            "ping our Bot Support if you want a better username for it. Just make sure the bot "
            "is fully operational before you do this.\n\n"
            f"Use this token to access the HTTP API:\n{bot['token']}\n"
            "Keep your token secure and store it safely, it can be used by anyone to control "
            f"your bot.\n\n{BOT_API_LINE}")

    def step_revoke(self, text, pending):
        bot = self.bot(text)
        if bot is None:
            return self.reply("Invalid bot selected.")
        bot["token"] = new_token(bot["token"].split(":")[0])
        self.state["pending"] = None
        self.reply("Your token was replaced with a new one. You can use this token to access "
                   f"HTTP API:\n{bot['token']}\n\n{BOT_API_LINE}")

    def step_deletebot(self, text, pending):
        if pending["step"] == "choose":
            bot = self.bot(text)
            if bot is None:
                return self.reply("Invalid bot selected.")
            pending.update(step="confirm", username=bot["username"])
            return self.reply(f"OK, you selected @{bot['username']}. Are you sure?\n\nSend "
                              f"'{CONFIRM_DELETE}' to confirm you really want to delete this bot.")
        if text != CONFIRM_DELETE:
            return self.reply("Please enter the confirmation text exactly like this:\n"
                              f"{CONFIRM_DELETE}\n\nType /cancel to cancel the operation.")
        self.state["bots"] = [b for b in self.state["bots"]
                              if b["username"] != pending["username"]]
        self.state["pending"] = None
        self.reply("Done! The bot is gone. /help")

    # --- buttons --------------------------------------------------------------------------
    def click(self, message_id, button):
        msg = self.find(message_id)
        if not msg["from_botfather"]:
            raise Fail(f"message {message_id} is not from @BotFather")
        if not any(button == text for row in msg["buttons"] for text in row):
            raise Fail(f"message {message_id} has no button {button!r}")
        if msg["keyboard"] == "reply":  # a reply-keyboard button just sends its text
            return self.user_text(button)
        screen = msg.get("screen") or {}
        if screen.get("on") == "list":
            return self.bot_menu(msg, self.bot(button))
        if button == "« Back to Bots List":
            if not self.state["bots"]:
                return self.edit(msg, "You have currently no bots.", [], None)
            return self.edit(msg, "Choose a bot from the list below:", self.bot_buttons(),
                             {"on": "list"})
        bot = self.bot(screen.get("bot") or "")
        if bot is None:
            raise Fail(f"the bot @{screen.get('bot')} no longer exists")
        if button == "« Back to Bot":
            self.bot_menu(msg, bot)
        elif button == "API Token":
            self.edit(msg, f"Here is the token for bot {bot['name']} @{bot['username']}:\n\n"
                      f"{bot['token']}", [["Revoke current token"], ["« Back to Bot"]],
                      {"on": "token", "bot": bot["username"]})
        elif button == "Revoke current token":
            bot["token"] = new_token(bot["token"].split(":")[0])
            self.edit(msg, f"Token for the bot {bot['name']} @{bot['username']} has been "
                      f"revoked. New token is:\n\n{bot['token']}", [["« Back to Bot"]],
                      {"on": "revoked", "bot": bot["username"]})
        else:
            raise Fail(f"the fake BotFather does not simulate the {button!r} button")

    def bot_menu(self, msg, bot):
        if bot is None:
            raise Fail("that bot no longer exists")
        self.edit(msg, f"Here it is: {bot['name']} @{bot['username']}.\n\n"
                  "What do you want to do with the bot?", BOT_MENU,
                  {"on": "bot", "bot": bot["username"]})


# --- protocol -----------------------------------------------------------------------------

def public(msg):
    """A stored message in the protocol's shape (internal keys dropped)."""
    keys = ("id", "from_botfather", "date", "text", "buttons", "edited")
    return {key: msg[key] for key in keys}


def require(request, field, kind, check, what):
    value = request.get(field)
    if not isinstance(value, kind) or isinstance(value, bool) or not check(value):
        raise Fail(f"field {field!r} must be {what}")
    return value


def handle(request, state):
    if not isinstance(request, dict):
        raise Fail("request must be a JSON object")
    op = request.get("op")
    fields = {"send_message": {"op", "text"}, "click_button": {"op", "message_id", "button"},
              "read": {"op", "limit"}}
    if op not in fields:
        raise Fail(f"unknown op {op!r} (expected send_message, click_button or read)")
    extra = sorted(set(request) - fields[op])
    if extra:
        raise Fail(f"unknown field(s) for op {op!r}: {', '.join(extra)}")
    chat = Chat(state)
    if op == "read":
        limit = require(request, "limit", int, lambda n: 1 <= n <= 20, "an integer 1-20")
        return [public(m) for m in state["messages"][-limit:]]
    if op == "send_message":
        chat.user_text(require(request, "text", str, lambda s: 0 < len(s.strip()) and len(s) <= 4096,
                               "a non-empty string of at most 4096 characters"))
    else:
        chat.click(require(request, "message_id", int, lambda n: n > 0, "a positive integer"),
                   require(request, "button", str, lambda s: s != "", "a non-empty string"))
    del state["messages"][:-KEEP_MESSAGES]
    return [public(chat.find(i)) for i in sorted(chat.touched)]


def initial_state():
    state = {"next_id": 1, "messages": [], "bots": [], "pending": None}
    seeds = os.environ.get("FAKE_BOTFATHER_SEED_BOTS", "")
    for entry in filter(None, (e.strip() for e in seeds.split(","))):
        username, _, token = entry.partition("=")
        username = username.lstrip("@")
        if not USERNAME_RE.match(username) or not username.lower().endswith("bot"):
            raise Fail(f"FAKE_BOTFATHER_SEED_BOTS: invalid username {username!r}")
        if token and not re.fullmatch(r"[0-9]+:[A-Za-z0-9_-]+", token):
            raise Fail(f"FAKE_BOTFATHER_SEED_BOTS: the token for {username!r} is malformed")
        name = username.replace("_", " ").title()
        state["bots"].append({"name": name, "username": username, "token": token or new_token()})
    return state


def run(raw):
    """Serve one request (raw stdin bytes) against the state file; returns the response."""
    path = os.environ.get("FAKE_BOTFATHER_STATE")
    if not path:
        raise Fail("FAKE_BOTFATHER_STATE is not set")
    try:
        request = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise Fail(f"malformed JSON request: {err}") from None
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one request at a time per state file
        try:
            with open(path, encoding="utf-8") as f:
                state = json.load(f)
        except FileNotFoundError:
            state = initial_state()
        except ValueError as err:
            raise Fail(f"state file {path} is corrupt: {err}") from None
        messages = handle(request, state)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".fbf-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(state, f, indent=1)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    return {"ok": True, "messages": messages}


def main():
    try:
        response = run(sys.stdin.buffer.read())
    except Fail as err:
        response = {"ok": False, "error": str(err)}
    except OSError as err:
        response = {"ok": False, "error": f"fake BotFather state error: {err}"}
    sys.stdout.write(json.dumps(response) + "\n")
    sys.stdout.flush()
    return 0 if response["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
