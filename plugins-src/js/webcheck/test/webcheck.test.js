// webcheck's own tests under plain Node: a real HTTP server on 127.0.0.1, the SDK's stand-in
// for the host (granted origins, config, logs, progress).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { ToolError, useStandIn } from '../../../../guest-sdk/js/src/index.js';
import plugin from '../plugin.js';

let origin;
let server;

before(async () => {
  server = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', padding: 'x'.repeat(500) }));
    } else if (req.url === '/slow') {
      setTimeout(() => res.end('late'), 2000);
    } else {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('down for   maintenance\n');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${server.address().port}`;
});
after(() => server.closeAllConnections() || server.close());

const report = (result) => result.content.find((block) => block.type === 'json').value;

test('the schemas are strict', () => {
  const schema = plugin.inputSchema('check_url');
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.required, ['url']);
  assert.deepEqual(schema.properties.expect_status.type, ['integer', 'null']);
  assert.equal(plugin.inputSchema('check_many').properties.urls.items.type, 'string');
});

test('a healthy URL: status, latency, content type, a short excerpt', async () => {
  useStandIn({ httpOrigins: [origin] });
  const result = await plugin.call('check_url', { url: `${origin}/healthz`, expect_text: '"ok"', expect_status: null });
  assert.match(result.content[0].text, /^HEALTHY .*\/healthz: 200 in \d+ ms$/);
  const checked = report(result);
  assert.equal(checked.healthy, true);
  assert.equal(checked.content_type, 'application/json');
  assert.ok(checked.latency_ms >= 0);
  assert.ok(checked.excerpt.length <= 201 && checked.excerpt.endsWith('…'));
});

test('an unhealthy answer is a report, not an error', async () => {
  useStandIn({ httpOrigins: [origin] });
  const checked = report(await plugin.call('check_url', { url: `${origin}/down`, expect_text: 'ok' }));
  assert.equal(checked.healthy, false);
  assert.equal(checked.excerpt, 'down for maintenance');
  assert.deepEqual(checked.problems, ['status 503, expected a 2xx', 'the body does not contain "ok"']);
  assert.equal(report(await plugin.call('check_url', { url: `${origin}/down`, expect_status: 503 })).healthy, true);
});

test('an origin the policy does not grant is a tool error naming it', async () => {
  useStandIn({ httpOrigins: [] });
  await assert.rejects(
    plugin.call('check_url', { url: `${origin}/healthz` }),
    (error) => error instanceof ToolError && error.message.includes(`${origin} refused`),
  );
});

test('a slow service times out, with the operator\'s default or the argument', async () => {
  useStandIn({ httpOrigins: [origin], config: { default_timeout_ms: '150' } });
  await assert.rejects(plugin.call('check_url', { url: `${origin}/slow` }), /no complete answer within 150 ms/);
  await assert.rejects(plugin.call('check_url', { url: `${origin}/slow`, timeout_ms: 100 }), /within 100 ms/);
});

test('check_many sums up, reports progress, logs what failed', async () => {
  const stand = useStandIn({ httpOrigins: [origin] });
  const result = await plugin.call('check_many', { urls: [`${origin}/healthz`, `${origin}/down`, 'http://192.0.2.1/'] });
  const summary = report(result);
  assert.deepEqual([summary.total, summary.healthy, summary.unhealthy], [3, 1, 2]);
  assert.match(summary.results[2].error, /http:\/\/192\.0\.2\.1:80 refused/);
  assert.match(result.content[0].text, /^1 of 3 healthy\n/);
  assert.deepEqual(stand.progress.map(([done, total]) => [done, total]), [[1, 3], [2, 3], [3, 3]]);
  assert.equal(stand.logs.length, 1);
});

test('check_many stops when the client cancelled', async () => {
  useStandIn({ httpOrigins: [origin], cancelled: true });
  await assert.rejects(plugin.call('check_many', { urls: [`${origin}/healthz`] }), /cancelled after 0 of 1/);
});
