"""Start and stop one sanctum server for a pytest session; shared by every client suite.

Each suite (``modern/``, ``letta/``) runs in its own virtualenv with its own pytest
rootdir, so this module is not a conftest: each suite's ``conftest.py`` puts this
directory on ``sys.path`` and re-exports the fixtures and hooks below. Only the
standard library is used here, so it imports in every venv.

Environment:
  SANCTUM_BIN            server binary (default <repo>/target/release/sanctum)
  SANCTUM_TEST_PLUGINS   plugins directory (default <repo>/plugins)
  SANCTUM_TEST_LOG_DIR   where the server's stderr is kept (default <repo>/target/py/logs)
  SANCTUM_START_TIMEOUT  seconds to wait for the listening line and /healthz (default 60)
  SANCTUM_GUEST_PLUGINS  the Python and JS example components (default <repo>/target/guests,
                         built by plugins-src/python/build.sh and plugins-src/js/build.sh)
  SANCTUM_READY_TIMEOUT  seconds to wait for /readyz while large components compile (default 600)
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
"""Repository root: tests/python/sanctum_server.py is two levels below it."""

LISTENING_RE = re.compile(r"^sanctum listening on (http://127\.0\.0\.1:(\d{1,5}))$")

EXPECTED_TOOLS = [
    "botfather__click_button",
    "botfather__create_bot",
    "botfather__delete_commands",
    "botfather__delete_webhook",
    "botfather__get_commands",
    "botfather__get_default_admin_rights",
    "botfather__get_me",
    "botfather__get_menu_button",
    "botfather__get_profile",
    "botfather__get_webhook_info",
    "botfather__recent_messages",
    "botfather__revoke_token",
    "botfather__send_message",
    "botfather__set_commands",
    "botfather__set_default_admin_rights",
    "botfather__set_description",
    "botfather__set_menu_button",
    "botfather__set_name",
    "botfather__set_short_description",
    "botfather__set_webhook",
    "devops__cancel",
    "devops__deploy",
    "devops__history",
    "devops__list_apps",
    "devops__rollback",
    "devops__status",
    "echo__echo",
    "echo__fail",
    "echo__image",
    "echo__progress",
    "echo__stats",
    "echo__wait",
    "health",
]
"""Every tool the test plugin set exposes, in the server's listing order (sorted by name)."""

STOP_GRACE_SECONDS = 10.0
STDERR_TAIL_LINES = 80


def workspace_version() -> str:
    """``[workspace.package] version`` from <repo>/Cargo.toml: the expected ``serverInfo.version``."""
    text = (REPO_ROOT / "Cargo.toml").read_text(encoding="utf-8")
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        section = re.search(r"^\[workspace\.package\]\s*$(.*?)^\[", text + "\n[", re.M | re.S)
        assert section, "no [workspace.package] section in Cargo.toml"
        match = re.search(r'^version\s*=\s*"([^"]+)"', section.group(1), re.M)
        assert match, "no version in [workspace.package]"
        return match.group(1)
    return tomllib.loads(text)["workspace"]["package"]["version"]


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


@dataclass
class SanctumServer:
    """A running ``sanctum serve`` process and where to reach it."""

    base_url: str
    port: int
    process: subprocess.Popen[bytes]
    stderr_path: Path
    stdout_extra: list[str] = field(default_factory=list)

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"<cannot read {self.stderr_path}: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None


def stop_server(server: SanctumServer) -> None:
    """Stop a server from :func:`start_server` (SIGTERM, then SIGKILL after a grace period)."""
    _stop(server.process)


