// Who may do what (issue 13), through Letta Code's own MCP client: the export
// `@letta-ai/letta-code/mcp-client` of @letta-ai/letta-code 0.32.18 (`connectMcpServer`, MCP SDK
// 1.30.0 bundled inside), the code `letta mcp tools|call` runs. Mirrors
// tests/python/modern/test_access.py on both of Letta Code's remote transports: "http" (/mcp)
// and "sse" (/sse).
//
// The server is started here: `$SANCTUM_BIN serve` (default <repo>/target/release/sanctum) on a
// free loopback port, serving only the echo plugin (copied from $SANCTUM_TEST_PLUGINS, default
// <repo>/plugins) with the tokens and [access] policy of the Python ACCESS fixture
// (tests/python/sanctum_server.py) and an audit file, and stopped at the end. Compiled plugins are
// cached in $SANCTUM_TEST_CACHE_DIR (default <repo>/target/lettacode/compile-cache).
//
// Letta Code over SSE sends each configured header whose name has capitals twice, comma-joined
// (its fetch wrapper spreads the lower-cased `Headers` entries and then the configured ones, and
// fetch joins the two keys): `Authorization: Bearer T, Bearer T` and `X-Agent-Id: ops-agent,
// ops-agent`. sanctum reads one value repeated as that value, for the token and the agent alike.
// So every case runs over "http" and "sse" with the headers as a user writes them (capitalised,
// as `/mcp add` stores them), and once more over "sse" with lower-case names (sent once).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");

// The pinned install: $SANCTUM_LETTACODE_NPM (run.sh sets it), else <repo>/target/lettacode-npm,
// else a plain `npm ci` here.
const npmDir = [process.env.SANCTUM_LETTACODE_NPM, join(repo, "target/lettacode-npm"), here]
  .find((dir) => dir && existsSync(join(dir, "node_modules/@letta-ai/letta-code/package.json")));
assert.ok(npmDir, "@letta-ai/letta-code is not installed: run tests/lettacode/run.sh (or set SANCTUM_LETTACODE_NPM)");
const lettaCode = JSON.parse(readFileSync(join(npmDir, "node_modules/@letta-ai/letta-code/package.json"), "utf8"));
assert.equal(lettaCode.version, "0.32.18", `${npmDir}: the pinned @letta-ai/letta-code`);
const { connectMcpServer } = await import(
  pathToFileURL(createRequire(join(npmDir, "package.json")).resolve("@letta-ai/letta-code/mcp-client")).href);
const SANCTUM_BIN = process.env.SANCTUM_BIN ?? join(repo, "target/release/sanctum");
const PLUGINS = process.env.SANCTUM_TEST_PLUGINS ?? join(repo, "plugins");
const START_TIMEOUT_MS = Number(process.env.SANCTUM_START_TIMEOUT ?? "60") * 1000;

// The same as ACCESS_TOKENS / ACCESS_TOKENS_FILE / ACCESS_POLICY in tests/python/sanctum_server.py.
const TOKENS = { letta: "letta-token-0123456789abcdef", ci: "ci-token-0123456789abcdef012" };
const GROUPS = { letta: ["ops"], ci: [] };
const TOKENS_FILE = `[[token]]
principal = "letta"
groups = ["ops"]
value = "${TOKENS.letta}"

[[token]]
principal = "ci"
value = "${TOKENS.ci}"
`;
const POLICY = `[access]
default = "deny"

[[access.rule]]
name = "ops-echo"
groups = ["ops"]
agents = ["ops-agent"]
tools = ["echo__*"]
effect = "allow"

[[access.rule]]
name = "support-reads"
principals = ["letta"]
agents = ["support-agent"]
tools = ["echo__stats"]
effect = "allow"

[[access.rule]]
name = "no-shouting"
tools = ["echo__echo"]
effect = "deny"
when = [{ pointer = "/uppercase", equals = true }]

[[access.rule]]
name = "health-for-all"
tools = ["health"]
effect = "allow"
`;
const ECHO_TOOLS = ["echo__echo", "echo__fail", "echo__image", "echo__progress", "echo__stats", "echo__wait"];
const DEFAULT_REFUSAL = "refused: no access rule lets this caller make this call, and the policy's default is deny";
const ruleRefusal = (index, name) => `refused by access rule #${index} "${name}"`;

const TRANSPORTS = { http: "/mcp", sse: "/sse" };

let server; // { process, baseUrl, auditPath, stderrPath, workdir }

