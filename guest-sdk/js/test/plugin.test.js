// Plugins and tools outside sanctum: definitions, calls as the host makes them, results,
// errors as results (whatever is thrown), the host's services through a stand-in, and the
// values handed to componentize-js.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

import {
  CommandError, CommandOutput, HttpError, Output, ToolError, definePlugin, defineTool, fetch, image, json, log, output,
  progress, resource, run, text, useStandIn,
} from '../src/index.js';
import { witPluginInfo, witToolOutput } from '../src/wit.js';

const echo = defineTool({
  name: 'echo',
  title: 'Echo',
  description: 'Say it back.',
  input: { type: 'object', properties: { text: { type: 'string', maxLength: 10 }, times: { type: 'integer', default: 1 } }, required: ['text'] },
  annotations: { readOnly: true },
  run: ({ text: said, times }) => said.repeat(times),
});

const make = (...tools) => definePlugin({ name: 'demo', version: '0.1.0', description: 'Tests.', requires: [['command', 'git']], tools: [echo, ...tools] });
const tool = (name, runIt) => defineTool({ name, description: `${name}.`, input: { type: 'object', properties: {} }, run: runIt });

test('names, descriptions and requirements are checked', () => {
  assert.throws(() => definePlugin({ name: 'Bad', version: '1', description: 'd' }), /plugin name "Bad"/);
  assert.throws(() => defineTool({ name: 'x-y', description: 'd', run: () => 1 }), /tool name "x-y"/);
  assert.throws(() => defineTool({ name: 'x', description: ' ', run: () => 1 }), /description/);
  assert.throws(() => defineTool({ name: 'x', description: 'd', annotations: { readonly: true }, run: () => 1 }), /unknown annotation readonly/);
  assert.throws(() => definePlugin({ name: 'p', version: '1', description: 'd', requires: [['socket', 'x']] }), /requirement/);
  assert.throws(() => make(echo), /defined twice/);
});

test('a string is a text block, any other value JSON, null nothing; output() holds several and structured', async () => {
  const plugin = make(
    tool('data', () => ({ ok: true })),
    tool('nothing', () => undefined),
    tool('many', async () => output(['a', { b: 1 }, image([1, 2], 'image/png')], { structured: { n: 1 } })),
    tool('shaped', () => ({ type: 'text', text: 'plain data, not a block' })),
  );
  assert.deepEqual(await plugin.call('echo', { text: 'hi', times: 2 }), new Output([text('hihi')]));
  assert.deepEqual(await plugin.call('echo', { text: 'hi', times: null }), new Output([text('hi')]));
  assert.deepEqual((await plugin.call('data')).content, [json({ ok: true })]);
  assert.deepEqual((await plugin.call('nothing')).content, []);
  const many = await plugin.call('many');
  assert.deepEqual(many.content.map((block) => block.type), ['text', 'json', 'image']);
  assert.deepEqual(many.structured, { n: 1 });
  assert.equal((await plugin.call('shaped')).content[0].type, 'json');
});

test('whatever a tool throws is a tool error with a readable message', async () => {
  const payloadError = Object.assign(new Error('x'), {});
  Object.defineProperty(payloadError, 'payload', { value: { tag: 'failed', val: 'no such program' } });
  const plugin = make(
    tool('refuse', () => { throw new ToolError('nobody cannot be greeted'); }),
    tool('bug', () => null.x),
    tool('number', () => { throw 42; }),
    tool('nothing', async () => { throw undefined; }),
    tool('component', () => { throw payloadError; }),
    tool('cyclic', () => { const a = {}; a.a = a; throw a; }),
  );
  const expected = {
    refuse: 'nobody cannot be greeted',
    number: 'the tool threw number: 42',
    nothing: 'the tool threw undefined: undefined',
    component: 'ComponentError: failed: no such program',
    cyclic: 'the tool threw object: [object Object]',
  };
  for (const [name, message] of Object.entries(expected)) {
    assert.deepEqual(await plugin.dispatch(name, '{}'), { error: message }, name);
    await assert.rejects(plugin.call(name), (error) => error instanceof ToolError && error.message === message);
  }
  assert.match((await plugin.dispatch('bug', '{}')).error, /^TypeError: /);
  assert.deepEqual(await plugin.dispatch('ghost', '{}'), { error: 'unknown tool "ghost"' });
  assert.deepEqual(await plugin.dispatch('echo', '[1]'), { error: 'the arguments must be a JSON object' });
  assert.match((await plugin.dispatch('echo', '{')).error, /^SyntaxError/);
});

