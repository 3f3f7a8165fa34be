"""JSON Schemas from Python type hints, normalised the way the Rust SDK normalises schemars'.

Strict clients (Letta grades every tool for OpenAI's strict mode; Letta Code drops a server over
one bad schema) want closed objects, every property listed, and optional ones nullable. So:

- every object is closed (`additionalProperties: false`), which is why a free-form `dict` is
  refused when the tool is defined: its keys cannot be listed;
- a parameter with a default, or typed `X | None`, is optional and also accepts `null`: strict
  clients send optional arguments as explicit nulls, and the host removes such nulls before
  the call, so the function then gets its default;
- `Annotated[T, Field(...)]` adds a description and constraints.

Pure stdlib: it runs inside the component (no native extension modules there) and under plain
`pytest`.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import types
import typing
from typing import Any


class SchemaError(TypeError):
    """A type hint that has no strict-client-valid schema."""


@dataclasses.dataclass(frozen=True)
class Field:
    """Constraints and a description for one parameter or dataclass field:
    `Annotated[str, Field(description="Who to greet.", max_length=64)]`."""

    description: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None

    def apply(self, schema: dict[str, Any]) -> None:
        pairs = {
            "description": self.description,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "minLength": self.min_length,
            "maxLength": self.max_length,
            "pattern": self.pattern,
            "minItems": self.min_items,
            "maxItems": self.max_items,
        }
        schema.update({key: value for key, value in pairs.items() if value is not None})


def _split_annotated(hint: Any) -> tuple[Any, list[Field]]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        return base, [extra for extra in extras if isinstance(extra, Field)]
    return hint, []


def _optional_inner(hint: Any) -> tuple[Any, bool]:
    """`X | None` → (X, True); anything else → (hint, False)."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        if len(members) != len(typing.get_args(hint)):
            if len(members) != 1:
                raise SchemaError(f"{hint}: only `X | None` unions are supported")
            return members[0], True
        raise SchemaError(f"{hint}: only `X | None` unions are supported")
    return hint, False


def schema_for(hint: Any, where: str) -> dict[str, Any]:
    """The schema of one type hint; `where` names it in errors."""
    hint, fields = _split_annotated(hint)
    inner, nullable = _optional_inner(hint)
    schema = _base_schema(inner, where)
    for field in fields:
        field.apply(schema)
    if nullable:
        schema = nullable_schema(schema)
    return schema


def nullable_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, also accepting `null`."""
    kind = schema.get("type")
    if isinstance(kind, str):
        schema = dict(schema, type=[kind, "null"])
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        return schema
    if isinstance(kind, list):
        return schema if "null" in kind else dict(schema, type=[*kind, "null"])
    return {"anyOf": [schema, {"type": "null"}]}


def _base_schema(hint: Any, where: str) -> dict[str, Any]:
    if hint is str:
        return {"type": "string"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        values = [member.value for member in hint]
        kinds = {type(value) for value in values}
        if kinds == {str}:
            return {"type": "string", "enum": values}
        if kinds == {int}:
            return {"type": "integer", "enum": values}
        raise SchemaError(f"{where}: enum {hint.__name__} must have all-str or all-int values")
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        values = list(typing.get_args(hint))
        kinds = {type(value) for value in values}
        if kinds == {str}:
            return {"type": "string", "enum": values}
        if kinds == {int}:
            return {"type": "integer", "enum": values}
        raise SchemaError(f"{where}: Literal values must be all str or all int")
    if origin in (list, tuple, set, frozenset) or hint in (list,):
        args = typing.get_args(hint)
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise SchemaError(f"{where}: use list[T] or tuple[T, ...], not a fixed tuple")
        if not args:
            raise SchemaError(f"{where}: say what the list holds, e.g. list[str]")
        schema = {"type": "array", "items": schema_for(args[0], f"{where}[]")}
        if origin in (set, frozenset):
            schema["uniqueItems"] = True
        return schema
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return object_schema(
            [(field.name, field.type, _has_default(field)) for field in dataclasses.fields(hint)],
            typing.get_type_hints(hint, include_extras=True),
            where,
            description=_first_paragraph(hint.__doc__) if hint.__doc__ and not hint.__doc__.startswith(hint.__name__ + "(") else None,
        )
    if origin is dict or hint is dict or hint is typing.Any or hint is object:
        raise SchemaError(
            f"{where}: {hint} has keys no schema can list, and strict clients accept only closed objects; "
            "use a dataclass"
        )
    raise SchemaError(f"{where}: no JSON Schema for {hint!r}")


def _has_default(field: dataclasses.Field[Any]) -> bool:
    return field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING


def object_schema(
    members: list[tuple[str, Any, bool]],
    hints: dict[str, Any],
    where: str,
    description: str | None = None,
) -> dict[str, Any]:
    """A closed object of `members` (name, declared hint, has a default)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, declared, has_default in members:
        hint = hints.get(name, declared)
        schema = schema_for(hint, f"{where}.{name}")
        _, optional_by_type = _optional_inner(_split_annotated(hint)[0])
        # Letta refuses a tool whose required property admits `{}`: such an argument is made
        # optional (as the Rust SDK does), and absent means "all defaults".
        if has_default or optional_by_type or _admits_empty_object(schema):
            schema = nullable_schema(schema)
        else:
            required.append(name)
        properties[name] = schema
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    if description:
        schema["description"] = description
    return schema


def _admits_empty_object(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" and not schema.get("required") and schema.get("additionalProperties") is False


def _first_paragraph(doc: str) -> str:
    return inspect.cleandoc(doc).split("\n\n", 1)[0].replace("\n", " ").strip()
