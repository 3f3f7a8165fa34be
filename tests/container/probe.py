#!/usr/bin/env python3
"""HTTP checks against a running sanctum container; used by tests/container/run.

Standard library only. Each subcommand prints what it saw and exits non-zero on a failed check.

  probe.py BASE wait-ready SECONDS     poll GET /readyz until it answers 200
  probe.py BASE plugins DIR            GET /healthz lists every DIR/*.wasm as a loaded plugin
  probe.py BASE mcp DIR                with the token (env SANCTUM_CT_TOKEN): initialize,
                                       notifications/initialized, tools/list (tools of every
                                       plugin in DIR), tools/call echo__echo
  probe.py BASE unauthorized           the same requests without / with a wrong token get 401

BASE is e.g. http://127.0.0.1:18000.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PROTOCOL = "2025-06-18"
ECHO_TEXT = "hello from the container test"


class CheckFailed(Exception):
    pass


def request(base: str, method: str, path: str, body: object | None = None,
            headers: dict[str, str] | None = None, timeout: float = 30.0):
    """Returns (status, headers, body bytes); HTTP errors are returned, not raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if data is not None:
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json, text/event-stream")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def jsonrpc_messages(headers, body: bytes) -> list[dict]:
    """The JSON-RPC messages of a response that is either JSON or an SSE stream."""
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
    text = body.decode("utf-8", "replace")
    if ctype == "text/event-stream":
        msgs, data = [], []
        for line in text.splitlines() + [""]:
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif line == "" and data:
                msgs.append(json.loads("\n".join(data)))
                data = []
        return msgs
    if ctype == "application/json":
        return [json.loads(text)] if text.strip() else []
    raise CheckFailed(f"unexpected Content-Type {ctype!r}: {text[:300]!r}")


def response_to(msgs: list[dict], req_id: int) -> dict:
    for m in msgs:
        if m.get("id") == req_id and ("result" in m or "error" in m):
            if "error" in m:
                raise CheckFailed(f"JSON-RPC error for request {req_id}: {m['error']}")
            return m["result"]
    raise CheckFailed(f"no response to request {req_id} in {msgs!r}")


def expected_plugins(plugins_dir: str) -> list[str]:
    names = sorted(p.stem for p in Path(plugins_dir).glob("*.wasm"))
    if not names:
        raise CheckFailed(f"no *.wasm in {plugins_dir}")
    return names


def cmd_wait_ready(base: str, seconds: str) -> None:
    deadline = time.monotonic() + float(seconds)
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, _, body = request(base, "GET", "/readyz", timeout=5)
            if status == 200:
                print(f"    GET /readyz -> 200 {body.decode().strip()!r}")
                return
            last = f"{status} {body[:100]!r}"
        except OSError as e:  # not listening yet
            last = str(e)
        time.sleep(0.5)
    raise CheckFailed(f"/readyz not 200 within {seconds}s (last: {last})")


def cmd_plugins(base: str, plugins_dir: str) -> None:
    want = expected_plugins(plugins_dir)
    status, _, body = request(base, "GET", "/healthz")
    if status != 200:
        raise CheckFailed(f"GET /healthz -> {status} {body[:300]!r}")
    health = json.loads(body)
    loaded = {p["name"]: p for p in health.get("plugins", [])}
    for name in want:
        p = loaded.get(name)
        if p is None:
            raise CheckFailed(f"plugin {name!r} from {plugins_dir}/ not loaded; /healthz: {health}")
        if not p.get("tools"):
            raise CheckFailed(f"plugin {name!r} loaded with no tools: {p}")
        print(f"    plugin {name:<10} {p.get('tools')} tools  sha256 {p.get('sha256', '')[:16]}…")
    if health.get("problems"):
        raise CheckFailed(f"/healthz reports problems: {health['problems']}")
    print(f"    GET /healthz -> 200, status {health.get('status')!r}, "
          f"{health.get('tool_count')} tools, no problems")


def mcp_headers(token: str | None, session: str | None = None) -> dict[str, str]:
    h = {}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if session is not None:
        h["Mcp-Session-Id"] = session
        h["MCP-Protocol-Version"] = PROTOCOL
    return h


