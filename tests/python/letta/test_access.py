"""Who may do what (issue 13), through Letta 0.16.x's own client stack (fastmcp 2.12.5 / mcp 1.12.4).

The ``access_server`` fixture (../sanctum_server.py) serves the echo plugin with bearer tokens
for two principals (``letta`` in group ``ops``, ``ci`` in none), the ``[access]`` policy of
host/tests/all/access.rs, and an audit file. Connections are made the way Letta makes them
(``LettaStyleConnection`` from test_letta_stack.py: a fresh client per operation, over ``sse``
and ``streamable_http``), with the token in ``Authorization`` and Letta's ``X-Agent-Id``:

* the listing Letta registers is exactly what the caller may call;
* allowed calls give the agent their text; a refused call raises fastmcp's ``ToolError`` (what
  Letta turns into an ``error`` tool result) whose text, the one the model sees, names the rule
  or the default;
* ``ci`` claiming ``ops-agent`` gets nothing beyond ``ci``'s own;
* each call leaves an ``access`` audit record (decision, rule, principal, agent) without argument
  values.

The client-log check of test_letta_stack.py (no warnings or tracebacks from the stack) applies here too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import SSETransport, StreamableHttpTransport
from fastmcp.exceptions import ToolError

from sanctum_server import ACCESS_EXPECTED_LISTING, AccessServer
from test_letta_stack import TRANSPORTS, LettaStyleConnection, client_logs_clean  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.anyio

CALLERS = [("letta", "ops-agent"), ("letta", "support-agent"), ("ci", "ops-agent"), ("ci", "support-agent")]
DEFAULT_REFUSAL = "refused: no access rule lets this caller make this call, and the policy's default is deny"


class AccessConnection(LettaStyleConnection):
    """``LettaStyleConnection`` with this caller's headers instead of the suite's fixed ones."""

    def __init__(self, kind: str, base_url: str, headers: dict[str, str]) -> None:  # noqa: D107
        if kind == "sse":
            self.transport: SSETransport | StreamableHttpTransport = SSETransport(
                url=base_url + "/sse", headers=dict(headers)
            )
        else:
            self.transport = StreamableHttpTransport(url=base_url + "/mcp", headers=dict(headers))
        self.client: Client[Any] = Client(self.transport)


@asynccontextmanager
async def letta_connection(
    kind: str, access: AccessServer, principal: str, agent: str | None
) -> AsyncIterator[AccessConnection]:
    connection = AccessConnection(kind, access.base_url, access.headers(principal, agent))
    await connection.connect_to_server()
    try:
        yield connection
    finally:
        await connection.cleanup()


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=CALLERS, ids=[f"{p}-as-{a}" for p, a in CALLERS])
def caller(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


async def execute(kind: str, access: AccessServer, principal: str, agent: str, tool: str, args: dict[str, Any]):
    """One Letta tool execution (its own connection): ``(text, True)`` or the ``ToolError`` text."""
    async with letta_connection(kind, access, principal, agent) as connection:
        try:
            return await connection.execute_tool(tool, args)
        except ToolError as error:  # Letta: (str(error), False) -> status "error"
            return str(error), False


async def test_listing_registered_by_letta_is_filtered(kind: str, access_server: AccessServer, caller) -> None:
    principal, agent = caller
    async with letta_connection(kind, access_server, principal, agent) as connection:
        tools = await connection.list_tools()
    assert sorted(tool.name for tool in tools) == ACCESS_EXPECTED_LISTING[(principal, agent)]


def plan(principal: str, agent: str, secret: str) -> list[tuple[str, dict[str, Any], str | None, str | None]]:
    """(tool, arguments, refusal text expected or None for success, deciding rule in the audit)."""
    allow_echo = {"text": secret, "repeat": None, "uppercase": False}  # Letta's strict-mode nulls
    shout = {"text": secret, "repeat": None, "uppercase": True}
    if (principal, agent) == ("letta", "ops-agent"):
        return [
            ("echo__echo", allow_echo, None, "ops-echo"),
            ("echo__echo", shout, 'refused by access rule #3 "no-shouting"', "no-shouting"),
            ("health", {}, None, "health-for-all"),
        ]
    if (principal, agent) == ("letta", "support-agent"):
        return [
            ("echo__stats", {"numbers": [2, 4]}, None, "support-reads"),
            ("echo__echo", allow_echo, DEFAULT_REFUSAL, None),
        ]
    return [
        ("echo__stats", {"numbers": [1]}, DEFAULT_REFUSAL, None),
        ("echo__echo", allow_echo, DEFAULT_REFUSAL, None),
        ("echo__echo", shout, 'refused by access rule #3 "no-shouting"', "no-shouting"),
        ("health", {}, None, "health-for-all"),
    ]


async def test_calls_allowed_refused_and_audited(kind: str, access_server: AccessServer, caller) -> None:
    principal, agent = caller
    secret = f"secret-{uuid.uuid4().hex}"
    steps = plan(principal, agent, secret)
    offset = access_server.audit_offset()

    for tool, args, refused, _rule in steps:
        text, ok = await execute(kind, access_server, principal, agent, tool, args)
        where = f"{kind} {principal}/{agent} {tool}"
        if refused is None:
            assert ok, f"{where}: expected success, got {text!r}"
            if tool == "echo__echo":
                assert text == secret, where
            elif tool == "echo__stats":
                assert json.loads(text)["count"] == len(args["numbers"]), where
            else:
                assert json.loads(text)["status"] == "ok", where
        else:
            # What the model reads: names the rule (or the default) and the tool, no argument value.
            assert not ok, f"{where}: expected a refusal, got {text!r}"
            assert refused in text, f"{where}: {text!r}"
            assert f"({tool})" in text and "retrying will not change it" in text, f"{where}: {text!r}"
            assert secret not in text, where

    # mcp 1.12.4 lists tools inside call_tool too, but only calls leave access records.
    records = access_server.wait_for_audit(
        offset, lambda rs: sum(r.get("event") == "access" for r in rs) >= len(steps)
    )
    access = [r for r in records if r.get("event") == "access"]
    assert len(access) == len(steps), f"{kind} {principal}/{agent}: {access}"
    for (tool, _args, refused, rule), record in zip(steps, access):
        where = f"{kind} {principal}/{agent} {tool}: {record}"
        assert (record["principal"], record["agent_id"], record["tool"]) == (principal, agent, tool), where
        assert record["decision"] == ("allow" if refused is None else "deny"), where
        assert record.get("rule") == rule, where
        assert record["by_default"] is (rule is None), where
        assert len(record["arguments_sha256"]) == 64, where
    assert secret not in access_server.audit_text(), "an argument value reached the audit log"


async def test_ci_claiming_the_ops_agent_gains_nothing(kind: str, access_server: AccessServer) -> None:
    async with letta_connection(kind, access_server, "ci", "ops-agent") as connection:
        tools = await connection.list_tools()
    assert [tool.name for tool in tools] == ["health"]
    for tool, args in [("echo__echo", {"text": "x"}), ("echo__stats", {"numbers": [1]}), ("echo__wait", {"ms": 1})]:
        text, ok = await execute(kind, access_server, "ci", "ops-agent", tool, args)
        assert not ok, f"{kind}: ci as ops-agent ran {tool}: {text!r}"
        if tool == "echo__echo":  # `uppercase` absent: rule #3's deny cannot be ruled out
            assert 'refused by access rule #3 "no-shouting"' in text, text
        else:
            assert DEFAULT_REFUSAL in text, text
