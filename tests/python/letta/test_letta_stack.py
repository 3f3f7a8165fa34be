"""sanctum against Letta 0.16.x's exact MCP client stack: fastmcp 2.12.5 on `mcp` 1.12.4.

Letta's ``AsyncFastMCPSSEClient`` / ``AsyncFastMCPStreamableHTTPClient`` build a fresh
``fastmcp.Client(transport)`` per operation, ``await client._connect()`` (initialize +
initialized), do ONE thing (``list_tools()`` or ``call_tool()``), then ``await client.close()``.
``LettaStyleConnection`` below reproduces that, including how a result becomes the text the
agent sees (text blocks, else ``str(block)``, joined by one space).

Every test also fails if the client stack logged a warning, an error or a traceback (e.g. mcp
1.12.4's ``Error parsing SSE message`` / ``Invalid JSON`` on an SSE priming event, or the
root-logger ``Failed to validate notification`` when a notification breaks a callback).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import SSETransport, StreamableHttpTransport
from fastmcp.exceptions import ToolError
from mcp.shared.exceptions import McpError

from sanctum_server import EXPECTED_TOOLS

pytestmark = pytest.mark.anyio

HEADERS = {"Authorization": "Bearer test-token", "X-Agent-Id": "agent-1"}
TRANSPORTS = ["sse", "streamable_http"]

# Known harmless noise, kept out of the clean-log check. None today: sanctum answers the session
# DELETE with 204 (mcp 1.12.4 warns "Session termination failed: 202" on rmcp's default).
ALLOWED_LOG_MESSAGES: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Letta's schema grade (letta/functions/schema_validator.py, as described in
# shared/notes/letta-and-clients.md section 2), re-implemented for the test.
# ---------------------------------------------------------------------------------------------

STRICT_COMPLIANT = "STRICT_COMPLIANT"
NON_STRICT_ONLY = "NON_STRICT_ONLY"
INVALID = "INVALID"
_RANK = {STRICT_COMPLIANT: 0, NON_STRICT_ONLY: 1, INVALID: 2}


def grade_schema(schema: Any) -> tuple[str, list[str]]:
    """Grade a tool input schema the way Letta decides whether to register an MCP tool.

    INVALID: root type not object; a node with no type (unless it is a union or implies a type
    via properties/items); an array without items; `required` naming a missing property; a
    required property that admits an empty object or an empty array.
    NON_STRICT_ONLY: an object whose additionalProperties is missing or not false, or a nested
    object without `required`.
    """
    grade = STRICT_COMPLIANT
    reasons: list[str] = []

    def worse(new: str, reason: str) -> None:
        nonlocal grade
        if _RANK[new] > _RANK[grade]:
            grade = new
        reasons.append(f"{new}: {reason}")

    def admits_empty_object(node: dict[str, Any]) -> bool:
        return node.get("type") == "object" and not node.get("required") and node.get("additionalProperties") is False

    def admits_empty_array(node: dict[str, Any]) -> bool:
        return node.get("type") == "array" and not node.get("minItems", 0) and node.get("items") is None

    def visit(node: Any, where: str, root: bool = False) -> None:
        if not isinstance(node, dict):
            worse(INVALID, f"{where}: not a schema object")
            return
        kind = node.get("type")
        if not kind:
            if "properties" in node or "additionalProperties" in node:
                kind = "object"
            elif "items" in node:
                kind = "array"
            elif not any(key in node for key in ("anyOf", "oneOf", "allOf")):
                worse(INVALID, f"{where}: no type")
                return
        if kind == "object":
            props = node.get("properties")
            if props is not None and not isinstance(props, dict):
                worse(INVALID, f"{where}: properties is not an object")
                return
            if node.get("additionalProperties", None) is not False:
                worse(NON_STRICT_ONLY, f"{where}: additionalProperties missing or not false")
            required = node.get("required")
            if required is None:
                if not root:
                    worse(NON_STRICT_ONLY, f"{where}: nested object without required")
                required = []
            elif not isinstance(required, list):
                worse(INVALID, f"{where}: required is not a list")
                required = []
            for name in required:
                if props and name not in props:
                    worse(INVALID, f"{where}: required names missing property {name!r}")
                elif props and isinstance(props[name], dict):
                    if admits_empty_object(props[name]):
                        worse(INVALID, f"{where}: required {name!r} admits an empty object")
                    if admits_empty_array(props[name]):
                        worse(INVALID, f"{where}: required {name!r} admits an empty array")
            for name, sub in (props or {}).items():
                visit(sub, f"{where}.properties.{name}")
        elif kind == "array":
            items = node.get("items")
            if items is None:
                worse(INVALID, f"{where}: array without items")
            else:
                visit(items, f"{where}.items")
        for key in ("anyOf", "oneOf", "allOf"):
            if key in node:
                if not isinstance(node[key], list):
                    worse(INVALID, f"{where}: {key} is not a list")
                else:
                    for index, sub in enumerate(node[key]):
                        visit(sub, f"{where}.{key}[{index}]")

    if not isinstance(schema, dict):
        return INVALID, ["root: not a schema object"]
    if schema.get("type") != "object":
        worse(INVALID, "root: type is not object")
    visit(schema, "root", root=True)
    return grade, reasons


def test_grader_itself() -> None:
    strict = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "n": {"type": "array", "items": {"type": "number"}, "minItems": 1}},
        "required": ["a", "n"],
        "additionalProperties": False,
    }
    assert grade_schema(strict)[0] == STRICT_COMPLIANT
    assert grade_schema({"type": "object", "properties": {}, "additionalProperties": False})[0] == STRICT_COMPLIANT
    assert grade_schema({"type": "object", "properties": {"a": {"type": "string"}}})[0] == NON_STRICT_ONLY
    assert grade_schema({"type": "string"})[0] == INVALID
    assert grade_schema({"type": "object", "properties": {"a": {}}, "additionalProperties": False})[0] == INVALID
    untyped_array = {"type": "object", "properties": {"a": {"type": "array"}}, "additionalProperties": False}
    assert grade_schema(untyped_array)[0] == INVALID
    dangling = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"], "additionalProperties": False}
    assert grade_schema(dangling)[0] == INVALID
    nullable = {
        "type": "object",
        "properties": {"r": {"type": ["integer", "null"]}, "u": {"anyOf": [{"type": "boolean"}, {"type": "null"}]}},
        "additionalProperties": False,
    }
    assert grade_schema(nullable)[0] == STRICT_COMPLIANT


# ---------------------------------------------------------------------------------------------
# Letta-style connection: new client per operation
# ---------------------------------------------------------------------------------------------


class LettaStyleConnection:
    """What Letta 0.16.x's AsyncFastMCP*Client does around one operation."""

    def __init__(self, kind: str, base_url: str) -> None:
        if kind == "sse":
            self.transport: SSETransport | StreamableHttpTransport = SSETransport(
                url=base_url + "/sse", headers=dict(HEADERS)
            )
        else:
            self.transport = StreamableHttpTransport(url=base_url + "/mcp", headers=dict(HEADERS))
        self.client: Client[Any] = Client(self.transport)

    async def connect_to_server(self) -> None:
        await self.client._connect()  # exactly what Letta calls (initialize + initialized)

    async def list_tools(self):
        return await self.client.list_tools()

    async def execute_tool(self, name: str, args: dict[str, Any]) -> tuple[str, bool]:
        result = await self.client.call_tool(name, args)  # raises ToolError on isError
        parts = [block.text if hasattr(block, "text") else str(block) for block in result.content]
        return (" ".join(parts) if parts else "Empty response from tool"), not result.is_error

    async def cleanup(self) -> None:
        await self.client.close()


