#!/usr/bin/env bash
# Run sanctum's real-client test suites, each in its own pinned virtualenv:
#   modern/  Python `mcp` 2.3.0 (Streamable HTTP auto + legacy, legacy HTTP+SSE)   -> target/py/modern
#   letta/   Letta 0.16.x's stack, fastmcp 2.12.5 on `mcp` 1.12.4                 -> target/py/letta
# The server binary must already be built (the caller builds it): SANCTUM_BIN, default
# <repo>/target/release/sanctum. Each suite starts its own server (see sanctum_server.py).
#
# Env: SANCTUM_BIN, SANCTUM_TEST_PLUGINS, PYTHON (interpreter for the venvs, default python3),
#      SANCTUM_PYTEST_TIMEOUT (per-test seconds, default 120). Extra arguments go to both pytest runs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
per_test_timeout="${SANCTUM_PYTEST_TIMEOUT:-120}"

bin="${SANCTUM_BIN:-$repo/target/release/sanctum}"
if [[ ! -f "$bin" || ! -x "$bin" ]]; then
    echo "run.sh: sanctum binary not found (or not executable) at $bin" >&2
    echo "run.sh: build it first (cargo build --release) or set SANCTUM_BIN" >&2
    exit 2
fi
export SANCTUM_BIN="$bin"

# (Re)create <repo>/target/py/<suite> when it is missing or its requirements (or the
# interpreter) changed. The stamp is written only after a successful install.
ensure_venv() {
    local suite="$1"
    local req="$here/$suite/requirements.txt"
    local venv="$repo/target/py/$suite"
    local stamp="$venv/.requirements.sha256"
    local want
    want="$({ cat "$req"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
    if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    echo "run.sh: creating venv $venv"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" >"$stamp"
}

ensure_venv modern
ensure_venv letta

status=0
for suite in modern letta; do
    echo "run.sh: === $suite ==="
    # pytest's rootdir is the suite directory (its pytest.ini); exit 5 (no tests) counts as failure.
    if ! (cd "$here/$suite" && "$repo/target/py/$suite/bin/python" -m pytest -q \
            --timeout="$per_test_timeout" "$@"); then
        echo "run.sh: $suite suite FAILED" >&2
        status=1
    fi
done
exit "$status"
