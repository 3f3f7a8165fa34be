"""The Python and JS example plugins through Letta's pinned stack (fastmcp 2.12.5 on mcp 1.12.4),
opened the way Letta opens them (a fresh client per operation): Letta must register every tool
as strict-compliant, and the calls must work, or fail as tool errors Letta shows the model."""

from __future__ import annotations

import json

import pytest
from fastmcp.exceptions import ToolError

from test_letta_stack import (  # client_logs_clean: autouse, Letta's stack must log no problem
    STRICT_COMPLIANT,
    client_logs_clean,  # noqa: F401
    grade_schema,
    letta_connection,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sse", "streamable_http"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_letta_registers_every_example_tool_as_strict(kind: str, guest_server) -> None:
    async with letta_connection(kind, guest_server.base_url) as connection:
        tools = await connection.list_tools()
    names = [tool.name for tool in tools]
    assert any(name.startswith("sysreport__") for name in names), names
    assert any(name.startswith("webcheck__") for name in names), names
    grades = {tool.name: grade_schema(tool.inputSchema) for tool in tools}
    assert {name: grade for name, grade in grades.items() if grade[0] != STRICT_COMPLIANT} == {}


async def test_letta_calls_the_python_plugin(kind: str, guest_server) -> None:
    async with letta_connection(kind, guest_server.base_url) as connection:
        text, ok = await connection.execute_tool("sysreport__disk_usage", {"paths": ["/"]})
    assert ok and json.loads(text)[0]["mounted_on"] == "/"
    # Letta sends every optional argument, null when unset.
    url = f"{guest_server.granted_url}/healthz"
    async with letta_connection(kind, guest_server.base_url) as connection:
        text, ok = await connection.execute_tool(
            "sysreport__service_health", {"url": url, "expect": None, "timeout_s": None}
        )
    assert ok and json.loads(text)["healthy"] is True


async def test_letta_sees_a_refused_capability_as_a_tool_error(kind: str, guest_server) -> None:
    async with letta_connection(kind, guest_server.base_url) as connection:
        with pytest.raises(ToolError, match="argument-refused"):
            await connection.execute_tool("sysreport__disk_usage", {"paths": ["-a"]})
        with pytest.raises(ToolError, match="not an origin the operator granted"):
            await connection.execute_tool("sysreport__service_health", {"url": f"{guest_server.refused_url}/healthz"})


async def test_letta_calls_the_js_plugin(kind: str, guest_server) -> None:
    url = f"{guest_server.granted_url}/healthz"
    async with letta_connection(kind, guest_server.base_url) as connection:
        text, ok = await connection.execute_tool(
            "webcheck__check_url", {"url": url, "expect_status": None, "expect_text": None, "timeout_ms": None}
        )
    assert ok and text.startswith(f"HEALTHY {url}: 200 in "), text
    async with letta_connection(kind, guest_server.base_url) as connection:
        with pytest.raises(ToolError, match="denied: no http grant"):
            await connection.execute_tool("webcheck__check_url", {"url": f"{guest_server.refused_url}/healthz"})
