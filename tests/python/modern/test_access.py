"""Who may do what (issue 13), through the Python `mcp` 2.3.0 client on every path it connects by.

The ``access_server`` fixture (../sanctum_server.py) serves the echo plugin with bearer tokens
for two principals (``letta`` in group ``ops``, ``ci`` in none) and the ``[access]`` policy of
host/tests/all/access.rs; audit records go to a file. Each test connects as one principal with
one ``X-Agent-Id`` (``ops-agent`` or ``support-agent``) and checks:

* ``tools/list`` shows exactly what that caller may call;
* allowed calls run; refused calls are ``isError`` tool results naming the rule (or the default);
* ``ci`` claiming ``ops-agent`` gets nothing ``ci`` may not have (the agent header is not a group);
* every call leaves an ``access`` audit record (decision, rule, principal, agent) and no argument
  value; a refused call leaves no ``tool_call`` record (it did not run).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from sanctum_server import ACCESS_EXPECTED_LISTING, AccessServer

pytestmark = pytest.mark.anyio

PATHS = ["streamable-auto", "streamable-legacy", "sse-legacy"]
EXPECTED_PROTOCOL = {"streamable-auto": "2026-07-28", "streamable-legacy": "2025-11-25", "sse-legacy": "2025-11-25"}
CALLERS = [("letta", "ops-agent"), ("letta", "support-agent"), ("ci", "ops-agent"), ("ci", "support-agent")]
GROUPS = {"letta": ["ops"], "ci": []}
DEFAULT_REFUSAL = "refused: no access rule lets this caller make this call, and the policy's default is deny"


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=CALLERS, ids=[f"{p}-as-{a}" for p, a in CALLERS])
def caller(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param


@asynccontextmanager
async def connect(path: str, access: AccessServer, principal: str, agent: str | None) -> AsyncIterator[Client]:
    """An entered ``mcp.Client`` on ``path``, presenting ``principal``'s token and ``X-Agent-Id: agent``."""
    headers = access.headers(principal, agent)
    if path in ("streamable-auto", "streamable-legacy"):
        mode = "auto" if path == "streamable-auto" else "legacy"
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=300)) as http:
            transport = streamable_http_client(access.base_url + "/mcp", http_client=http)
            async with Client(transport, mode=mode) as client:
                assert client.protocol_version == EXPECTED_PROTOCOL[path]
                yield client
    elif path == "sse-legacy":
        async with Client(sse_client(access.base_url + "/sse", headers=headers), mode="legacy") as client:
            assert client.protocol_version == EXPECTED_PROTOCOL[path]
            yield client
    else:  # pragma: no cover
        raise ValueError(path)


