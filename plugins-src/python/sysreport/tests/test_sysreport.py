"""sysreport's tools outside sanctum, with `df` answered by a stand-in."""

from __future__ import annotations

import pytest

import app
from sanctum_plugin import CommandError, CommandOutput, StandIn, ToolError, use_stand_in

DF = b"""Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/vda         264212084 49026592  46259296      52% /
tmpfs               102400    92160     10240      90% /run/my files
overlay             200000    20000    180000      10% /srv
"""


def granted(seen: list[list[str]]):
    def df(args: list[str], stdin: bytes | None) -> CommandOutput:
        seen.append(args)
        return CommandOutput(status=0, stdout=DF, stderr=b"")

    return df


def test_disk_usage_parses_df_and_passes_the_paths_as_arguments():
    seen: list[list[str]] = []
    use_stand_in(StandIn(commands={"df": granted(seen)}))
    out = app.plugin.call("disk_usage", {"paths": ["/srv"]})
    assert seen == [["/srv"]]
    rows = out.content[0].value
    assert rows[1] == {
        "filesystem": "tmpfs",
        "mounted_on": "/run/my files",
        "size_kib": 102400,
        "used_kib": 92160,
        "available_kib": 10240,
        "use_percent": 90,
    }


def test_fullest_sorts_and_filters():
    use_stand_in(StandIn(commands={"df": granted([])}))
    text = app.plugin.call("fullest", {"limit": 2, "min_percent": 50}).content[0].text
    assert text.splitlines() == [" 90%  /run/my files  (10240 KiB free)", " 52%  /  (46259296 KiB free)"]
    assert "no file system" in app.plugin.call("fullest", {"min_percent": 99}).content[0].text


def test_without_the_grant_the_tool_says_so():
    use_stand_in(StandIn())
    with pytest.raises(ToolError, match=r"df could not run \(not-granted\)"):
        app.plugin.call("disk_usage", {"paths": []})


def test_a_refused_argument_is_a_tool_error():
    def refusing(args: list[str], stdin: bytes | None) -> CommandOutput:
        raise CommandError("argument-refused", f"{args[0]!r} matches no allowed pattern")

    use_stand_in(StandIn(commands={"df": refusing}))
    with pytest.raises(ToolError, match="argument-refused"):
        app.plugin.call("disk_usage", {"paths": ["relative"]})


def test_the_schemas_are_strict():
    schema = app.plugin.input_schema("disk_usage")
    assert schema["additionalProperties"] is False and schema["required"] == ["paths"]
    assert app.plugin.input_schema("fullest")["required"] == []


@pytest.fixture
def health_server():
    """A real HTTP server on 127.0.0.1: /ok answers 200 "ok", anything else 503."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            status, body = (200, b"ok: all good") if self.path == "/ok" else (503, b"down")
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_service_health_reads_a_granted_origin(health_server):
    use_stand_in(StandIn(http_origins=[health_server]))
    health = app.plugin.call("service_health", {"url": f"{health_server}/ok", "expect": "all good"}).content[0].value
    assert health["healthy"] is True and health["status"] == 200 and health["detail"] == "ok: all good"
    down = app.plugin.call("service_health", {"url": f"{health_server}/down"}).content[0].value
    assert down["healthy"] is False and down["status"] == 503 and down["detail"] == "HTTP 503"
    wrong = app.plugin.call("service_health", {"url": f"{health_server}/ok", "expect": "nope"}).content[0].value
    assert wrong["healthy"] is False and "does not contain" in wrong["detail"]


def test_service_health_refuses_an_origin_not_granted(health_server):
    use_stand_in(StandIn(http_origins=[]))
    with pytest.raises(ToolError, match="not an origin the operator granted"):
        app.plugin.call("service_health", {"url": f"{health_server}/ok"})