async function startSanctum() {
  assert.ok(existsSync(SANCTUM_BIN), `sanctum binary not found: ${SANCTUM_BIN} (build it or set SANCTUM_BIN)`);
  const echo = join(PLUGINS, "echo.wasm");
  assert.ok(existsSync(echo), `echo plugin not found: ${echo} (set SANCTUM_TEST_PLUGINS)`);
  const workdir = mkdtempSync(join(tmpdir(), "sanctum-lettacode-"));
  mkdirSync(join(workdir, "plugins"));
  copyFileSync(echo, join(workdir, "plugins/echo.wasm"));
  writeFileSync(join(workdir, "tokens.toml"), TOKENS_FILE);
  chmodSync(join(workdir, "tokens.toml"), 0o600);
  writeFileSync(join(workdir, "policy.toml"), POLICY);
  const auditPath = join(workdir, "audit.jsonl");
  const stderrPath = join(workdir, "sanctum.stderr.log");
  const args = [
    "serve", "--host", "127.0.0.1", "--port", "0",
    "--plugins", join(workdir, "plugins"),
    "--policy", join(workdir, "policy.toml"),
    "--auth-tokens-file", join(workdir, "tokens.toml"),
    "--audit", auditPath,
    "--pins", "off",
    "--cache-dir", process.env.SANCTUM_TEST_CACHE_DIR ?? join(repo, "target/lettacode/compile-cache"),
    "--admin-socket", "off",
    "--watch", "false",
  ];
  const child = spawn(SANCTUM_BIN, args, { stdio: ["ignore", "pipe", openSync(stderrPath, "w")] });
  const stderrTail = () => (existsSync(stderrPath) ? readFileSync(stderrPath, "utf8").split("\n").slice(-30).join("\n") : "");
  const first = await new Promise((resolveLine, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`no listening line within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    lines.once("line", (line) => { clearTimeout(timer); resolveLine(line); });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`sanctum exited with ${code} before listening`)); });
  }).catch((err) => { child.kill("SIGKILL"); throw new Error(`${err.message}\n--- sanctum stderr ---\n${stderrTail()}`); });
  const match = /^sanctum listening on (http:\/\/127\.0\.0\.1:\d{1,5})$/.exec(first);
  if (!match) {
    child.kill("SIGKILL");
    throw new Error(`unexpected first stdout line ${JSON.stringify(first)}\n--- sanctum stderr ---\n${stderrTail()}`);
  }
  child.stdout.resume(); // keep draining anything printed later
  const baseUrl = match[1];
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      const resp = await fetch(`${baseUrl}/healthz`);
      if (resp.ok && (await resp.json()).status === "ok") break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`/healthz not ok in time\n--- sanctum stderr ---\n${stderrTail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { process: child, baseUrl, auditPath, stderrPath, workdir, stderrTail };
}

async function stopSanctum(s) {
  if (!s) return;
  if (s.process.exitCode === null && s.process.signalCode === null) {
    const exited = new Promise((r) => s.process.once("exit", r));
    s.process.kill("SIGTERM");
    const timer = setTimeout(() => s.process.kill("SIGKILL"), 15000);
    await exited;
    clearTimeout(timer);
  }
  if (!process.env.SANCTUM_KEEP_WORKDIR) rmSync(s.workdir, { recursive: true, force: true });
}

function auditRecords() {
  if (!existsSync(server.auditPath)) return [];
  return readFileSync(server.auditPath, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** Audit records written after `offset` records, once `predicate` holds (or after 10 s). */
async function auditSince(offset, predicate) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const records = auditRecords().slice(offset);
    if (predicate(records) || Date.now() > deadline) return records;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Letta Code's client for `principal` claiming `agent`, configured as `/mcp add` would store it. */
function connect(transport, principal, agent, lowerCaseNames) {
  const headers = { [lowerCaseNames ? "authorization" : "Authorization"]: `Bearer ${TOKENS[principal]}` };
  if (agent !== undefined) headers[lowerCaseNames ? "x-agent-id" : "X-Agent-Id"] = agent;
  return connectMcpServer({ name: "sanctum", transport, url: server.baseUrl + TRANSPORTS[transport], headers });
}

const textOf = (result) => result.content.filter((b) => b.type === "text").map((b) => b.text).join(" ");
const names = (connected) => connected.tools.map((t) => t.name).sort();

/** Calls `steps` in one session; checks each result, then the access records they left. */
async function runPlan(transport, principal, agent, steps, { lowerCaseNames = false, expectedAgentId = agent } = {}) {
  const offset = auditRecords().length;
  const connected = await connect(transport, principal, agent, lowerCaseNames);
  let listing;
  try {
    listing = names(connected);
    for (const step of steps) {
      const result = await connected.callTool(step.tool, step.args);
      const text = textOf(result);
      const where = `${transport} ${principal}/${agent} ${step.tool}(${JSON.stringify(step.args)})`;
      if (step.refused === null) {
        assert.notEqual(result.isError, true, `${where}: expected success, got ${JSON.stringify(text)}`);
        if (step.text !== undefined) assert.equal(text, step.text, where);
      } else {
        assert.equal(result.isError, true, `${where}: expected a refusal, got ${JSON.stringify(text)}`);
        assert.ok(text.includes(step.refused), `${where}: ${JSON.stringify(text)}`);
        assert.ok(text.includes(`(${step.tool})`), `${where}: the refusal names the tool: ${JSON.stringify(text)}`);
        assert.ok(text.includes("retrying will not change it"), `${where}: ${JSON.stringify(text)}`);
        for (const value of Object.values(step.args)) {
          if (typeof value === "string") assert.ok(!text.includes(value), `${where}: the refusal echoes an argument`);
        }
      }
    }
  } finally {
    await connected.close();
  }
  const ran = steps.filter((s) => s.refused === null && s.tool !== "health").map((s) => s.tool);
  const records = await auditSince(offset, (rs) =>
    rs.filter((r) => r.event === "access").length >= steps.length &&
    rs.filter((r) => r.event === "tool_call").length >= ran.length);
  const access = records.filter((r) => r.event === "access");
  assert.equal(access.length, steps.length, `${transport} ${principal}/${agent}: one access record per call: ${JSON.stringify(access)}`);
  steps.forEach((step, i) => {
    const record = access[i];
    const where = `${transport} ${principal}/${agent} ${step.tool}: ${JSON.stringify(record)}`;
    assert.equal(record.principal, principal, where);
    assert.equal(record.agent_id, expectedAgentId, where);
    assert.deepEqual(record.groups, GROUPS[principal], where);
    assert.equal(record.tool, step.tool, where);
    assert.equal(record.decision, step.refused === null ? "allow" : "deny", where);
    assert.equal(record.rule ?? null, step.rule, where);
    assert.equal(record.rule_index ?? null, step.index, where);
    assert.equal(record.by_default, step.rule === null, where);
    assert.deepEqual(record.matched, step.matched, where);
  });
  const toolCalls = records.filter((r) => r.event === "tool_call").map((r) => `${r.plugin}__${r.tool}`);
  assert.deepEqual(toolCalls, ran, `${transport} ${principal}/${agent}: refused calls must not run`);
  return { listing, access };
}

const health = { tool: "health", args: {}, refused: null, rule: "health-for-all", index: 4, matched: ["#4 health-for-all"] };

before(async () => {
  server = await startSanctum();
});

after(async () => {
  await stopSanctum(server);
});

const VARIANTS = [
  ...Object.keys(TRANSPORTS).map((transport) => ({ transport, lowerCaseNames: false })),
  { transport: "sse", lowerCaseNames: true },
];

for (const { transport, lowerCaseNames } of VARIANTS) {
  const opts = { lowerCaseNames };
  const headerNames = lowerCaseNames ? "authorization, x-agent-id" : "Authorization, X-Agent-Id";
  describe(`Letta Code over ${transport} (${TRANSPORTS[transport]}), headers ${headerNames}`, () => {
    test("letta as ops-agent sees every echo tool; echo runs, shouting is refused by rule #3", async () => {
      const secret = `secret-${randomUUID()}`;
      const { listing } = await runPlan(transport, "letta", "ops-agent", [
        { tool: "echo__echo", args: { text: secret, uppercase: false }, refused: null, text: secret, rule: "ops-echo",
          index: 1, matched: ["#1 ops-echo"] },
        { tool: "echo__stats", args: { numbers: [1, 2, 3] }, refused: null, rule: "ops-echo", index: 1,
          matched: ["#1 ops-echo"] },
        { tool: "echo__echo", args: { text: secret, uppercase: true }, refused: ruleRefusal(3, "no-shouting"),
          rule: "no-shouting", index: 3, matched: ["#1 ops-echo", "#3 no-shouting"] },
        health,
      ], opts);
      assert.deepEqual(listing, [...ECHO_TOOLS, "health"]);
    });

    test("letta as support-agent sees echo__stats and health; echo is refused by the default", async () => {
      const secret = `secret-${randomUUID()}`;
      const { listing } = await runPlan(transport, "letta", "support-agent", [
        { tool: "echo__stats", args: { numbers: [4, 5] }, refused: null, rule: "support-reads", index: 2,
          matched: ["#2 support-reads"] },
        { tool: "echo__echo", args: { text: secret, uppercase: false }, refused: DEFAULT_REFUSAL, rule: null,
          index: null, matched: [] },
        health,
      ], opts);
      assert.deepEqual(listing, ["echo__stats", "health"]);
    });

    test("ci claiming ops-agent gains nothing: only health", async () => {
      const secret = `secret-${randomUUID()}`;
      const { listing } = await runPlan(transport, "ci", "ops-agent", [
        { tool: "echo__stats", args: { numbers: [1] }, refused: DEFAULT_REFUSAL, rule: null, index: null, matched: [] },
        { tool: "echo__echo", args: { text: secret, uppercase: false }, refused: DEFAULT_REFUSAL, rule: null,
          index: null, matched: [] },
        { tool: "echo__echo", args: { text: secret, uppercase: true }, refused: ruleRefusal(3, "no-shouting"),
          rule: "no-shouting", index: 3, matched: ["#3 no-shouting"] },
        health,
      ], opts);
      assert.deepEqual(listing, ["health"]);
    });
  });
}

test("argument values never reach the audit log", () => {
  assert.ok(!readFileSync(server.auditPath, "utf8").includes("secret-"), "an argument value reached the audit log");
});