def text_of(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def rule_refusal(index: int, name: str) -> str:
    return f'refused by access rule #{index} "{name}"'


def plan(principal: str, agent: str, secret: str) -> list[dict[str, Any]]:
    """The calls each caller makes: what comes back and the access record it must leave.

    ``refused`` is the text the refusal must contain (None: the call must succeed, with ``text``
    if given); ``rule``/``index``/``matched`` are the audit record's deciding rule and matches.
    """
    allow_echo = {"text": secret, "uppercase": False}
    shout = {"text": secret, "uppercase": True}
    health = {"tool": "health", "args": {}, "refused": None, "rule": "health-for-all", "index": 4,
              "matched": ["#4 health-for-all"]}
    if (principal, agent) == ("letta", "ops-agent"):
        return [
            {"tool": "echo__echo", "args": allow_echo, "refused": None, "text": secret, "rule": "ops-echo",
             "index": 1, "matched": ["#1 ops-echo"]},
            {"tool": "echo__stats", "args": {"numbers": [1, 2, 3]}, "refused": None, "rule": "ops-echo", "index": 1,
             "matched": ["#1 ops-echo"]},
            # deny beats allow: both rules match, the deny decides.
            {"tool": "echo__echo", "args": shout, "refused": rule_refusal(3, "no-shouting"), "rule": "no-shouting",
             "index": 3, "matched": ["#1 ops-echo", "#3 no-shouting"]},
            # `uppercase` absent: the deny's condition cannot be decided, so the deny applies.
            {"tool": "echo__echo", "args": {"text": secret}, "refused": rule_refusal(3, "no-shouting"),
             "rule": "no-shouting", "index": 3, "matched": ["#1 ops-echo", "#3 no-shouting"]},
            health,
        ]
    if (principal, agent) == ("letta", "support-agent"):
        return [
            {"tool": "echo__stats", "args": {"numbers": [4, 5]}, "refused": None, "rule": "support-reads",
             "index": 2, "matched": ["#2 support-reads"]},
            {"tool": "echo__echo", "args": allow_echo, "refused": DEFAULT_REFUSAL, "rule": None, "index": None,
             "matched": []},
            health,
        ]
    # ci, whichever agent it claims: only what rules without principals/groups/agents give everyone.
    return [
        {"tool": "echo__stats", "args": {"numbers": [1]}, "refused": DEFAULT_REFUSAL, "rule": None, "index": None,
         "matched": []},
        {"tool": "echo__echo", "args": allow_echo, "refused": DEFAULT_REFUSAL, "rule": None, "index": None,
         "matched": []},
        {"tool": "echo__echo", "args": shout, "refused": rule_refusal(3, "no-shouting"), "rule": "no-shouting",
         "index": 3, "matched": ["#3 no-shouting"]},
        health,
    ]


async def test_listing_is_filtered_per_caller(path: str, access_server: AccessServer, caller: tuple[str, str]) -> None:
    principal, agent = caller
    async with connect(path, access_server, principal, agent) as client:
        listing = await client.list_tools()
    assert listing.next_cursor is None
    assert sorted(tool.name for tool in listing.tools) == ACCESS_EXPECTED_LISTING[(principal, agent)]


@pytest.mark.parametrize("principal", ["letta", "ci"])
async def test_listing_without_agent_id(path: str, access_server: AccessServer, principal: str) -> None:
    # Every agent-scoped rule needs an X-Agent-Id: without one, letta is as limited as ci.
    async with connect(path, access_server, principal, None) as client:
        listing = await client.list_tools()
    assert sorted(tool.name for tool in listing.tools) == ACCESS_EXPECTED_LISTING[(principal, None)] == ["health"]


async def test_calls_allowed_refused_and_audited(path: str, access_server: AccessServer, caller: tuple[str, str]) -> None:
    principal, agent = caller
    secret = f"secret-{uuid.uuid4().hex}"
    steps = plan(principal, agent, secret)
    offset = access_server.audit_offset()

    async with connect(path, access_server, principal, agent) as client:
        for step in steps:
            result = await client.call_tool(step["tool"], step["args"])
            text = text_of(result)
            where = f"{path} {principal}/{agent} {step['tool']}({step['args']})"
            if step["refused"] is None:
                assert result.is_error is False, f"{where}: expected success, got {text!r}"
                if "text" in step:
                    assert text == step["text"], where
            else:
                assert result.is_error is True, f"{where}: expected a refusal, got {text!r}"
                assert step["refused"] in text, f"{where}: {text!r}"
                assert f"({step['tool']})" in text, f"{where}: the refusal names the tool: {text!r}"
                assert "retrying will not change it" in text, f"{where}: {text!r}"
                assert secret not in text, f"{where}: the refusal echoes an argument value"
                assert "policy.toml" not in text and "[access]" not in text, f"{where}: leaks the policy: {text!r}"

    # Plugin calls that ran leave a `tool_call` record (plugin and tool apart); the built-in
    # `health` leaves only its access record.
    expected_ran = [s["tool"] for s in steps if s["refused"] is None and s["tool"] != "health"]
    records = access_server.wait_for_audit(
        offset,
        lambda rs: sum(r.get("event") == "access" for r in rs) >= len(steps)
        and sum(r.get("event") == "tool_call" for r in rs) >= len(expected_ran),
    )
    access = [r for r in records if r.get("event") == "access"]
    assert len(access) == len(steps), f"{path} {principal}/{agent}: one access record per call, got {access}"
    for step, record in zip(steps, access):
        where = f"{path} {principal}/{agent} {step['tool']}: {record}"
        assert record["principal"] == principal, where
        assert record["agent_id"] == agent, where
        assert record["groups"] == GROUPS[principal], where
        assert record["tool"] == step["tool"], where
        assert record["decision"] == ("allow" if step["refused"] is None else "deny"), where
        assert record.get("rule") == step["rule"], where
        assert record.get("rule_index") == step["index"], where
        assert record["by_default"] is (step["rule"] is None), where
        assert record["matched"] == step["matched"], where
        digest = record["arguments_sha256"]
        assert isinstance(digest, str) and len(digest) == 64 and int(digest, 16) >= 0, where

    # A refused call never ran: tool_call records only for the allowed ones.
    ran = [f"{r['plugin']}__{r['tool']}" for r in records if r.get("event") == "tool_call"]
    assert ran == expected_ran, f"{path} {principal}/{agent}: {records}"
    for record in records:
        if record.get("event") == "tool_call":
            assert record.get("principal") == principal and record.get("agent_id") == agent, record
    # Argument values never reach the audit log (only their digest).
    assert secret not in access_server.audit_text(), "an argument value reached the audit log"


async def test_ci_claiming_the_ops_agent_gains_nothing(path: str, access_server: AccessServer) -> None:
    # The X-Agent-Id header is asserted by the client: it narrows rules, it never adds a group.
    async with connect(path, access_server, "ci", "ops-agent") as ci_as_ops, \
            connect(path, access_server, "ci", None) as ci:
        as_ops = sorted(t.name for t in (await ci_as_ops.list_tools()).tools)
        plain = sorted(t.name for t in (await ci.list_tools()).tools)
        assert as_ops == plain == ["health"]
        for tool, args in [("echo__echo", {"text": "x", "uppercase": False}), ("echo__stats", {"numbers": [1]}),
                           ("echo__wait", {"ms": 1})]:
            result = await ci_as_ops.call_tool(tool, args)
            assert result.is_error is True, f"{path}: ci as ops-agent ran {tool}: {text_of(result)!r}"
            assert DEFAULT_REFUSAL in text_of(result), text_of(result)
