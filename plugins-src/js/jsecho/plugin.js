// jsecho: the benchmark's JavaScript twin of the Rust `echo` (host/benches/load/guests.rs), plus
// tools that exercise the JS SDK inside a real component for the end-to-end tests
// (tests/python/*/test_guest_plugins.py): a thrown non-Error value, output past the host's
// capture, a `fetch` POST with a body, and the host services.
import { definePlugin, defineTool } from '../../../guest-sdk/js/src/index.js';

const echo = defineTool({
  name: 'echo',
  description: 'Echo the text back unchanged.',
  input: {
    type: 'object',
    properties: { text: { type: 'string', description: 'The text to echo.', maxLength: 10000 } },
    required: ['text'],
  },
  annotations: { readOnly: true, destructive: false, idempotent: true, openWorld: false },
  run: ({ text }) => text,
});

const crash = defineTool({
  name: 'crash',
  description: 'Throw a value that is not an Error: it must still be a tool error, not a trap.',
  input: { type: 'object', properties: { code: { type: 'integer' } }, required: ['code'] },
  run({ code }) {
    throw { code, why: 'thrown on purpose' };
  },
});

const chatter = defineTool({
  name: 'chatter',
  description: 'Print `kib` KiB to stdout and stderr, past the host\'s capture, then answer.',
  input: { type: 'object', properties: { kib: { type: 'integer', minimum: 0, maximum: 4096 } }, required: ['kib'] },
  run({ kib }) {
    const line = 'x'.repeat(1023);
    for (let i = 0; i < kib; i += 1) {
      console.log(line);
      console.error(line);
    }
    return `printed ${kib} KiB`;
  },
});

const post = defineTool({
  name: 'post',
  description: 'POST `size` bytes to `url` with fetch (wasi:http) and report the answer.',
  input: {
    type: 'object',
    properties: { url: { type: 'string' }, size: { type: 'integer', minimum: 0, maximum: 1000000 } },
    required: ['url', 'size'],
  },
  async run({ url, size }, ctx) {
    const answer = await ctx.fetch(url, { method: 'POST', body: 'y'.repeat(size), headers: { 'x-probe': 'jsecho' } });
    return { status: answer.status, body: (await answer.text()).slice(0, 200) };
  },
});

const services = defineTool({
  name: 'services',
  description: 'What the host services answer inside the component.',
  input: { type: 'object', properties: {} },
  run(_args, ctx) {
    ctx.log('info', 'jsecho services called');
    ctx.progress(1, 2, 'halfway');
    return { agent: ctx.agentId(), greeting: ctx.config('greeting'), cancelled: ctx.isCancelled() };
  },
});

export default definePlugin({
  name: 'jsecho',
  version: '0.1.0',
  description: 'Echoes text back (a benchmark fixture) and exercises the JS SDK in tests.',
  tools: [echo, crash, chatter, post, services],
});
