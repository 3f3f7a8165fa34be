"""sanctum against the current Python MCP client (`mcp` 2.3.0), over all three ways it connects.

* ``streamable-auto``   ``Client(<base>/mcp, mode="auto")``: probes ``server/discover`` and runs the
  stateless 2026-07-28 era.
* ``streamable-legacy`` ``Client(streamable_http_client(<base>/mcp, http_client=httpx2.AsyncClient(...)),
  mode="legacy")``: ``initialize`` handshake (2025-11-25) over Streamable HTTP.
* ``sse-legacy``        ``Client(sse_client(<base>/sse, headers=...), mode="legacy")``: the deprecated
  HTTP+SSE transport with the handshake.

Each test opens its own client, so a broken test cannot poison the next one's session.
"""

from __future__ import annotations

import base64
import json
import shutil
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, MCPError
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import (
    AudioContent,
    CallToolResult,
    EmbeddedResource,
    ImageContent,
    LoggingMessageNotificationParams,
    TextContent,
    TextResourceContents,
)

from sanctum_server import EXPECTED_TOOLS, REPO_ROOT, start_server, stop_server

pytestmark = pytest.mark.anyio

HEADERS = {"Authorization": "Bearer test-token", "X-Agent-Id": "agent-1"}
"""Sent on the two paths that take headers; sanctum ignores them for now (no auth yet)."""

PATHS = ["streamable-auto", "streamable-legacy", "sse-legacy"]
EXPECTED_PROTOCOL = {
    "streamable-auto": "2026-07-28",
    "streamable-legacy": "2025-11-25",
    "sse-legacy": "2025-11-25",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> str:
    return request.param


@asynccontextmanager
async def connect(path: str, base_url: str, **client_kwargs: Any) -> AsyncIterator[Client]:
    """An entered ``mcp.Client`` for one of the three client paths."""
    if path == "streamable-auto":
        async with Client(base_url + "/mcp", mode="auto", **client_kwargs) as client:
            yield client
    elif path == "streamable-legacy":
        # The caller owns a client passed as http_client (streamable_http_client does not close it).
        async with httpx2.AsyncClient(headers=HEADERS, timeout=httpx2.Timeout(30, read=300)) as http:
            transport = streamable_http_client(base_url + "/mcp", http_client=http)
            async with Client(transport, mode="legacy", **client_kwargs) as client:
                yield client
    elif path == "sse-legacy":
        transport = sse_client(base_url + "/sse", headers=HEADERS)
        async with Client(transport, mode="legacy", **client_kwargs) as client:
            yield client
    else:  # pragma: no cover
        raise ValueError(path)


def texts(result: CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, TextContent)]


def only_text(result: CallToolResult) -> str:
    assert len(result.content) == 1, f"expected one content block, got {result.content!r}"
    block = result.content[0]
    assert isinstance(block, TextContent), f"expected a text block, got {block!r}"
    return block.text


# ---------------------------------------------------------------------------------------------
# connection and listing
# ---------------------------------------------------------------------------------------------


async def test_connects_and_identifies(path: str, base_url: str, expected_version: str) -> None:
    async with connect(path, base_url) as client:
        assert client.protocol_version == EXPECTED_PROTOCOL[path]
        info = client.server_info
        assert info is not None, "server did not identify itself (serverInfo / _meta serverInfo stamp)"
        assert info.name == "sanctum"
        assert info.version == expected_version
        assert client.server_capabilities.tools is not None, "tools capability not advertised"


async def test_list_tools(path: str, base_url: str) -> None:
    async with connect(path, base_url) as client:
        listing = await client.list_tools()
    assert listing.next_cursor is None, "all tools are expected on one page"
    assert [tool.name for tool in listing.tools] == EXPECTED_TOOLS
    for tool in listing.tools:
        schema = tool.input_schema
        assert schema.get("type") == "object", f"{tool.name}: root type is {schema.get('type')!r}"
        assert schema.get("additionalProperties") is False, f"{tool.name}: additionalProperties is not false"

    tools = {tool.name: tool for tool in listing.tools}
    echo = tools["echo__echo"].input_schema
    assert set(echo["properties"]) == {"text", "repeat", "uppercase"}
    assert echo["required"] == ["text"]
    assert echo["properties"]["text"]["type"] == "string"

    stats = tools["echo__stats"]
    numbers = stats.input_schema["properties"]["numbers"]
    assert numbers["type"] == "array"
    assert numbers.get("items", {}).get("type") == "number", numbers
    assert numbers.get("minItems") == 1, numbers
    assert stats.output_schema is not None, "echo__stats must declare an outputSchema"
    assert stats.output_schema.get("type") == "object"

    for name in ("echo__image", "health"):
        assert not tools[name].input_schema.get("required"), f"{name} takes no arguments"


