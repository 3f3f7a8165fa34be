"""The host's services (log, progress, cancellation, the agent, config, commands), called
through the component's imports inside sanctum and through a stand-in under plain Python, so a
plugin's own tests run with `pytest`.

Every import the component needs is made here at module level: componentize-py bundles only
the modules imported while it builds, so an import inside a function would fail at run time.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

try:  # Inside a component built by componentize-py against wit/plugin.wit.
    from componentize_py_types import Err
    from wit_world.imports import config as _wit_config
    from wit_world.imports import host as _wit_host
    from wit_world.imports import process as _wit_process
    from wit_world.imports import sanctum_plugin_types as _wit_types

    IN_COMPONENT = True
except ImportError:  # Plain Python: the stand-in below answers.
    IN_COMPONENT = False


@dataclasses.dataclass
class CommandOutput:
    """What a granted command produced (`run`)."""

    status: int | None
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 0 and not self.timed_out

    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


class CommandError(Exception):
    """A command did not run: not granted, an argument refused by the policy, or it failed to
    start. `kind` is `not-granted`, `argument-refused` or `failed`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclasses.dataclass
class StandIn:
    """What the host would answer, for tests outside sanctum. `commands` maps a command name to
    a function `(args, stdin) -> CommandOutput` (or raising `CommandError`); a command not in
    it is not granted. `http_origins` lists the origins `sanctum_plugin.http` may reach, as
    `scheme://host:port` (port always written); any other is refused, as by the host. What the plugin logged and reported is collected."""

    config: dict[str, str] = dataclasses.field(default_factory=dict)
    agent: str | None = None
    cancelled: bool = False
    commands: dict[str, Callable[[list[str], bytes | None], CommandOutput]] = dataclasses.field(default_factory=dict)
    http_origins: list[str] = dataclasses.field(default_factory=list)
    logs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    progress: list[tuple[float, float | None, str | None]] = dataclasses.field(default_factory=list)


_stand_in = StandIn()


def use_stand_in(stand_in: StandIn) -> StandIn:
    """Answer host calls from `stand_in` (outside sanctum only); returns it."""
    global _stand_in
    _stand_in = stand_in
    return stand_in


_LEVELS = ("debug", "info", "warning", "error")


def log(level: str, message: str) -> None:
    """A log line for the MCP client (`debug`, `info`, `warning` or `error`)."""
    if level not in _LEVELS:
        raise ValueError(f"log level {level!r} is not one of {_LEVELS}")
    if IN_COMPONENT:
        _wit_host.log(_wit_types.LogLevel[level.upper()], message)
    else:
        _stand_in.logs.append((level, message))


def progress(done: float, total: float | None = None, message: str | None = None) -> None:
    """Progress for the MCP client, when it asked for it."""
    if IN_COMPONENT:
        _wit_host.progress(float(done), None if total is None else float(total), message)
    else:
        _stand_in.progress.append((done, total, message))


def is_cancelled() -> bool:
    """Whether the client cancelled this call: a long tool checks and stops early."""
    return _wit_host.is_cancelled() if IN_COMPONENT else _stand_in.cancelled


def agent_id() -> str | None:
    """The calling agent, as the client said (advice only, never authority)."""
    return _wit_host.agent_id() if IN_COMPONENT else _stand_in.agent


def config(key: str) -> str | None:
    """The operator's configuration value `key` for this plugin, if set."""
    return _wit_config.get(key) if IN_COMPONENT else _stand_in.config.get(key)


def run(command: str, args: list[str] | None = None, stdin: bytes | None = None) -> CommandOutput:
    """Run the operator's command `command` (a name from the policy, never a path) with `args`
    appended; no shell. Raises `CommandError` when it cannot run."""
    args = list(args or [])
    if not IN_COMPONENT:
        handler = _stand_in.commands.get(command)
        if handler is None:
            raise CommandError("not-granted", f"command {command!r} is not granted")
        return handler(args, stdin)
    try:
        out: Any = _wit_process.run(command, args, stdin)
    except Err as error:
        kind = type(error.value).__name__.split("_")[-1]
        names = {"NotGranted": "not-granted", "ArgumentRefused": "argument-refused", "Failed": "failed"}
        raise CommandError(names.get(kind, "failed"), str(error.value.value)) from None
    return CommandOutput(
        status=out.status,
        stdout=out.stdout,
        stderr=out.stderr,
        stdout_truncated=out.stdout_truncated,
        stderr_truncated=out.stderr_truncated,
        timed_out=out.timed_out,
    )


def granted_origins() -> list[str]:
    """The origins the stand-in grants (outside sanctum only; inside, the host decides)."""
    return _stand_in.http_origins
