#!/usr/bin/env bash
# Test and build the JavaScript plugins in plugins-src/js/ with the JS guest SDK (guest-sdk/js):
#   1. Node 22 and the pinned toolchain (guest-sdk/js/package.json + package-lock.json:
#      componentize-js 0.23.0) in <repo>/target/js, reinstalled only when the lock changes;
#   2. the SDK's and each plugin's own tests, natively, with `node --test`;
#   3. each plugin's component.js built by componentize-js into OUT_DIR/<name>.wasm, skipped
#      when a hash of its inputs (sanctum's world, the SDK, the plugin, the lock, the tool
#      versions) matches the stamp beside it.
# Components are ~12 MB each, so they are built into target/, not committed to plugins/.
#
# Usage: plugins-src/js/build.sh OUT_DIR        Needs: npm (any Node) the first time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:?usage: build.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
sdk="$repo/guest-sdk/js"
tools="$repo/target/js"

# shellcheck source=../../tests/node22.sh
source "$repo/tests/node22.sh"
node="$(ensure_node22 "$repo" "js guests")"
ensure_npm_lock "$repo" "$sdk" "$tools" "js guests"
# The build driver runs from inside the toolchain directory, so its imports resolve to the pins.
cp "$sdk/bin/componentize.mjs" "$tools/componentize.mjs"

echo "js guests: SDK tests" >&2
(cd "$sdk" && "$node" --test test/*.test.js >/dev/null) || { echo "js guests: SDK tests failed (run: cd $sdk && node --test test/*.test.js)" >&2; exit 1; }

# Hash of every file under the given paths (names and contents), the lock and the tool versions.
inputs_hash() {
    (cd "$repo" && find "$@" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
        cat "$sdk/package-lock.json"; "$node" --version; echo "$node22_version") |
        sha256sum | cut -d' ' -f1
}

for plugin in "$here"/*/; do
    name="$(basename "$plugin")"
    echo "js guests: $name tests" >&2
    (cd "$plugin" && "$node" --test test/*.test.js >/dev/null) ||
        { echo "js guests: $name tests failed (run: cd $plugin && node --test test/*.test.js)" >&2; exit 1; }
    wasm="$out/$name.wasm"
    hash="$(inputs_hash wit guest-sdk/js "plugins-src/js/$name")"
    if [[ -f "$wasm" && "$(cat "$wasm.inputs" 2>/dev/null)" == "$hash" ]]; then
        echo "js guests: $name.wasm is up to date" >&2
        continue
    fi
    echo "js guests: building $name.wasm" >&2
    rm -f "$wasm.inputs"
    # --root is the repository: componentize-js maps it to the guest's `/`, so the plugin's
    # relative imports of guest-sdk/js resolve inside the component as they do under Node.
    "$node" "$tools/componentize.mjs" --wit "$repo/wit" --root "$repo" "$plugin/component.js" "$wasm.tmp"
    mv "$wasm.tmp" "$wasm"
    echo "$hash" >"$wasm.inputs"
done