def _stderr_tail_of(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM this one process; SIGKILL it if it is still there after the grace period."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_GRACE_SECONDS)


def _read_first_line(process: subprocess.Popen[bytes], timeout: float) -> str | None:
    """The first stdout line, or None if the process exits or stays silent past ``timeout``.

    Afterwards a daemon thread keeps draining stdout so a chatty server can never block on a
    full pipe; anything it prints there is kept for the failure report.
    """
    assert process.stdout is not None
    box: dict[str, bytes] = {}
    got = threading.Event()

    def reader() -> None:
        box["line"] = process.stdout.readline()  # type: ignore[union-attr]
        got.set()

    threading.Thread(target=reader, name="sanctum-stdout-first", daemon=True).start()
    deadline = time.monotonic() + timeout
    while not got.wait(0.1):
        if time.monotonic() > deadline or process.poll() is not None:
            # One last short wait: the line may have raced the exit.
            if not got.wait(0.5):
                return None
            break
    raw = box.get("line", b"")
    if not raw:
        return None
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _drain_stdout(process: subprocess.Popen[bytes], sink: list[str]) -> None:
    assert process.stdout is not None

    def drain() -> None:
        for raw in process.stdout:  # type: ignore[union-attr]
            sink.append(raw.decode("utf-8", errors="replace").rstrip("\r\n"))

    threading.Thread(target=drain, name="sanctum-stdout-drain", daemon=True).start()


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before /healthz answered")
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=5) as resp:
                body = json.loads(resp.read().decode("utf-8"))
                if resp.status == 200 and body.get("status") == "ok":
                    return
                last = f"HTTP {resp.status}: {body!r}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise RuntimeError(f"/healthz not ok within {timeout:.0f} s (last: {last})")


def start_server(
    suite: str, plugins: Path | None = None, policy: Path | None = None, extra_args: list[str] | None = None
) -> SanctumServer:
    """Start ``sanctum serve`` on an ephemeral loopback port and wait until it is healthy.

    ``plugins`` overrides the plugins directory (default: ``SANCTUM_TEST_PLUGINS``, else
    <repo>/plugins); ``policy`` is passed as ``--policy``; ``extra_args`` are appended to the
    command line as they are. ``suite`` names the stderr log.
    """
    binary = _env_path("SANCTUM_BIN", REPO_ROOT / "target" / "release" / "sanctum")
    if plugins is None:
        plugins = _env_path("SANCTUM_TEST_PLUGINS", REPO_ROOT / "plugins")
    log_dir = _env_path("SANCTUM_TEST_LOG_DIR", REPO_ROOT / "target" / "py" / "logs")
    start_timeout = float(os.environ.get("SANCTUM_START_TIMEOUT", "60"))

    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(
            f"sanctum binary not found or not executable: {binary}\n"
            "Build it first (cargo build --release) or point SANCTUM_BIN at it.",
            pytrace=False,
        )
    if not plugins.is_dir():
        pytest.fail(f"plugins directory not found: {plugins} (set SANCTUM_TEST_PLUGINS)", pytrace=False)

    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / f"sanctum-{suite}.stderr.log"
    # Hermetic: no tool pins carried over from earlier runs (a changed plugin would be held back),
    # and a compile cache inside target/ rather than the user's.
    cmd = [str(binary), "serve", "--host", "127.0.0.1", "--port", "0", "--plugins", str(plugins),
           "--pins", "off", "--cache-dir", str(log_dir.parent / "compile-cache")]
    if policy is not None:
        cmd += ["--policy", str(policy)]
    if extra_args:
        cmd += list(extra_args)
    with stderr_path.open("wb") as stderr_file:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            cwd=str(REPO_ROOT),
        )

    first = _read_first_line(process, start_timeout)
    match = LISTENING_RE.match(first) if first is not None else None
    if match is None:
        _stop(process)
        pytest.fail(
            f"`{' '.join(cmd)}` did not print 'sanctum listening on http://127.0.0.1:<port>' as its "
            f"first stdout line within {start_timeout:.0f} s; got {first!r} "
            f"(exit code {process.returncode}).\n--- server stderr (tail) ---\n{_stderr_tail_of(stderr_path)}",
            pytrace=False,
        )
    server = SanctumServer(
        base_url=match.group(1), port=int(match.group(2)), process=process, stderr_path=stderr_path
    )
    _drain_stdout(process, server.stdout_extra)
    try:
        _wait_healthy(server.base_url, process, start_timeout)
    except RuntimeError as exc:
        _stop(process)
        pytest.fail(f"{exc}\n--- server stderr (tail) ---\n{server.stderr_tail()}", pytrace=False)
    return server