INITIALIZE = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": PROTOCOL, "capabilities": {},
               "clientInfo": {"name": "sanctum-container-test", "version": "0"}},
}
ECHO_CALL = {
    "jsonrpc": "2.0", "id": 3, "method": "tools/call",
    "params": {"name": "echo__echo", "arguments": {"text": ECHO_TEXT, "repeat": 2}},
}


def token() -> str:
    t = os.environ.get("SANCTUM_CT_TOKEN")
    if not t:
        raise CheckFailed("SANCTUM_CT_TOKEN is not set")
    return t


def open_session(base: str, tok: str) -> str:
    status, headers, body = request(base, "POST", "/mcp", INITIALIZE, mcp_headers(tok))
    if status != 200:
        raise CheckFailed(f"initialize -> {status} {body[:300]!r}")
    result = response_to(jsonrpc_messages(headers, body), 1)
    session = headers.get("Mcp-Session-Id")
    if not session:
        raise CheckFailed("initialize answered without an Mcp-Session-Id header")
    server = result.get("serverInfo", {})
    print(f"    initialize -> 200, {server.get('name')} {server.get('version')}, "
          f"protocol {result.get('protocolVersion')}, session {session[:8]}…")
    status, _, body = request(base, "POST", "/mcp",
                              {"jsonrpc": "2.0", "method": "notifications/initialized"},
                              mcp_headers(tok, session))
    if status not in (200, 202):
        raise CheckFailed(f"notifications/initialized -> {status} {body[:300]!r}")
    return session


def cmd_mcp(base: str, plugins_dir: str) -> None:
    tok = token()
    session = open_session(base, tok)

    status, headers, body = request(base, "POST", "/mcp",
                                    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                    mcp_headers(tok, session))
    if status != 200:
        raise CheckFailed(f"tools/list -> {status} {body[:300]!r}")
    tools = [t["name"] for t in response_to(jsonrpc_messages(headers, body), 2)["tools"]]
    for name in expected_plugins(plugins_dir):
        mine = [t for t in tools if t.startswith(f"{name}__")]
        if not mine:
            raise CheckFailed(f"tools/list has no tool of plugin {name!r}: {tools}")
        print(f"    tools/list: {len(mine):>2} tools of {name} (e.g. {mine[0]})")

    status, headers, body = request(base, "POST", "/mcp", ECHO_CALL, mcp_headers(tok, session))
    if status != 200:
        raise CheckFailed(f"tools/call echo__echo -> {status} {body[:300]!r}")
    result = response_to(jsonrpc_messages(headers, body), 3)
    texts = [c.get("text") for c in result.get("content", []) if c.get("type") == "text"]
    if result.get("isError") or texts != [f"{ECHO_TEXT} {ECHO_TEXT}"]:
        raise CheckFailed(f"tools/call echo__echo gave an unexpected result: {result}")
    print(f"    tools/call echo__echo -> 200, isError false, text {texts[0]!r}")


def cmd_unauthorized(base: str) -> None:
    tok = token()
    # A valid session, so a refusal can only be about the credentials.
    session = open_session(base, tok)
    cases = [
        ("initialize without a token", INITIALIZE, mcp_headers(None)),
        ("tools/call without a token", ECHO_CALL, mcp_headers(None, session)),
        ("tools/call with a wrong token", ECHO_CALL, mcp_headers("x" * 40, session)),
    ]
    for label, payload, headers in cases:
        status, resp_headers, body = request(base, "POST", "/mcp", payload, headers)
        if status != 401:
            raise CheckFailed(f"{label} -> {status} (want 401): {body[:300]!r}")
        challenge = resp_headers.get("WWW-Authenticate", "")
        print(f"    {label} -> 401 (WWW-Authenticate: {challenge})")
    status, _, body = request(base, "GET", "/metrics")
    if status != 401:
        raise CheckFailed(f"GET /metrics without a token -> {status} (want 401)")
    print("    GET /metrics without a token -> 401")


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    base, cmd, args = argv[1], argv[2], argv[3:]
    commands = {
        "wait-ready": cmd_wait_ready,
        "plugins": cmd_plugins,
        "mcp": cmd_mcp,
        "unauthorized": cmd_unauthorized,
    }
    if cmd not in commands:
        print(f"unknown check {cmd!r}", file=sys.stderr)
        return 2
    try:
        commands[cmd](base, *args)
    except (CheckFailed, OSError, ValueError, KeyError) as e:
        print(f"FAILED ({cmd}): {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
