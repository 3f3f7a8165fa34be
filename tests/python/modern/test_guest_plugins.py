"""The Python and JS example plugins (plugins-src/python/sysreport, plugins-src/js/webcheck),
built by their SDKs, served by the real server and called by `mcp` 2.3.0: strict schemas, real
work, and each capability both granted and refused by the operator's policy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.types import CallToolResult, TextContent

pytestmark = pytest.mark.anyio

PATHS = ["streamable-auto", "sse-legacy"]
AGENT = "agent-9"
"""Sent as X-Agent-Id on the legacy path only; a plugin sees it through `agent_id()`."""


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    return request.param


@asynccontextmanager
async def connect(path: str, base_url: str) -> AsyncIterator[Client]:
    if path == "streamable-auto":
        async with Client(base_url + "/mcp", mode="auto") as client:
            yield client
    else:
        async with Client(sse_client(base_url + "/sse", headers={"X-Agent-Id": AGENT}), mode="legacy") as client:
            yield client


def text_of(result: CallToolResult, blocks: int = 1, index: int = 0) -> str:
    assert len(result.content) == blocks, result.content
    block = result.content[index]
    assert isinstance(block, TextContent), block
    return block.text


async def call(path: str, base_url: str, tool: str, args: dict[str, Any]) -> CallToolResult:
    async with connect(path, base_url) as client:
        return await client.call_tool(tool, args)


async def test_the_examples_tools_are_listed_with_strict_schemas(path: str, guest_server) -> None:
    async with connect(path, guest_server.base_url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"sysreport__disk_usage", "sysreport__fullest", "sysreport__service_health"} <= tools.keys()
    assert any(name.startswith("webcheck__") for name in tools), sorted(tools)
    for name, tool in tools.items():
        schema = tool.input_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False, name
        assert set(schema.get("required", [])) <= set(schema["properties"]), name
        assert tool.description, name
    health = tools["sysreport__service_health"].input_schema
    assert health["required"] == ["url"]
    assert health["properties"]["expect"]["type"] == ["string", "null"], "optionals are nullable for strict clients"
    assert tools["sysreport__disk_usage"].annotations.read_only_hint is True


# --- Python: sysreport, the `df` command grant ----------------------------------------------


async def test_python_disk_usage_runs_the_granted_df(path: str, guest_server) -> None:
    result = await call(path, guest_server.base_url, "sysreport__disk_usage", {"paths": ["/"]})
    assert not result.is_error, result.content
    rows = json.loads(text_of(result))
    assert [row["mounted_on"] for row in rows] == ["/"]
    assert rows[0]["size_kib"] > 0 and 0 <= rows[0]["use_percent"] <= 100


async def test_python_df_refuses_an_argument_the_grant_does_not_allow(path: str, guest_server) -> None:
    result = await call(path, guest_server.base_url, "sysreport__disk_usage", {"paths": ["--version"]})
    assert result.is_error
    assert "argument-refused" in text_of(result)


async def test_python_fullest_sorts_what_df_reports(path: str, guest_server) -> None:
    result = await call(path, guest_server.base_url, "sysreport__fullest", {"limit": 2, "min_percent": None})
    assert not result.is_error, result.content
    lines = text_of(result).splitlines()
    assert 1 <= len(lines) <= 2
    percents = [int(line.split("%")[0]) for line in lines]
    assert percents == sorted(percents, reverse=True)


# --- Python: sysreport, an HTTP grant through wasi:http ---------------------------------------


async def test_python_service_health_reaches_the_granted_origin(path: str, guest_server) -> None:
    url = f"{guest_server.granted_url}/healthz"
    result = await call(path, guest_server.base_url, "sysreport__service_health", {"url": url, "expect": "all systems"})
    assert not result.is_error, result.content
    health = json.loads(text_of(result))
    assert (health["healthy"], health["status"], health["detail"]) == (True, 200, "ok: all systems go")
    down = await call(path, guest_server.base_url, "sysreport__service_health", {"url": f"{guest_server.granted_url}/x"})
    assert json.loads(text_of(down))["status"] == 503


async def test_python_service_health_is_refused_an_origin_not_granted(path: str, guest_server) -> None:
    url = f"{guest_server.refused_url}/healthz"
    result = await call(path, guest_server.base_url, "sysreport__service_health", {"url": url})
    assert result.is_error
    message = text_of(result)
    assert "not an origin the operator granted" in message
    assert "denied" in message, "the host names the refused origin"


# --- JavaScript: webcheck, an HTTP grant through fetch -------------------------------------


async def test_js_check_url_reaches_the_granted_origin(path: str, guest_server) -> None:
    url = f"{guest_server.granted_url}/healthz"
    result = await call(path, guest_server.base_url, "webcheck__check_url", {"url": url, "expect_text": "all systems"})
    assert not result.is_error, result.content
    assert text_of(result, blocks=2).startswith(f"HEALTHY {url}: 200 in ")
    report = json.loads(text_of(result, blocks=2, index=1))
    assert (report["healthy"], report["status"], report["excerpt"]) == (True, 200, "ok: all systems go")
    down = await call(path, guest_server.base_url, "webcheck__check_url", {"url": f"{guest_server.granted_url}/x"})
    assert not down.is_error and json.loads(text_of(down, blocks=2, index=1))["status"] == 503


async def test_js_check_url_is_refused_an_origin_not_granted(path: str, guest_server) -> None:
    url = f"{guest_server.refused_url}/healthz"
    result = await call(path, guest_server.base_url, "webcheck__check_url", {"url": url})
    assert result.is_error
    message = text_of(result)
    assert f"denied: no http grant for {guest_server.refused_url}" in message, message


async def test_js_check_many_sums_up_granted_and_refused(path: str, guest_server) -> None:
    urls = [f"{guest_server.granted_url}/healthz", f"{guest_server.refused_url}/healthz"]
    result = await call(path, guest_server.base_url, "webcheck__check_many", {"urls": urls})
    assert not result.is_error, result.content
    assert text_of(result, blocks=2).startswith("1 of 2 healthy")


# --- Both SDKs inside a real component: pyecho and jsecho -----------------------------------

PROBES = ["pyecho", "jsecho"]


@pytest.fixture(params=PROBES)
def probe(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_echo_in_each_language(path: str, guest_server, probe: str) -> None:
    result = await call(path, guest_server.base_url, f"{probe}__echo", {"text": "hello"})
    assert (result.is_error, text_of(result)) == (False, "hello")


async def test_anything_thrown_is_a_tool_error_not_a_trap(path: str, guest_server, probe: str) -> None:
    args = {"message": "boom"} if probe == "pyecho" else {"code": 7}
    result = await call(path, guest_server.base_url, f"{probe}__crash", args)
    assert result.is_error
    message = text_of(result)
    if probe == "pyecho":
        assert message.startswith("KeyError: 'boom'"), message
    else:
        assert "7" in message and "thrown on purpose" in message, message
    # The plugin still answers: a tool error is a result, the instance did not trap.
    again = await call(path, guest_server.base_url, f"{probe}__echo", {"text": "still here"})
    assert text_of(again) == "still here"


async def test_output_past_the_capture_is_dropped_not_a_failure(path: str, guest_server, probe: str) -> None:
    result = await call(path, guest_server.base_url, f"{probe}__chatter", {"kib": 512})
    assert (result.is_error, text_of(result)) == (False, "printed 512 KiB")


async def test_a_post_with_a_body_goes_out_through_wasi_http(path: str, guest_server, probe: str) -> None:
    url = f"{guest_server.granted_url}/submit"
    result = await call(path, guest_server.base_url, f"{probe}__post", {"url": url, "size": 100_000})
    assert not result.is_error, result.content
    assert json.loads(text_of(result)) == {"status": 200, "body": f"got 100000 bytes from {probe}"}
    refused = await call(path, guest_server.base_url, f"{probe}__post", {"url": guest_server.refused_url, "size": 1})
    assert refused.is_error and "denied" in text_of(refused)


async def test_host_services_inside_the_component(path: str, guest_server, probe: str) -> None:
    result = await call(path, guest_server.base_url, f"{probe}__services", {})
    assert not result.is_error, result.content
    assert json.loads(text_of(result)) == {
        "agent": AGENT if path == "sse-legacy" else None,
        "greeting": "hello from the policy",
        "cancelled": False,
    }