test('settle answers a synchronous tool without a promise, an async one with one', async () => {
  const plugin = make(
    tool('later', async () => 'done'),
    tool('thenable', () => ({ then: (resolve) => resolve('kept') })),
    tool('refuse', () => { throw new ToolError('no'); }),
  );
  assert.deepEqual(plugin.settle('echo', '{"text":"hi"}'), { output: new Output([text('hi')]) });
  assert.match(plugin.settle('echo', '{').error, /^SyntaxError/);
  assert.deepEqual(plugin.settle('refuse', '{}'), { error: 'no' });
  const later = plugin.settle('later', '{}');
  assert.ok(later instanceof Promise);
  assert.deepEqual(await later, { output: new Output([text('done')]) });
  assert.deepEqual(await plugin.settle('thenable', '{}'), { output: new Output([text('kept')]) });
});

test('host services answer from the stand-in', async () => {
  const stand = useStandIn({
    config: { greeting: 'hi' },
    agent: 'agent-7',
    commands: {
      git: (args, stdin) => ({ status: 0, stdout: `git ${args.join(' ')} ${stdin ?? ''}`.trim() }),
      lint: () => { throw new CommandError('argument-refused', '--fix is not allowed'); },
    },
  });
  const plugin = make(tool('services', (args, ctx) => {
    ctx.log('info', 'working');
    ctx.progress(1, 2, 'half');
    return { config: ctx.config('greeting'), unset: ctx.config('nope'), agent: ctx.agentId(), cancelled: ctx.isCancelled(), git: ctx.run('git', ['status'], 'in').text() };
  }));
  assert.deepEqual((await plugin.call('services')).content[0].value, { config: 'hi', unset: null, agent: 'agent-7', cancelled: false, git: 'git status in' });
  assert.deepEqual(stand.logs, [['info', 'working']]);
  assert.deepEqual(stand.progress, [[1, 2, 'half']]);
  const out = run('git', ['log']);
  assert.ok(out instanceof CommandOutput && out.ok && out.stdout instanceof Uint8Array);
  assert.throws(() => run('rm'), (error) => error instanceof CommandError && error.kind === 'not-granted');
  assert.throws(() => run('lint'), (error) => error.kind === 'argument-refused');
  assert.throws(() => log('loud', 'x'), /log level/);
  progress(2);
  assert.deepEqual(stand.progress.at(-1), [2, null, null]);
});

test('fetch reaches only the stand-in\'s origins, and says which origin failed', async (t) => {
  const server = http.createServer((req, res) => res.end(`you asked for ${req.url}`));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const origin = `http://127.0.0.1:${server.address().port}`;
  useStandIn({ httpOrigins: [origin] });
  assert.equal(await (await fetch(`${origin}/x`)).text(), 'you asked for /x');
  await assert.rejects(fetch('http://example.com/'), (error) => error instanceof HttpError && error.origin === 'http://example.com:80');
  useStandIn({ httpOrigins: ['http://127.0.0.1:1'] });
  await assert.rejects(fetch('http://127.0.0.1:1/'), (error) => error instanceof HttpError && /got no response/.test(error.message));
});

test('describe and results take the shapes componentize-js expects', () => {
  const info = witPluginInfo(make().describe());
  assert.deepEqual(info.requirements, [{ tag: 'command', val: 'git' }]);
  const [wit] = info.tools;
  assert.equal(wit.name, 'echo');
  assert.equal(wit.title, 'Echo');
  assert.equal(wit.outputSchema, undefined);
  assert.deepEqual(wit.annotations, { readOnly: true, destructive: undefined, idempotent: undefined, openWorld: undefined });
  assert.equal(JSON.parse(wit.inputSchema).additionalProperties, false);
  const result = witToolOutput(output(['a', { b: 1 }, resource({ uri: 'test://r', text: 'body' })], { structured: [1] }));
  assert.deepEqual(result, {
    content: [
      { tag: 'text', val: 'a' },
      { tag: 'json', val: '{"b":1}' },
      { tag: 'resource', val: { uri: 'test://r', mimeType: undefined, contents: { tag: 'text', val: 'body' } } },
    ],
    structured: '[1]',
  });
  assert.equal(witToolOutput(output([])).structured, undefined);
});