# ---------------------------------------------------------------------------------------------
# calls
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"text": "hi", "repeat": 3}, "hi hi hi"),
        ({"text": "hi"}, "hi"),
        ({"text": "Mixed case", "uppercase": True}, "MIXED CASE"),
        ({"text": "ab", "repeat": 2, "uppercase": False}, "ab ab"),
        # Letta's strict-mode conversion sends absent optionals as explicit nulls.
        ({"text": "null ok", "repeat": None, "uppercase": None}, "null ok"),
    ],
    ids=["repeat", "plain", "uppercase", "both", "nulls"],
)
async def test_echo(path: str, base_url: str, arguments: dict[str, Any], expected: str) -> None:
    async with connect(path, base_url) as client:
        result = await client.call_tool("echo__echo", arguments)
    assert result.is_error is False, f"unexpected error result: {texts(result)}"
    assert only_text(result) == expected


@pytest.mark.parametrize(
    ("tool", "arguments", "prop"),
    [
        ("echo__echo", {"text": 5}, "text"),
        ("echo__echo", {"text": "a", "repeat": 99}, "repeat"),
        ("echo__echo", {}, "text"),
        ("echo__echo", {"text": "a", "bogus": 1}, "bogus"),
        ("echo__stats", {"numbers": []}, "numbers"),
    ],
    ids=["wrong-type", "out-of-range", "missing-required", "extra-property", "min-items"],
)
async def test_schema_violation_is_tool_error(
    path: str, base_url: str, tool: str, arguments: dict[str, Any], prop: str
) -> None:
    async with connect(path, base_url) as client:
        # A JSON-RPC error would raise MCPError here; the contract is an isError tool result.
        result = await client.call_tool(tool, arguments)
    assert result.is_error is True, f"expected isError for {arguments!r}, got {result!r}"
    text = " ".join(texts(result))
    assert text.startswith(f"invalid arguments for {tool}:"), text
    assert prop in text, f"error text does not name {prop!r}: {text}"


async def test_fail_is_tool_error(path: str, base_url: str) -> None:
    async with connect(path, base_url) as client:
        result = await client.call_tool("echo__fail", {"reason": "the reason"})
    assert result.is_error is True
    assert texts(result) == ["failed as asked: the reason"]


async def test_unknown_tool_is_jsonrpc_error(path: str, base_url: str) -> None:
    async with connect(path, base_url) as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("no_such_tool", {})
        # The session survives a protocol error.
        after = await client.call_tool("echo__echo", {"text": "still here"})
    assert caught.value.code == -32602, caught.value.error
    assert "unknown tool" in caught.value.message.lower(), caught.value.message
    assert only_text(after) == "still here"


async def test_stats_structured_content(path: str, base_url: str) -> None:
    async with connect(path, base_url) as client:
        await client.list_tools()  # so the client validates structuredContent against outputSchema
        result = await client.call_tool("echo__stats", {"numbers": [4, 1.5, -2, 8.5]})
    assert result.is_error is False, texts(result)
    expected = {"count": 4, "sum": 12.0, "mean": 3.0, "min": -2, "max": 8.5}
    assert result.structured_content == expected
    blocks = texts(result)
    assert len(blocks) == 1, result.content
    assert json.loads(blocks[0]) == expected


async def test_image(path: str, base_url: str) -> None:
    async with connect(path, base_url) as client:
        result = await client.call_tool("echo__image", {})
    assert result.is_error is False
    images = [block for block in result.content if isinstance(block, ImageContent)]
    assert len(images) == 1, result.content
    assert images[0].mime_type == "image/png"
    assert base64.b64decode(images[0].data).startswith(PNG_SIGNATURE)
    assert texts(result) == ["a 1x1 PNG"]


