#!/usr/bin/env bash
# Build the plugins in plugins-src/ and copy the components to where the repository keeps them:
#   echo                  -> plugins/echo.wasm
#   devops                -> plugins/devops.wasm
#   botfather             -> plugins/botfather.wasm
#   fixtures/hostile      -> tests/plugins/hostile.wasm
#   fixtures/not-a-plugin -> tests/plugins/not_a_plugin.wasm
#   tutorial              -> tests/plugins/notes.wasm  (crate `notes`, from docs/plugin-development.md)
#   fixtures/pinned-v1, -v2 -> tests/plugins/pinned_v1.wasm, pinned_v2.wasm (one plugin, two tool definitions)
#   fixtures/conformance  -> tests/plugins/conformance.wasm (the MCP conformance suite's tools; tests/conformance/)
#   fixtures/twin         -> tests/plugins/twin.wasm (tool names that clash with conformance's under bare names)
#   fixtures/impostor     -> tests/plugins/impostor.wasm (declares the name `probe`: identity is the file name)
#   fixtures/multi-memory -> tests/plugins/multi_memory.wasm (then add_memories.py gives it four more memories)
#   fixtures/schema-bomb  -> tests/plugins/schema_bomb.wasm (schemas that attack validation)
#   validator             -> host/assets/validator.wasm (the host's own JSON Schema validator, embedded)
#   fixtures/bench        -> tests/plugins/bench00.wasm (the load benchmark's plugin; host/benches/load/)
# Not built here: tests/plugins/world_0_1.wasm, a frozen copy of pinned_v1.wasm as built against
# sanctum:plugin@0.1.0, kept to test that the host refuses an old world by its version; and
# tests/plugins/echo_before_jobs.wasm, echo as built before the `jobs` interface was added to
# the 0.2 world, kept to test that such a component still loads.
#
# Usage: plugins-src/build.sh [--check]
#   --check  build into a temporary directory and fail, naming each file, if a committed .wasm
#            differs from a fresh build (i.e. is stale). Copies nothing.
#
# The .wasm files are committed, so the build must be reproducible: the same sources and
# toolchain give the same bytes wherever the repository is cloned. The clone's absolute path
# would leak in two ways, both handled below: as text (panic locations), and through cargo,
# which hashes the absolute path of guest-sdk (a path dependency outside this workspace) into
# symbol names, which in turn decide the order of code and data in the output.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target=wasm32-wasip2

check=false
case "${1:-}" in
"") ;;
--check) check=true ;;
*)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

# source-in-build/committed-path pairs.
outputs=(
    "echo.wasm:plugins/echo.wasm"
    "devops.wasm:plugins/devops.wasm"
    "botfather.wasm:plugins/botfather.wasm"
    "hostile.wasm:tests/plugins/hostile.wasm"
    "not-a-plugin.wasm:tests/plugins/not_a_plugin.wasm"
    "probe.wasm:tests/plugins/probe.wasm"
    "notes.wasm:tests/plugins/notes.wasm"
    "pinned_v1.wasm:tests/plugins/pinned_v1.wasm"
    "pinned_v2.wasm:tests/plugins/pinned_v2.wasm"
    "conformance.wasm:tests/plugins/conformance.wasm"
    "twin.wasm:tests/plugins/twin.wasm"
    "bench.wasm:tests/plugins/bench00.wasm"
    "impostor.wasm:tests/plugins/impostor.wasm"
    "multi_memory.wasm:tests/plugins/multi_memory.wasm"
    "schema_bomb.wasm:tests/plugins/schema_bomb.wasm"
    "schema_validator.wasm:host/assets/validator.wasm"
)

rustup target add "$target" >/dev/null 2>&1 || rustup target add "$target"

stage=/tmp/sanctum-plugins-build
cleanup_dirs=()
cleanup() {
    # The symlink is ours while we hold the lock; the temp target dir exists only for --check.
    rm -f "$stage/repo"
    if ((${#cleanup_dirs[@]} > 0)); then rm -rf "${cleanup_dirs[@]}"; fi
}
trap cleanup EXIT

if $check; then
    target_dir="$(mktemp -d)"
    cleanup_dirs+=("$target_dir")
else
    target_dir="$repo_root/plugins-src/target"
fi

# Cargo sees the repository only through a symlink at this fixed path, so the path it hashes is
# the same in every clone. The lock keeps concurrent builds of different clones from re-pointing
# it mid-build.
mkdir -p "$stage"
if command -v flock >/dev/null; then
    exec 9>"$stage/lock"
    flock 9
fi
ln -sfn "$repo_root" "$stage/repo"
src_dir="$stage/repo/plugins-src"

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
sysroot="$(rustc --print sysroot)"

# rustc applies the last matching remapping, so more specific prefixes come later (the target
# dir and CARGO_HOME may live inside the repository). The target dir matters because build
# scripts' generated code is compiled from OUT_DIR. CARGO_ENCODED_RUSTFLAGS (0x1f-separated)
# keeps paths with spaces intact and overrides any RUSTFLAGS or cargo config rustflags, which
# would otherwise change the bytes.
sep=$'\x1f'
flags=(
    "--remap-path-prefix=$repo_root=/sanctum"
    "--remap-path-prefix=$stage/repo=/sanctum"
    "--remap-path-prefix=$cargo_home=/cargo"
    "--remap-path-prefix=$sysroot=/rust"
    "--remap-path-prefix=$target_dir=/target"
)
encoded="$(printf "%s$sep" "${flags[@]}")"
export CARGO_ENCODED_RUSTFLAGS="${encoded%"$sep"}"
unset RUSTFLAGS

echo "building plugins with $(rustc --version)" >&2
# Run from plugins-src so the cargo config that applies does not depend on the caller's cwd;
# --manifest-path, unlike the cwd, keeps the symlinked path.
# The validator builds on its own: built together, cargo would unify its dependencies' features
# (serde_json's among them) into every plugin, changing their bytes.
(cd "$repo_root/plugins-src" &&
    cargo build --manifest-path "$src_dir/Cargo.toml" --locked --release --target "$target" \
        --target-dir "$target_dir" --workspace --exclude schema-validator &&
    cargo build --manifest-path "$src_dir/Cargo.toml" --locked --release --target "$target" \
        --target-dir "$target_dir" --package schema-validator)

built_dir="$target_dir/$target/release"
stale=()
for pair in "${outputs[@]}"; do
    built="$built_dir/${pair%%:*}"
    committed="$repo_root/${pair#*:}"
    if [[ "${pair%%:*}" == multi_memory.wasm ]]; then
        python3 "$repo_root/plugins-src/fixtures/multi-memory/add_memories.py" "$built" "$built.composed"
        built="$built.composed"
    fi
    if $check; then
        if [[ ! -e "$committed" ]]; then
            stale+=("${pair#*:} (missing)")
        elif ! cmp -s "$built" "$committed"; then
            stale+=("${pair#*:} (differs)")
        fi
    else
        mkdir -p "$(dirname "$committed")"
        cp "$built" "$committed"
        echo "wrote ${pair#*:} ($(wc -c <"$committed") bytes)" >&2
    fi
done

if ((${#stale[@]} > 0)); then
    echo "stale plugin components (they differ from a fresh build of plugins-src/):" >&2
    printf '  %s\n' "${stale[@]}" >&2
    echo "run plugins-src/build.sh and commit the results" >&2
    exit 1
fi
if $check; then
    echo "all plugin components are up to date" >&2
fi
