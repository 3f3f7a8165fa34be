#!/usr/bin/env bash
# Test and build the Python plugins in plugins-src/python/ with the Python guest SDK:
#   1. the pinned toolchain (requirements.txt) in <repo>/target/py/guest, reinstalled only when
#      the pins or the interpreter change;
#   2. the SDK's and each plugin's own tests, natively, with plain pytest;
#   3. each plugin built by componentize-py into OUT_DIR/<name>.wasm, skipped when a hash of its
#      inputs (sanctum's world, the SDK, the plugin, the pins) matches the stamp beside it.
# The components are ~19 MB each, so they are built into target/, not committed to plugins/.
#
# Usage: plugins-src/python/build.sh OUT_DIR        Env: PYTHON (default python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:?usage: build.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
python="${PYTHON:-python3}"
sdk="$repo/guest-sdk/python"

venv="$repo/target/py/guest"
want="$({ cat "$here/requirements.txt"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/componentize-py" || "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]]; then
    echo "python guests: installing the pinned toolchain into $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$want" >"$venv/.requirements.sha256"
fi

echo "python guests: SDK tests" >&2
(cd "$sdk" && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests)

# Hash of every file under the given paths (names and contents), ignoring Python caches.
inputs_hash() {
    (cd "$repo" && find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z |
        xargs -0 sha256sum; cat "$here/requirements.txt"; "$venv/bin/componentize-py" --version) |
        sha256sum | cut -d' ' -f1
}

for plugin in "$here"/*/; do
    name="$(basename "$plugin")"
    echo "python guests: $name tests" >&2
    (cd "$plugin" && "$venv/bin/python" -m pytest -q -p no:cacheprovider tests)
    wasm="$out/$name.wasm"
    hash="$(inputs_hash wit guest-sdk/python "plugins-src/python/$name")"
    if [[ -f "$wasm" && "$(cat "$wasm.inputs" 2>/dev/null)" == "$hash" ]]; then
        echo "python guests: $name.wasm is up to date" >&2
        continue
    fi
    echo "python guests: building $name.wasm" >&2
    rm -f "$wasm.inputs"
    (cd "$plugin" && "$venv/bin/componentize-py" -q -d "$repo/wit" -d "$sdk/wit" \
        -w sanctum:python-guest/plugin-http \
        componentize app -p . -p "$sdk" -o "$wasm.tmp")
    mv "$wasm.tmp" "$wasm"
    echo "$hash" >"$wasm.inputs"
done