# --------------------------------------------------------------------------------------------
# The access server (issue 13): who may do what, per principal, group and agent
# --------------------------------------------------------------------------------------------

ACCESS_TOKENS = {"letta": "letta-token-0123456789abcdef", "ci": "ci-token-0123456789abcdef012"}
"""Bearer token of each principal of the access server: ``letta`` is in group ``ops``, ``ci`` in none."""

ACCESS_TOKENS_FILE = f"""\
[[token]]
principal = "letta"
groups = ["ops"]
value = "{ACCESS_TOKENS['letta']}"

[[token]]
principal = "ci"
value = "{ACCESS_TOKENS['ci']}"
"""

ACCESS_POLICY = """\
[access]
default = "deny"

[[access.rule]]
name = "ops-echo"
groups = ["ops"]
agents = ["ops-agent"]
tools = ["echo__*"]
effect = "allow"

[[access.rule]]
name = "support-reads"
principals = ["letta"]
agents = ["support-agent"]
tools = ["echo__stats"]
effect = "allow"

[[access.rule]]
name = "no-shouting"
tools = ["echo__echo"]
effect = "deny"
when = [{ pointer = "/uppercase", equals = true }]

[[access.rule]]
name = "health-for-all"
tools = ["health"]
effect = "allow"
"""
"""The access server's policy (the same as host/tests/all/access.rs): rule #1 lets group ``ops``
acting as ``ops-agent`` use every echo tool, #2 lets ``letta`` as ``support-agent`` use
``echo__stats``, #3 refuses ``echo__echo`` unless ``uppercase`` is known not to be true, #4 lets
everyone call ``health``; anything else is refused by the default."""

ECHO_TOOLS = ["echo__echo", "echo__fail", "echo__image", "echo__progress", "echo__stats", "echo__wait"]
"""The echo plugin's tools, sorted (the access server serves the echo plugin only)."""

ACCESS_EXPECTED_LISTING = {
    ("letta", "ops-agent"): [*ECHO_TOOLS, "health"],
    ("letta", "support-agent"): ["echo__stats", "health"],
    ("letta", None): ["health"],
    ("ci", "ops-agent"): ["health"],
    ("ci", "support-agent"): ["health"],
    ("ci", None): ["health"],
}
"""What ``tools/list`` shows each (principal, X-Agent-Id) on the access server, sorted."""


