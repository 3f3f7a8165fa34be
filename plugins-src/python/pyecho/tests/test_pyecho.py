import pytest

import app
from sanctum_plugin import StandIn, ToolError, use_stand_in


def test_echo_returns_the_text():
    assert app.plugin.call("echo", {"text": "hello"}).content[0].text == "hello"


def test_crash_is_a_tool_error_naming_the_exception():
    with pytest.raises(ToolError, match="KeyError: 'boom'"):
        app.plugin.call("crash", {"message": "boom"})


def test_services_answer_from_the_stand_in():
    stand_in = use_stand_in(StandIn(agent="agent-7", config={"greeting": "hi"}))
    assert app.plugin.call("services", {}).content[0].value == {"agent": "agent-7", "greeting": "hi", "cancelled": False}
    assert stand_in.logs == [("info", "pyecho services called")]
    assert stand_in.progress == [(1, 2, "halfway")]
