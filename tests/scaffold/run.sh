#!/usr/bin/env bash
# `sanctum new-plugin --lang python|js` end to end: each generated project, unchanged, passes its
# own tests and builds with its own build.sh, and `sanctum call` gets the template tool's answer
# (and its tool error) from the component. (The Rust template's test is host/tests/all/scaffold.rs.)
#
# Env: SANCTUM_BIN (default <repo>/target/release/sanctum). The toolchains come from the guest
# builds that ran before (plugins-src/{python,js}/build.sh): SANCTUM_PYTHON_VENV and
# SANCTUM_JS_TOOLS default to what those installed, so nothing is downloaded twice.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${SANCTUM_BIN:-$repo/target/release/sanctum}"
export SANCTUM_PYTHON_VENV="${SANCTUM_PYTHON_VENV:-$repo/target/py/guest}"
export SANCTUM_JS_TOOLS="${SANCTUM_JS_TOOLS:-$repo/target/js}"
work="$(mktemp -d "${TMPDIR:-/tmp}/sanctum-scaffold.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cache="$repo/target/guest-compile-cache"
# componentize-js's toolchain needs Node 22.20+ (tests/node22.sh keeps one under target/).
# shellcheck source=../node22.sh
source "$repo/tests/node22.sh"
export NODE="${NODE:-$(ensure_node22 "$repo" scaffold)}"

fail() { echo "scaffold: FAILED: $*" >&2; exit 1; }

for lang in python js; do
    name="demo_$lang"
    echo "scaffold: new-plugin $name --lang $lang" >&2
    "$bin" new-plugin "$name" --lang "$lang" --dir "$work" >"$work/$lang.out"
    grep -q "./build.sh" "$work/$lang.out" || fail "$lang: new-plugin did not say to run ./build.sh"
    (cd "$work/$name" && ./build.sh) || fail "$lang: the generated build.sh failed"
    wasm="$work/$name/$name.wasm"
    [[ -f "$wasm" ]] || fail "$lang: build.sh made no $name.wasm"

    set +e
    answer="$("$bin" call "$wasm" greet --cache-dir "$cache" --args '{"name": "Ada"}')"
    status=$?
    refused="$("$bin" call "$wasm" greet --cache-dir "$cache" --args '{"name": "nobody"}')"
    refused_status=$?
    set -e
    [[ $status -eq 0 && "$answer" == *'Hello, Ada!'* ]] || fail "$lang: greet answered ($status): $answer"
    [[ $refused_status -eq 2 && "$refused" == *'"isError": true'* && "$refused" == *'nobody cannot be greeted'* ]] ||
        fail "$lang: greet nobody should be a tool error (exit 2), got ($refused_status): $refused"
    # docs/plugin-development.md shows this output (sections 11 and 12): it must stay true.
    python3 -c 'import sys; sys.exit(0 if sys.argv[2].strip() in open(sys.argv[1]).read() else 1)' \
        "$repo/docs/plugin-development.md" "$answer" ||
        fail "$lang: docs/plugin-development.md does not show greet's output as it is:\n$answer"
    echo "scaffold: $lang template OK" >&2
done