@dataclass
class AccessServer:
    """A server with bearer tokens, an ``[access]`` policy and an audit file, serving the echo plugin."""

    server: SanctumServer
    tokens: dict[str, str]
    audit_path: Path

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def headers(self, principal: str, agent: str | None) -> dict[str, str]:
        """``Authorization: Bearer <principal's token>`` and, if given, ``X-Agent-Id: <agent>``."""
        headers = {"Authorization": f"Bearer {self.tokens[principal]}"}
        if agent is not None:
            headers["X-Agent-Id"] = agent
        return headers

    def audit_text(self) -> str:
        try:
            return self.audit_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def audit_offset(self) -> int:
        """Where the audit file ends now: pass to :meth:`audit_records_since`."""
        return len(self.audit_text().encode("utf-8"))

    def audit_records_since(self, offset: int) -> list[dict]:
        raw = self.audit_text().encode("utf-8")[offset:]
        return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]

    def wait_for_audit(self, offset: int, predicate, timeout: float = 10.0) -> list[dict]:
        """Records appended since ``offset``, once ``predicate(records)`` holds (or at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.audit_records_since(offset)
            if predicate(records) or time.monotonic() > deadline:
                return records
            time.sleep(0.05)


def start_access_server(suite: str, workdir: Path) -> AccessServer:
    """Start a server on ``workdir``: the echo plugin only, two token principals, the access policy."""
    source = _env_path("SANCTUM_TEST_PLUGINS", REPO_ROOT / "plugins") / "echo.wasm"
    if not source.is_file():
        pytest.fail(f"echo plugin not found: {source} (set SANCTUM_TEST_PLUGINS)", pytrace=False)
    plugins = workdir / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, plugins / "echo.wasm")
    tokens = workdir / "tokens.toml"
    tokens.write_text(ACCESS_TOKENS_FILE, encoding="utf-8")
    tokens.chmod(0o600)
    policy = workdir / "policy.toml"
    policy.write_text(ACCESS_POLICY, encoding="utf-8")
    audit = workdir / "audit.jsonl"
    server = start_server(
        f"{suite}-access",
        plugins=plugins,
        policy=policy,
        extra_args=["--auth-tokens-file", str(tokens), "--audit", str(audit)],
    )
    return AccessServer(server=server, tokens=dict(ACCESS_TOKENS), audit_path=audit)


# --------------------------------------------------------------------------------------------
# The Python and JS example plugins (plugins-src/python, plugins-src/js), served by a real server
# with a policy that grants each of them something, and a real HTTP service they may check.
# --------------------------------------------------------------------------------------------

GUEST_PLUGINS = ("sysreport", "webcheck", "pyecho", "jsecho")
"""The example components, sysreport (Python SDK) and webcheck (JS SDK), and the SDKs' probes,
pyecho and jsecho (the benchmark's echo plus tools that exercise each SDK in a component)."""


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    """/healthz answers 200 "ok: all systems go"; anything else 503 "down". A POST answers how
    many body bytes arrived and its `x-probe` header."""

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        answer = f"got {len(body)} bytes from {self.headers.get('x-probe')}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        status, body = (200, b"ok: all systems go") if self.path == "/healthz" else (503, b"down")
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _status_service() -> tuple[http.server.ThreadingHTTPServer, str]:
    service = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    threading.Thread(target=service.serve_forever, name="status-service", daemon=True).start()
    return service, f"http://127.0.0.1:{service.server_address[1]}"


def wait_ready(server: SanctumServer, timeout: float | None = None) -> None:
    """Wait until /readyz says ready: a large component compiles in the background first."""
    timeout = float(os.environ.get("SANCTUM_READY_TIMEOUT", "600")) if timeout is None else timeout
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        if not server.alive():
            pytest.fail(f"sanctum exited while compiling\n{server.stderr_tail()}", pytrace=False)
        try:
            with urllib.request.urlopen(server.base_url + "/readyz", timeout=5):
                return
        except urllib.error.HTTPError as exc:
            last = exc.read().decode("utf-8", errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            last = repr(exc)
        time.sleep(0.5)
    pytest.fail(f"/readyz not ready within {timeout:.0f} s (last: {last})\n{server.stderr_tail()}", pytrace=False)


@dataclass
class GuestServer:
    """A server with the example plugins, and the two real HTTP services around it."""

    server: SanctumServer
    granted_url: str
    """A status service the policy grants to both plugins (its /healthz is healthy)."""
    refused_url: str
    """A status service that is just as reachable, but granted to no plugin."""

    @property
    def base_url(self) -> str:
        return self.server.base_url


def guest_policy(granted_url: str) -> str:
    """sysreport may run `df -P -k` on absolute paths; every plugin may reach the granted service;
    the probes get a config value."""
    http = f'url = "{granted_url}"\nallow_ranges = ["127.0.0.0/8"]\n'
    probes = "".join(
        f'[plugins.{name}]\nconfig = {{ greeting = "hello from the policy" }}\n\n[[plugins.{name}.http]]\n{http}\n'
        for name in ("pyecho", "jsecho")
    )
    return (
        "[plugins.sysreport.commands.df]\n"
        'program = "/usr/bin/df"\n'
        'args = ["-P", "-k"]\n'
        'allowed_args = ["/[A-Za-z0-9_./-]{0,200}"]\n\n'
        f"[[plugins.sysreport.http]]\n{http}\n"
        f"[[plugins.webcheck.http]]\n{http}\n"
        f"{probes}"
    )


@pytest.fixture(scope="session")
def guest_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuestServer]:
    """One server for the session with the Python and JS example plugins, compiled and ready."""
    suite = Path(str(request.config.rootpath)).name or "tests"
    source = _env_path("SANCTUM_GUEST_PLUGINS", REPO_ROOT / "target" / "guests")
    root = tmp_path_factory.mktemp("sanctum-guests")
    plugins = root / "plugins"
    plugins.mkdir()
    for name in GUEST_PLUGINS:
        wasm = source / f"{name}.wasm"
        if not wasm.is_file():
            pytest.fail(f"{wasm} not found: build it with plugins-src/{{python,js}}/build.sh {source}", pytrace=False)
        shutil.copyfile(wasm, plugins / wasm.name)
    granted, granted_url = _status_service()
    refused, refused_url = _status_service()
    policy = root / "policy.toml"
    policy.write_text(guest_policy(granted_url), encoding="utf-8")
    server = start_server(f"{suite}-guests", plugins=plugins, policy=policy)
    _RUNNING["guest_server"] = server
    try:
        wait_ready(server)
        yield GuestServer(server=server, granted_url=granted_url, refused_url=refused_url)
    finally:
        _stop(server.process)
        granted.shutdown()
        refused.shutdown()


# --------------------------------------------------------------------------------------------
# pytest fixtures and hooks, re-exported by each suite's conftest.py
# --------------------------------------------------------------------------------------------

_RUNNING: dict[str, SanctumServer] = {}
_FAILED = {"any": False}


@pytest.fixture(scope="session")
def sanctum_server(request: pytest.FixtureRequest) -> Iterator[SanctumServer]:
    """One server for the whole test session."""
    suite = Path(str(request.config.rootpath)).name or "tests"
    server = start_server(suite)
    _RUNNING["server"] = server
    try:
        yield server
    finally:
        _stop(server.process)


@pytest.fixture(scope="session")
def access_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AccessServer]:
    """A second server for the session, for access tests (see :func:`start_access_server`)."""
    suite = Path(str(request.config.rootpath)).name or "tests"
    access = start_access_server(suite, tmp_path_factory.mktemp("sanctum-access"))
    _RUNNING["access_server"] = access.server
    try:
        yield access
    finally:
        _stop(access.server.process)


