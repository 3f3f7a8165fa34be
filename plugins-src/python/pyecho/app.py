"""pyecho: the benchmark's Python twin of the Rust `echo` (host/benches/load/guests.rs), plus
tools that exercise the Python SDK inside a real component for the end-to-end tests
(tests/python/*/test_guest_plugins.py): an uncaught exception, output past the host's capture,
an HTTP POST with a body, and the host services."""

from __future__ import annotations

import sys
from typing import Annotated

from sanctum_plugin import Field, Plugin, agent_id, config, http, is_cancelled, log, progress

plugin = Plugin(
    "pyecho",
    version="0.1.0",
    description="Echoes text back (a benchmark fixture) and exercises the Python SDK in tests.",
)


@plugin.tool(read_only=True, destructive=False, idempotent=True, open_world=False)
def echo(text: Annotated[str, Field(description="The text to echo.", max_length=10000)]) -> str:
    """Echo the text back unchanged."""
    return text


@plugin.tool
def crash(message: str) -> str:
    """Raise an exception that is not a ToolError: it must still be a tool error, not a trap."""
    return {"a": 1}[message]


@plugin.tool
def chatter(kib: Annotated[int, Field(minimum=0, maximum=4096)]) -> str:
    """Print `kib` KiB to stdout and stderr, past the host's capture, then answer."""
    line = "x" * 1023 + "\n"
    for _ in range(kib):
        sys.stdout.write(line)
        sys.stderr.write(line)
    sys.stdout.flush()
    return f"printed {kib} KiB"


@plugin.tool
def post(url: str, size: Annotated[int, Field(minimum=0, maximum=1_000_000)]) -> dict:
    """POST `size` bytes to `url` through wasi:http and report the answer."""
    answer = http.post(url, body=b"y" * size, headers={"x-probe": "pyecho"})
    return {"status": answer.status, "body": answer.text[:200]}


@plugin.tool
def services() -> dict:
    """What the host services answer inside the component."""
    log("info", "pyecho services called")
    progress(1, 2, "halfway")
    return {"agent": agent_id(), "greeting": config("greeting"), "cancelled": is_cancelled()}


Tools = plugin.exports()
