"""Write sanctum plugins in Python: a tool is a typed function.

    from typing import Annotated
    from sanctum_plugin import Field, Plugin, ToolError

    plugin = Plugin("greeter", version="0.1.0", description="Greets people.")

    @plugin.tool(read_only=True)
    def greet(name: Annotated[str, Field(description="Who to greet.", max_length=64)]) -> str:
        \"\"\"Greet someone by name.\"\"\"
        if name == "nobody":
            raise ToolError("nobody cannot be greeted")
        return f"Hello, {name}!"

    Tools = plugin.exports()   # what componentize-py looks for in the app module

Build with componentize-py 0.25.1 against the SDK's world (sanctum's plus wasi:http):

    componentize-py -d wit -d guest-sdk/python/wit -w sanctum:python-guest/plugin-http \
        componentize app -p . -p guest-sdk/python -o greeter.wasm

(`sanctum new-plugin NAME --lang python` writes a project whose `build.sh` does this.)

The input schema comes from the type hints (see `_schema`), the description from the
docstring. A `ToolError`, or any other exception, becomes a tool result
with `isError: true` and the message: never a trap. Outside sanctum, `plugin.call(name, args)`
runs a tool the way the host does, against a `StandIn` for the host's services.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import traceback
import typing
from typing import Any, Callable

from . import _host, http
from ._host import CommandError, CommandOutput, StandIn, agent_id, config, is_cancelled, log, progress, run, use_stand_in
from ._schema import Field, SchemaError, object_schema, schema_for

try:  # Inside a component: the export interface and the WIT types.
    from componentize_py_types import Err as _Err
    from wit_world import exports as _wit_exports
    from wit_world.imports import sanctum_plugin_types as _wit_types
except ImportError:
    _wit_exports = None

__all__ = [
    "CommandError",
    "CommandOutput",
    "Field",
    "Json",
    "Output",
    "Plugin",
    "SchemaError",
    "StandIn",
    "Text",
    "ToolError",
    "agent_id",
    "http",
    "config",
    "is_cancelled",
    "log",
    "progress",
    "run",
    "use_stand_in",
]

_TOOL_NAME = "abcdefghijklmnopqrstuvwxyz0123456789_"


class ToolError(Exception):
    """A failure the model should read: the call's result is `isError: true` with this message."""


@dataclasses.dataclass(frozen=True)
class Text:
    """A text block of a tool's result."""

    text: str


@dataclasses.dataclass(frozen=True)
class Json:
    """A JSON block of a tool's result (sent to clients as text)."""

    value: Any


@dataclasses.dataclass
class Output:
    """A tool's whole result: blocks for the model and, optionally, structured content (which
    must match the tool's output schema when it declares one)."""

    content: list[Text | Json] = dataclasses.field(default_factory=list)
    structured: Any = None


@dataclasses.dataclass
class _Tool:
    name: str
    function: Callable[..., Any]
    description: str
    title: str | None
    input_schema: dict[str, Any]
    annotations: dict[str, bool | None]
    hints: dict[str, Any]
    all_defaults: list[str]
    """Arguments with no default of a type whose every field has one: absent means `{}`."""
    plain: frozenset[str] = frozenset()
    """Arguments whose JSON value is already what the function takes (str, int, bool, dict...):
    passed as they are, without looking at their type hint on every call."""