@pytest.fixture(scope="module")
def conformance_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second server with only the conformance fixture plugin, whose tools return audio and
    embedded resources (no bundled plugin does), served under bare names as the policy allows."""
    root = tmp_path_factory.mktemp("conformance")
    plugins = root / "plugins"
    plugins.mkdir()
    shutil.copy(REPO_ROOT / "tests" / "plugins" / "conformance.wasm", plugins)
    policy = root / "policy.toml"
    policy.write_text("[plugins.conformance]\nbare_tool_names = true\n", encoding="utf-8")
    server = start_server("modern-conformance", plugins=plugins, policy=policy)
    try:
        yield server.base_url
    finally:
        stop_server(server)


async def test_audio_and_embedded_resources(path: str, conformance_url: str) -> None:
    async with connect(path, conformance_url) as client:
        audio = await client.call_tool("test_audio_content", {})
        embedded = await client.call_tool("test_embedded_resource", {})
        mixed = await client.call_tool("test_multiple_content_types", {})

    assert audio.is_error is False
    assert len(audio.content) == 1 and isinstance(audio.content[0], AudioContent), audio.content
    assert audio.content[0].mime_type == "audio/wav"
    wav = base64.b64decode(audio.content[0].data)
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE", wav[:16]

    assert embedded.is_error is False
    assert len(embedded.content) == 1 and isinstance(embedded.content[0], EmbeddedResource), embedded.content
    resource = embedded.content[0].resource
    assert isinstance(resource, TextResourceContents), resource
    assert (str(resource.uri), resource.mime_type, resource.text) == (
        "test://embedded-resource",
        "text/plain",
        "This is an embedded resource content.",
    )

    assert [type(block) for block in mixed.content] == [TextContent, ImageContent, EmbeddedResource], mixed.content
    assert base64.b64decode(mixed.content[1].data).startswith(PNG_SIGNATURE)
    data = mixed.content[2].resource
    assert isinstance(data, TextResourceContents) and data.mime_type == "application/json", data
    assert json.loads(data.text) == {"test": "data", "value": 123}


async def test_short_wait(path: str, base_url: str) -> None:
    async with connect(path, base_url) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("echo__wait", {"ms": 50})
    assert only_text(result) == "waited 50 ms"


async def test_health_tool(path: str, base_url: str) -> None:
    async with connect(path, base_url) as client:
        result = await client.call_tool("health", {})
    assert result.is_error is False
    body = json.loads(only_text(result))
    assert body["status"] == "ok"
    assert isinstance(body["queue_depth"], int) and body["queue_depth"] >= 0
    assert isinstance(body["tool_count"], int)
    # The contract does not say whether `health` itself is counted.
    assert body["tool_count"] in (len(EXPECTED_TOOLS), len(EXPECTED_TOOLS) - 1), body
    plugins = {plugin["name"]: plugin for plugin in body["plugins"]}
    assert "echo" in plugins, body["plugins"]
    for plugin in body["plugins"]:
        assert {"name", "version", "tools"} <= set(plugin), plugin


# ---------------------------------------------------------------------------------------------
# notifications and cancellation
# ---------------------------------------------------------------------------------------------


async def test_progress_and_logging(path: str, base_url: str) -> None:
    steps = 5
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[LoggingMessageNotificationParams] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        logs.append(params)

    # 2026-07-28: a request opts in to log messages with _meta logLevel (Client(log_level=...)).
    # Handshake era: logging/setLevel governs delivery instead.
    async with connect(path, base_url, logging_callback=on_log, log_level="info") as client:
        if path != "streamable-auto":
            assert client.server_capabilities.logging is not None, (
                "server sends log notifications but does not advertise the logging capability"
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await client.set_logging_level("info")
        with anyio.fail_after(30):
            result = await client.call_tool("echo__progress", {"steps": steps}, progress_callback=on_progress)
        # Callbacks run in their own tasks; give stragglers a moment.
        with anyio.move_on_after(2):
            while len(progress) < steps or len(logs) < steps:
                await anyio.sleep(0.05)

    assert result.is_error is False, texts(result)
    assert only_text(result) == f"completed {steps} steps"

    values = [value for value, _, _ in progress]
    assert len(values) >= 3, f"expected >= 3 progress notifications, got {progress}"
    assert values == sorted(set(values)), f"progress must strictly increase: {values}"
    for value, total, message in progress:
        assert total == steps
        assert message == f"step {int(value)} of {steps}"

    assert len(logs) >= 3, f"expected >= 3 log notifications, got {logs}"
    assert all(log.level == "info" for log in logs), [log.level for log in logs]


async def test_cancel_frees_worker(path: str, base_url: str) -> None:
    async with connect(path, base_url) as client:
        started = anyio.current_time()
        with anyio.move_on_after(1) as scope:
            await client.call_tool("echo__wait", {"ms": 60000})
        assert scope.cancelled_caught, "echo__wait {ms: 60000} returned before the 1 s cancel"
        assert anyio.current_time() - started < 10

        # If the cancel did not reach the running plugin, this call queues behind a 60 s wait.
        started = anyio.current_time()
        with anyio.fail_after(20):
            result = await client.call_tool("echo__echo", {"text": "after cancel"})
        elapsed = anyio.current_time() - started
    assert only_text(result) == "after cancel"
    assert elapsed < 20, elapsed


# ---------------------------------------------------------------------------------------------
# plain HTTP
# ---------------------------------------------------------------------------------------------


async def test_healthz(base_url: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.get(base_url + "/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["status"] == "ok"
