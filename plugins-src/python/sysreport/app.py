"""sysreport: disk usage and service health for an agent: the operator's `df` (a granted command,
no shell) and HTTP health endpoints (granted origins, through wasi:http).

Built with the Python SDK (`guest-sdk/python`) and componentize-py:

    componentize-py -d ../../../wit -w plugin componentize app \\
        -p . -p ../../../guest-sdk/python -o sysreport.wasm

The operator grants `df` in the policy, e.g.

    [plugins.sysreport.commands.df]
    program = "/usr/bin/df"
    args = ["-P", "-k"]
    allowed_args = ["/[A-Za-z0-9_./-]{0,200}"]

    [[plugins.sysreport.http]]
    url = "http://status.internal:8080"
    allow_ranges = ["10.20.0.0/16"]
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated

from sanctum_plugin import CommandError, Field, Plugin, ToolError, http, log, progress, run

plugin = Plugin(
    "sysreport",
    version="0.1.0",
    description="Disk usage of the server's file systems (the operator's df) and health of HTTP services.",
    requires=[("command", "df")],
)


@dataclasses.dataclass
class Usage:
    filesystem: str
    mounted_on: str
    size_kib: int
    used_kib: int
    available_kib: int
    use_percent: int


def parse_df(text: str) -> list[Usage]:
    """The rows of `df -P -k` output (POSIX format: one line per file system)."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6:
            continue
        # The mount point is the rest of the line: it may contain spaces.
        filesystem, size, used, available, capacity = fields[:5]
        mounted_on = line.split(None, 5)[5]
        try:
            rows.append(
                Usage(filesystem, mounted_on, int(size), int(used), int(available), int(capacity.rstrip("%")))
            )
        except ValueError:
            continue
    return rows


def df(paths: list[str]) -> list[Usage]:
    try:
        out = run("df", paths)
    except CommandError as error:
        raise ToolError(f"df could not run ({error.kind}): {error.message}") from None
    if out.timed_out:
        raise ToolError("df timed out")
    rows = parse_df(out.text())
    if out.status != 0 and not rows:
        raise ToolError(f"df failed with status {out.status}: {out.stderr.decode(errors='replace').strip()[:300]}")
    return rows


@plugin.tool(read_only=True, destructive=False, idempotent=True, open_world=False, title="Disk usage")
def disk_usage(
    paths: Annotated[
        list[str],
        Field(description="Absolute paths whose file systems to report; empty for all.", max_items=16),
    ],
) -> list[Usage]:
    """Report size, used and available space (KiB) and use percentage of the file systems
    holding the given paths, or of every file system."""
    progress(0, 1, "running df")
    rows = df(paths)
    progress(1, 1, "done")
    return rows


@plugin.tool(read_only=True, destructive=False, idempotent=True, open_world=False, title="Fullest file systems")
def fullest(
    limit: Annotated[int, Field(description="How many to list.", minimum=1, maximum=50)] = 3,
    min_percent: Annotated[int, Field(description="Only those at least this full.", minimum=0, maximum=100)] = 0,
) -> str:
    """List the fullest file systems first, one line each, for a quick look at what may fill up."""
    rows = sorted((r for r in df([]) if r.use_percent >= min_percent), key=lambda r: -r.use_percent)[:limit]
    if not rows:
        return f"no file system is at least {min_percent}% full"
    return "\n".join(f"{r.use_percent:3d}%  {r.mounted_on}  ({r.available_kib} KiB free)" for r in rows)


@dataclasses.dataclass
class Health:
    url: str
    healthy: bool
    status: int | None
    elapsed_ms: int
    detail: str


@plugin.tool(read_only=True, destructive=False, idempotent=True, open_world=True, title="Service health")
def service_health(
    url: Annotated[str, Field(description="The health endpoint, http(s)://host[:port]/path.", max_length=500)],
    expect: Annotated[
        str | None, Field(description="Text the body must contain to count as healthy.", max_length=200)
    ] = None,
    timeout_s: Annotated[float, Field(description="Seconds to wait for the answer.", minimum=0.1, maximum=30)] = 5,
) -> Health:
    """GET a service's health endpoint: healthy when it answers 2xx (and its body contains
    `expect`, when given). Only origins the operator granted can be reached."""
    started = time.monotonic()
    try:
        answer = http.get(url, timeout=timeout_s, max_bytes=256 * 1024)
    except http.HttpError as error:
        if error.kind == "denied":
            raise ToolError(f"{url} is not an origin the operator granted to sysreport") from None
        elapsed = int((time.monotonic() - started) * 1000)
        return Health(url, False, None, elapsed, f"no answer ({error.kind}): {error.message}"[:300])
    elapsed = int((time.monotonic() - started) * 1000)
    healthy = answer.ok and (expect is None or expect in answer.text)
    detail = answer.text.strip()[:200] if answer.ok else f"HTTP {answer.status}"
    if answer.ok and not healthy:
        detail = f"the body does not contain {expect!r}"
    log("info", f"{url}: {answer.status} in {elapsed} ms")
    return Health(url, healthy, answer.status, elapsed, detail)


Tools = plugin.exports()