@pytest.fixture(scope="session")
def base_url(sanctum_server: SanctumServer) -> str:
    """``http://127.0.0.1:<port>`` of the session's server."""
    return sanctum_server.base_url


@pytest.fixture(scope="session")
def expected_version() -> str:
    return workspace_version()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    # fastmcp 2.12.5 uses asyncio.create_task directly, so everything runs on asyncio.
    return "asyncio"


@pytest.fixture(autouse=True)
def _server_still_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """Make a crashed server obvious instead of a cascade of connection errors."""
    yield
    for key in ("server", "access_server", "guest_server"):
        server = _RUNNING.get(key)
        if server is not None and not server.alive():
            pytest.fail(
                f"sanctum ({key}) exited (code {server.process.returncode}) during {request.node.nodeid}",
                pytrace=False,
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ARG001
    report = yield
    if report.failed:
        _FAILED["any"] = True
    return report


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if not (_FAILED["any"] or exitstatus not in (0, 5)):
        return
    for key in ("server", "access_server", "guest_server"):
        server = _RUNNING.get(key)
        if server is None:
            continue
        terminalreporter.section(f"sanctum stderr (last {STDERR_TAIL_LINES} lines of {server.stderr_path})")
        terminalreporter.write_line(server.stderr_tail())
        if server.stdout_extra:
            terminalreporter.section("sanctum stdout after the listening line")
            terminalreporter.write_line("\n".join(server.stdout_extra[-STDERR_TAIL_LINES:]))