class Plugin:
    """A plugin: its name (its file is `<name>.wasm`), version, description, what it needs
    from the operator (`requires`: `("command", "git")`, `("http-host", "api.example.com")`,
    `("config", "greeting")`, ...) and its tools."""

    _REQUIREMENTS = ("command", "http-host", "directory", "env", "secret", "config")

    def __init__(
        self,
        name: str,
        *,
        version: str,
        description: str,
        requires: list[tuple[str, str]] | None = None,
    ) -> None:
        _check_name(name, "plugin")
        for kind, _ in requires or []:
            if kind not in self._REQUIREMENTS:
                raise ValueError(f"requirement kind {kind!r} is not one of {self._REQUIREMENTS}")
        self.name = name
        self.version = version
        self.description = description
        self.requires = list(requires or [])
        self._tools: dict[str, _Tool] = {}

    def tool(
        self,
        function: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        title: str | None = None,
        read_only: bool | None = None,
        destructive: bool | None = None,
        idempotent: bool | None = None,
        open_world: bool | None = None,
    ) -> Any:
        """Register `function` as a tool (usable bare, `@plugin.tool`, or with options). Its
        schema is checked now, so a type hint strict clients would refuse fails at import, in
        the plugin's own tests, not in Letta."""

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            tool_name = name or function.__name__
            _check_name(tool_name, "tool")
            if tool_name in self._tools:
                raise ValueError(f"tool {tool_name!r} is defined twice")
            doc = inspect.getdoc(function)
            if not doc:
                raise ValueError(f"tool {tool_name!r} needs a docstring: it is the description the model reads")
            hints = typing.get_type_hints(function, include_extras=True)
            signature = inspect.signature(function)
            members = []
            for parameter in signature.parameters.values():
                if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                    raise SchemaError(f"{tool_name}: *args and **kwargs have no schema; name each argument")
                if parameter.name not in hints:
                    raise SchemaError(f"{tool_name}.{parameter.name}: give it a type hint")
                members.append((parameter.name, hints[parameter.name], parameter.default is not parameter.empty))
            input_schema = object_schema(members, hints, tool_name)
            self._tools[tool_name] = _Tool(
                name=tool_name,
                function=function,
                description=doc,
                title=title,
                input_schema=input_schema,
                annotations={
                    "read_only": read_only,
                    "destructive": destructive,
                    "idempotent": idempotent,
                    "open_world": open_world,
                },
                hints={key: value for key, value in hints.items() if key != "return"},
                plain=frozenset(key for key, value in hints.items() if key != "return" and _needs_no_conversion(value)),
                all_defaults=[
                    name
                    for name, hint, has_default in members
                    if not has_default and name not in input_schema.get("required", [])
                    and _is_dataclass_hint(hint)
                ],
            )
            return function

        return register(function) if function is not None else register

    def input_schema(self, tool: str) -> dict[str, Any]:
        """The input schema of `tool`, as the host is told it."""
        return self._tools[tool].input_schema

    def call(self, tool: str, args: dict[str, Any] | str) -> Output:
        """Run `tool` with `args` as the host does (JSON in, one `Output` out); a failure raises
        `ToolError` with the message the model would read. For tests outside sanctum."""
        args_json = args if isinstance(args, str) else json.dumps(args)
        outcome = self._dispatch(tool, args_json)
        if isinstance(outcome, ToolError):
            raise outcome
        return outcome

    def _dispatch(self, tool: str, args_json: str) -> Output | ToolError:
        found = self._tools.get(tool)
        if found is None:
            return ToolError(f"unknown tool {tool!r}")
        try:
            raw = json.loads(args_json)
            if not isinstance(raw, dict):
                return ToolError("the arguments must be a JSON object")
            plain = found.plain
            kwargs = {key: value if key in plain else _convert(found.hints.get(key), value) for key, value in raw.items()}
            for key in found.all_defaults:  # made optional for Letta: absent means all defaults
                kwargs.setdefault(key, _convert(found.hints[key], {}))
            return _output(found.function(**kwargs))
        except ToolError as error:
            return error
        except Exception as error:  # Any other failure is still a result, never a trap.
            frame = traceback.extract_tb(error.__traceback__)[-1:]
            where = f" (at {frame[0].name}, line {frame[0].lineno})" if frame else ""
            return ToolError(f"{type(error).__name__}: {error}{where}")

    def exports(self) -> type:
        """The class componentize-py instantiates for the `tools` export: `Tools = plugin.exports()`."""
        plugin = self
        base = _wit_exports.Tools if _wit_exports is not None else object

        class Tools(base):  # type: ignore[misc, valid-type]
            def describe(self) -> Any:
                return plugin._describe()

            def call(self, name: str, args_json: str) -> Any:
                outcome = plugin._dispatch(name, args_json)
                if isinstance(outcome, ToolError):
                    raise _Err(_wit_types.ToolError(message=str(outcome) or type(outcome).__name__))
                return _wit_output(outcome)

        return Tools

    def _describe(self) -> Any:
        t = _wit_types
        kinds = {
            "command": t.Requirement_Command,
            "http-host": t.Requirement_HttpHost,
            "directory": t.Requirement_Directory,
            "env": t.Requirement_Env,
            "secret": t.Requirement_Secret,
            "config": t.Requirement_Config,
        }
        tools = [
            t.Tool(
                name=tool.name,
                title=tool.title,
                description=tool.description,
                input_schema=json.dumps(tool.input_schema),
                output_schema=None,
                annotations=t.Annotations(**tool.annotations),
            )
            for tool in self._tools.values()
        ]
        return t.PluginInfo(
            name=self.name,
            version=self.version,
            description=self.description,
            tools=tools,
            requirements=[kinds[kind](value) for kind, value in self.requires],
        )