@asynccontextmanager
async def letta_connection(kind: str, base_url: str) -> AsyncIterator[LettaStyleConnection]:
    connection = LettaStyleConnection(kind, base_url)
    await connection.connect_to_server()
    try:
        yield connection
    finally:
        await connection.cleanup()


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def client_logs_clean(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if the client stack logged WARNING or worse (or any traceback).

    `mcp` loggers propagate to the root logger (which caplog hooks); mcp 1.12.4 also logs some
    problems on the root logger itself. fastmcp's logger does not propagate, so hook it directly.
    """
    fastmcp_logger = logging.getLogger("fastmcp")
    fastmcp_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING):
            yield
    finally:
        fastmcp_logger.removeHandler(caplog.handler)
    bad = [
        record
        for record in caplog.get_records("call")
        if (record.levelno >= logging.WARNING or record.exc_info)
        and record.getMessage() not in ALLOWED_LOG_MESSAGES
    ]
    if bad:
        lines = [f"{r.levelname} {r.name}: {r.getMessage()}" + (" (with traceback)" if r.exc_info else "") for r in bad]
        pytest.fail("client stack logged problems:\n" + "\n".join(lines), pytrace=False)


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------


async def test_initialize(kind: str, base_url: str, expected_version: str) -> None:
    async with letta_connection(kind, base_url) as connection:
        init = connection.client.initialize_result
    assert init.protocolVersion == "2025-06-18", "must echo mcp 1.12.4's requested version"
    assert init.serverInfo.name == "sanctum"
    assert init.serverInfo.version == expected_version
    assert init.capabilities.tools is not None


async def test_list_tools_register_in_letta(kind: str, base_url: str) -> None:
    async with letta_connection(kind, base_url) as connection:
        tools = await connection.list_tools()  # one page: fastmcp 2.12.5 never follows nextCursor
    assert [tool.name for tool in tools] == EXPECTED_TOOLS
    grades = {tool.name: grade_schema(tool.inputSchema) for tool in tools}
    invalid = {name: reasons for name, (grade, reasons) in grades.items() if grade == INVALID}
    assert not invalid, f"Letta would skip these tools: {invalid}"
    for tool in tools:
        assert tool.inputSchema.get("additionalProperties") is False, tool.name
        assert tool.description, f"{tool.name}: Letta shows the description to the model"


async def test_echo(kind: str, base_url: str) -> None:
    async with letta_connection(kind, base_url) as connection:
        assert await connection.execute_tool("echo__echo", {"text": "hi", "repeat": 3}) == ("hi hi hi", True)


async def test_echo_with_strict_mode_nulls(kind: str, base_url: str) -> None:
    # Letta's strict-mode schema makes optional fields required + nullable, so they can arrive as null.
    async with letta_connection(kind, base_url) as connection:
        text, ok = await connection.execute_tool("echo__echo", {"text": "x", "repeat": None, "uppercase": None})
    assert (text, ok) == ("x", True)


async def test_fail_raises_tool_error(kind: str, base_url: str) -> None:
    async with letta_connection(kind, base_url) as connection:
        with pytest.raises(ToolError) as caught:
            await connection.execute_tool("echo__fail", {"reason": "boom"})
    # Letta shows str(error) to the model.
    assert str(caught.value) == "failed as asked: boom"


@pytest.mark.parametrize(
    ("arguments", "prop"),
    [({"text": 5}, "text"), ({"text": "a", "repeat": 99}, "repeat"), ({}, "text"), ({"text": "a", "x": 1}, "x")],
    ids=["wrong-type", "out-of-range", "missing-required", "extra-property"],
)
async def test_schema_violation_raises_tool_error(kind: str, base_url: str, arguments: dict[str, Any], prop: str) -> None:
    async with letta_connection(kind, base_url) as connection:
        with pytest.raises(ToolError) as caught:
            await connection.execute_tool("echo__echo", arguments)
    message = str(caught.value)
    assert message.startswith("invalid arguments for echo__echo:"), message
    assert prop in message, message


async def test_unknown_tool_raises_mcp_error(kind: str, base_url: str) -> None:
    async with letta_connection(kind, base_url) as connection:
        with pytest.raises(McpError) as caught:
            await connection.execute_tool("no_such_tool", {})
    assert caught.value.error.code == -32602
    assert "unknown tool" in str(caught.value).lower()


async def test_stats_with_output_schema(kind: str, base_url: str) -> None:
    # mcp 1.12.4 validates structuredContent against the declared outputSchema (RuntimeError if
    # not), and fastmcp 2.12.5 turns it into a Python value (logs an ERROR if it cannot).
    async with letta_connection(kind, base_url) as connection:
        text, ok = await connection.execute_tool("echo__stats", {"numbers": [1, 2, 3, 4]})
    assert ok
    assert json.loads(text) == {"count": 4, "sum": 10, "mean": 2.5, "min": 1, "max": 4}


async def test_image_as_letta_sees_it(kind: str, base_url: str) -> None:
    async with letta_connection(kind, base_url) as connection:
        text, ok = await connection.execute_tool("echo__image", {})
    assert ok
    assert text.startswith("type='image'"), text[:80]
    assert "mimeType='image/png'" in text
    assert text.endswith(" a 1x1 PNG")


async def test_progress_call(kind: str, base_url: str) -> None:
    # fastmcp always sends a progress token and routes server log notifications through its
    # default handler, which expects `data` to be an object (it calls data.get("msg")).
    async with letta_connection(kind, base_url) as connection:
        assert await connection.execute_tool("echo__progress", {"steps": 3}) == ("completed 3 steps", True)


async def test_health(kind: str, base_url: str) -> None:
    async with letta_connection(kind, base_url) as connection:
        text, ok = await connection.execute_tool("health", {})
    assert ok
    assert json.loads(text)["status"] == "ok"
