// jsecho under plain Node, with the SDK's stand-in for the host.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ToolError, useStandIn } from '../../../../guest-sdk/js/src/index.js';
import plugin from '../plugin.js';

test('echo returns the text', async () => {
  assert.equal((await plugin.call('echo', { text: 'hello' })).content[0].text, 'hello');
});

test('a thrown plain object is a tool error that shows it', async () => {
  await assert.rejects(plugin.call('crash', { code: 7 }), (error) =>
    error instanceof ToolError && /7/.test(error.message) && /thrown on purpose/.test(error.message));
});

test('the host services answer from the stand-in', async () => {
  const stand = useStandIn({ agent: 'agent-7', config: { greeting: 'hi' } });
  const result = await plugin.call('services', {});
  assert.deepEqual(result.content[0].value, { agent: 'agent-7', greeting: 'hi', cancelled: false });
  assert.deepEqual(stand.logs, [['info', 'jsecho services called']]);
  assert.deepEqual(stand.progress, [[1, 2, 'halfway']]);
});
