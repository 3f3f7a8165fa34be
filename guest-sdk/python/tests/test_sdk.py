"""The Python SDK outside sanctum: schemas from type hints (normalised for strict clients),
calls as the host makes them, errors as results, and the host's services through a stand-in."""

from __future__ import annotations

import dataclasses
import json
import enum
from typing import Annotated, Literal

import pytest

from sanctum_plugin import (
    CommandError,
    CommandOutput,
    Field,
    Json,
    Output,
    Plugin,
    SchemaError,
    StandIn,
    Text,
    ToolError,
    agent_id,
    config,
    log,
    run,
    use_stand_in,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Target:
    """Where to deploy."""

    host: str
    port: int = 22


def make_plugin() -> Plugin:
    plugin = Plugin("demo", version="0.1.0", description="Tests.", requires=[("command", "git")])

    @plugin.tool(read_only=True, title="Echo")
    def echo(text: Annotated[str, Field(description="What to say.", max_length=10)], times: int = 1) -> str:
        """Say it back.

        More words for humans."""
        return text * times

    @plugin.tool
    def deploy(target: Target, color: Color, tags: list[str], mode: Literal["fast", "safe"] = "safe",
               note: str | None = None) -> dict:
        """Deploy somewhere."""
        return {"host": target.host, "port": target.port, "color": color, "tags": tags, "mode": mode, "note": note}

    @plugin.tool
    def fail(kind: str) -> str:
        """Fail on purpose."""
        if kind == "tool":
            raise ToolError("the deploy window is closed")
        if kind == "bug":
            return {}["missing"]
        return "fine"

    return plugin


def test_schemas_are_closed_list_every_property_and_make_optionals_nullable():
    plugin = make_plugin()
    echo = plugin.input_schema("echo")
    assert echo == {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "What to say.", "maxLength": 10},
            "times": {"type": ["integer", "null"]},
        },
        "required": ["text"],
        "additionalProperties": False,
    }
    deploy = plugin.input_schema("deploy")
    assert deploy["required"] == ["target", "color", "tags"]
    target = deploy["properties"]["target"]
    assert target["additionalProperties"] is False and target["required"] == ["host"]
    assert target["description"] == "Where to deploy."
    assert target["properties"]["port"] == {"type": ["integer", "null"]}
    assert deploy["properties"]["color"] == {"type": "string", "enum": ["red", "blue"]}
    assert deploy["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    assert deploy["properties"]["mode"] == {"type": ["string", "null"], "enum": ["fast", "safe", None]}
    assert deploy["properties"]["note"] == {"type": ["string", "null"]}


def test_hints_strict_clients_would_refuse_fail_when_the_tool_is_defined():
    plugin = Plugin("demo", version="0", description="d")
    with pytest.raises(SchemaError, match="closed objects"):
        @plugin.tool
        def free(data: dict) -> str:
            """Free-form."""
            return ""
    with pytest.raises(SchemaError, match="type hint"):
        @plugin.tool
        def untyped(x) -> str:  # noqa: ANN001
            """No hint."""
            return ""
    with pytest.raises(ValueError, match="docstring"):
        @plugin.tool
        def undocumented(x: int) -> str:
            return ""
    with pytest.raises(ValueError, match="tool name"):
        plugin.tool(name="Bad-Name")(lambda: "")


def test_calls_convert_arguments_and_results_as_the_host_sees_them():
    plugin = make_plugin()
    assert plugin.call("echo", {"text": "ab", "times": 2}) == Output(content=[Text("abab")])
    assert plugin.call("echo", '{"text": "x"}').content == [Text("x")]
    out = plugin.call("deploy", {"target": {"host": "web1"}, "color": "red", "tags": ["a"]})
    assert out.content == [Json({"host": "web1", "port": 22, "color": "red", "tags": ["a"], "mode": "safe", "note": None})]


def test_only_arguments_that_need_it_are_converted_on_a_call():
    plugin = make_plugin()
    assert plugin._tools["echo"].plain == {"text", "times"}
    assert plugin._tools["deploy"].plain == {"note"}, "dataclasses, enums, lists and Literal are converted"

    @plugin.tool
    def mixed(ratio: float, maybe: float | None = None, flag: bool | None = None) -> str:
        """Floats from JSON integers."""
        return f"{ratio!r} {maybe!r} {flag!r}"

    assert plugin._tools["mixed"].plain == {"flag"}
    assert plugin.call("mixed", {"ratio": 1, "maybe": 2}).content == [Text("1.0 2.0 None")]


def test_every_failure_is_a_tool_error_with_a_readable_message():
    plugin = make_plugin()
    with pytest.raises(ToolError, match="the deploy window is closed"):
        plugin.call("fail", {"kind": "tool"})
    with pytest.raises(ToolError, match=r"KeyError: 'missing' \(at fail, line \d+\)"):
        plugin.call("fail", {"kind": "bug"})
    with pytest.raises(ToolError, match="unknown tool"):
        plugin.call("nope", {})
    with pytest.raises(ToolError, match="TypeError"):
        plugin.call("echo", {"text": "a", "surprise": 1})


def test_the_host_services_answer_from_a_stand_in():
    def git(args: list[str], stdin: bytes | None) -> CommandOutput:
        return CommandOutput(status=0, stdout=" ".join(args).encode(), stderr=b"")

    stand_in = use_stand_in(StandIn(config={"greeting": "hi"}, agent="ops", commands={"git": git}))
    assert config("greeting") == "hi" and config("other") is None
    assert agent_id() == "ops"
    assert run("git", ["status", "--short"]).text() == "status --short"
    with pytest.raises(CommandError) as refused:
        run("rm", ["-rf", "/"])
    assert refused.value.kind == "not-granted"
    log("info", "hello")
    assert stand_in.logs == [("info", "hello")]
    with pytest.raises(ValueError):
        log("loud", "x")


@dataclasses.dataclass
class Options:
    """Knobs, every one with a default."""

    verbose: bool = False
    depth: int = 1


def test_an_argument_that_admits_an_empty_object_is_optional_and_defaults_to_it():
    plugin = Plugin("opts", version="0.1.0", description="d")

    @plugin.tool
    def scan(target: str, options: Options) -> str:
        """Scan."""
        return f"{target} verbose={options.verbose} depth={options.depth}"

    schema = plugin.input_schema("scan")
    assert schema["required"] == ["target"], "Letta refuses a required property that admits {}"
    assert "null" in json.dumps(schema["properties"]["options"])
    assert plugin.call("scan", {"target": "x"}).content[0].text == "x verbose=False depth=1"
    assert plugin.call("scan", {"target": "x", "options": {"depth": 3}}).content[0].text == "x verbose=False depth=3"


@pytest.fixture
def web():
    """A real HTTP server on 127.0.0.1: /json answers a JSON document, /echo the request body,
    /big 2 MiB, anything else 404."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, status: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802
            if self.path == "/json":
                self._answer(200, b'{"ok": true}', "application/json")
            elif self.path == "/big":
                self._answer(200, b"x" * (2 * 1024 * 1024))
            else:
                self._answer(404, b"no such page")

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["content-length"]))
            self._answer(201, self.headers["content-type"].encode() + b" " + body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_reaches_a_granted_origin_like_requests(web):
    from sanctum_plugin import http

    use_stand_in(StandIn(http_origins=[web]))
    answer = http.get(f"{web}/json")
    assert answer.ok and answer.status == 200 and answer.json() == {"ok": True}
    assert answer.headers["content-type"] == "application/json"
    missing = http.get(f"{web}/nowhere")
    assert (missing.ok, missing.status, missing.text) == (False, 404, "no such page"), "a status is not an exception"
    with pytest.raises(http.HttpError, match="answered 404"):
        missing.raise_for_status()
    posted = http.post(f"{web}/echo", json={"a": 1})
    assert (posted.status, posted.text) == (201, 'application/json {"a": 1}')


def test_http_refuses_what_is_not_granted_and_bounds_what_it_reads(web):
    from sanctum_plugin import http

    use_stand_in(StandIn(http_origins=[]))
    with pytest.raises(http.HttpError) as refused:
        http.get(f"{web}/json")
    assert refused.value.kind == "denied"
    use_stand_in(StandIn(http_origins=[web]))
    with pytest.raises(http.HttpError) as big:
        http.get(f"{web}/big", max_bytes=1024 * 1024)
    assert big.value.kind == "too-large"
    with pytest.raises(http.HttpError) as invalid:
        http.get("ftp://example.com/")
    assert invalid.value.kind == "invalid"