def _check_name(name: str, what: str) -> None:
    if not name or not name[0].isascii() or not name[0].islower() or any(c not in _TOOL_NAME for c in name):
        raise ValueError(f"{what} name {name!r}: lowercase ASCII letters, digits and '_', starting with a letter")


def _is_dataclass_hint(hint: Any) -> bool:
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return dataclasses.is_dataclass(hint) and isinstance(hint, type)


_PLAIN_HINTS = (str, int, bool, dict, typing.Any)


def _underlying(hint: Any) -> Any:
    """`hint` without `Annotated[...]`, and without `| None` when one type is left; a union of
    several types is returned as it is (its values are passed through unconverted)."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if _is_union(hint):
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        if len(members) == 1:
            return _underlying(members[0])
    return hint


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) is typing.Union or type(hint).__name__ == "UnionType"


def _needs_no_conversion(hint: Any) -> bool:
    """Whether `_convert` would return any JSON value for `hint` unchanged (`None` included)."""
    hint = _underlying(hint)
    return _is_union(hint) or any(hint is plain for plain in _PLAIN_HINTS) or typing.get_origin(hint) is dict


def _convert(hint: Any, value: Any) -> Any:
    """A JSON value as the type hint wants it: dataclasses and enums built, lists walked."""
    if hint is None or value is None:
        return value
    hint = _underlying(hint)
    if _is_union(hint):
        return value
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type) and isinstance(value, dict):
        hints = typing.get_type_hints(hint, include_extras=True)
        return hint(**{key: _convert(hints.get(key), item) for key, item in value.items()})
    if origin in (list, tuple, set, frozenset) and isinstance(value, list):
        (item,) = typing.get_args(hint)[:1]
        items = [_convert(item, element) for element in value]
        return origin(items) if origin is not list else items
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: _jsonable(item) for key, item in dataclasses.asdict(value).items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(item) for item in value]
    return value


def _output(result: Any) -> Output:
    """What a tool function returned, as a result: text stays text; anything else is JSON."""
    if isinstance(result, Output):
        return result
    if isinstance(result, (Text, Json)):
        return Output(content=[result])
    if result is None:
        return Output(content=[])
    if isinstance(result, str):
        return Output(content=[Text(result)])
    return Output(content=[Json(_jsonable(result))])


def _wit_output(output: Output) -> Any:
    t = _wit_types
    content = [
        t.Content_Text(block.text) if isinstance(block, Text) else t.Content_Json(json.dumps(_jsonable(block.value)))
        for block in output.content
    ]
    structured = None if output.structured is None else json.dumps(_jsonable(output.structured))
    return t.ToolOutput(content=content, structured=structured)
