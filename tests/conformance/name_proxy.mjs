// A transparent HTTP proxy in front of sanctum's /mcp that maps tool names, for the conformance
// suite only.
//
// @modelcontextprotocol/conformance calls its fixture tools by bare names (`test_simple_text`),
// while sanctum always serves a plugin's tools as `<plugin>__<tool>` (host/src/ids.rs). This proxy
// changes exactly two things and nothing else:
//   - in a request, a `tools/call` whose `params.name` has no `__` (and is not a built-in such as
//     `health`) gets the prefix `<plugin>__`;
//   - in a response (JSON body or SSE `data:` line), a `result.tools` listing loses that prefix.
// Method, path, query, headers (Host and Origin included, so sanctum's DNS-rebinding defence is
// what the suite tests), status codes, session ids and the streaming of SSE events pass through
// unchanged; SSE events are forwarded as they arrive, so progress and log notifications keep
// their timing.
//
// Usage: node name_proxy.mjs UPSTREAM_PORT [PLUGIN]   (default plugin: conformance)
// Prints `name-proxy listening on http://127.0.0.1:PORT` once ready.
import http from "node:http";

const upstreamPort = Number(process.argv[2]);
const plugin = process.argv[3] ?? "conformance";
const prefix = `${plugin}__`;
const builtins = new Set(["health"]);
if (!Number.isInteger(upstreamPort) || upstreamPort <= 0) {
  console.error("usage: node name_proxy.mjs UPSTREAM_PORT [PLUGIN]");
  process.exit(2);
}

function mapRequestMessage(msg) {
  if (msg && msg.method === "tools/call" && msg.params && typeof msg.params.name === "string") {
    const name = msg.params.name;
    if (!name.includes("__") && !builtins.has(name)) msg.params.name = prefix + name;
  }
  return msg;
}

function mapResponseMessage(msg) {
  const tools = msg && msg.result && msg.result.tools;
  if (Array.isArray(tools)) {
    for (const tool of tools) {
      if (tool && typeof tool.name === "string" && tool.name.startsWith(prefix)) {
        tool.name = tool.name.slice(prefix.length);
      }
    }
  }
  return msg;
}

// Apply `fn` to a JSON-RPC message or batch in `text`; anything that is not JSON is left as is.
function mapJsonText(text, fn) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return text;
  }
  return JSON.stringify(Array.isArray(value) ? value.map(fn) : fn(value));
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body = Buffer.concat(chunks);
    const headers = { ...req.headers };
    if (body.length > 0 && /json/i.test(headers["content-type"] ?? "")) {
      body = Buffer.from(mapJsonText(body.toString("utf8"), mapRequestMessage), "utf8");
      headers["content-length"] = String(body.length);
    }
    const upstream = http.request(
      { host: "127.0.0.1", port: upstreamPort, method: req.method, path: req.url, headers },
      (up) => {
        const type = up.headers["content-type"] ?? "";
        const outHeaders = { ...up.headers };
        if (/text\/event-stream/i.test(type)) {
          delete outHeaders["content-length"];
          res.writeHead(up.statusCode, outHeaders);
          res.flushHeaders();
          // Rewrite `data:` lines one complete line at a time, forwarding each as it arrives.
          let pending = "";
          up.setEncoding("utf8");
          up.on("data", (text) => {
            pending += text;
            const lines = pending.split("\n");
            pending = lines.pop();
            const out = lines.map((line) =>
              line.startsWith("data:")
                ? "data: " + mapJsonText(line.slice(5).replace(/\r$/, "").trim(), mapResponseMessage)
                : line,
            );
            if (out.length > 0) res.write(out.join("\n") + "\n");
          });
          up.on("end", () => res.end(pending));
        } else if (/json/i.test(type)) {
          const parts = [];
          up.on("data", (c) => parts.push(c));
          up.on("end", () => {
            const text = mapJsonText(Buffer.concat(parts).toString("utf8"), mapResponseMessage);
            outHeaders["content-length"] = String(Buffer.byteLength(text));
            res.writeHead(up.statusCode, outHeaders);
            res.end(text);
          });
        } else {
          res.writeHead(up.statusCode, outHeaders);
          up.pipe(res);
        }
        up.on("error", () => res.destroy());
      },
    );
    upstream.on("error", (e) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`name-proxy: upstream error: ${e.message}\n`);
    });
    // A client that goes away (the suite closing a GET stream) closes the upstream request too.
    res.on("close", () => upstream.destroy());
    upstream.end(body);
  });
});

server.listen(0, "127.0.0.1", () => {
  console.log(`name-proxy listening on http://127.0.0.1:${server.address().port}`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
