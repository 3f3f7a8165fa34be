// The SDK's schema rules: strict normalisation as the Rust/Python SDKs do it, refusals at
// definition time, and the optional-null rule shared with the host (wit/conformance).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { SchemaError, defineTool, prepareArgs, strictSchema } from '../src/index.js';

const run = () => 'ok';

test('objects are closed, optional properties nullable, required kept', () => {
  const schema = strictSchema({
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    properties: {
      app: { type: 'string' },
      times: { type: 'integer', default: 1 },
      mode: { type: 'string', enum: ['fast', 'safe'] },
      target: { type: 'object', properties: { host: { type: 'string' }, region: { type: 'string' } }, required: ['host'] },
      knobs: { type: 'object', properties: { dry_run: { type: 'boolean' } } },
      choice: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
      fixed: { const: 'x' },
    },
    required: ['app', 'target', 'knobs'],
  });
  assert.equal(schema.$schema, undefined);
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.required, ['app', 'target']);
  assert.deepEqual(schema.properties.times.type, ['integer', 'null']);
  assert.deepEqual(schema.properties.mode, { type: ['string', 'null'], enum: ['fast', 'safe', null] });
  assert.equal(schema.properties.target.additionalProperties, false);
  assert.deepEqual(schema.properties.target.properties.region.type, ['string', 'null']);
  // A required property that admits {} becomes optional with default {} (Letta refuses it).
  assert.deepEqual(schema.properties.knobs.type, ['object', 'null']);
  assert.deepEqual(schema.properties.knobs.default, {});
  assert.deepEqual(schema.properties.choice.anyOf.at(-1), { type: 'null' });
  assert.deepEqual(schema.properties.fixed, { anyOf: [{ const: 'x' }, { type: 'null' }] });
});

test('an empty root object gets properties and no required', () => {
  assert.deepEqual(strictSchema({ type: 'object' , properties: {} }), { type: 'object', properties: {}, additionalProperties: false });
});

test('the caller\'s schema is not changed', () => {
  const input = { type: 'object', properties: { a: { type: 'string' } } };
  strictSchema(input);
  assert.deepEqual(input, { type: 'object', properties: { a: { type: 'string' } } });
});

test('schemas strict clients refuse fail when the tool is defined', () => {
  const refused = [
    [{ type: 'string' }, /root of an input schema/],
    [{ type: 'object', properties: { tags: { type: 'object', additionalProperties: { type: 'string' } } } }, /input\.tags: additionalProperties/],
    [{ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: true }, /additionalProperties must be false/],
    [{ type: 'object', properties: { free: {} } }, /input\.free: say its type/],
    [{ type: 'object', properties: { list: { type: 'array' } } }, /input\.list: say what the list holds/],
    [{ type: 'object', properties: { o: { type: 'object' } } }, /input\.o: list the object's `properties`/],
    [{ type: 'object', properties: { r: { $ref: '#/$defs/R' } } }, /`\$ref` is not allowed/],
    [{ type: 'object', properties: { a: { allOf: [{ type: 'string' }] } } }, /`allOf` is not allowed/],
    [{ type: 'object', properties: {}, required: ['ghost'] }, /"ghost" is not in `properties`/],
  ];
  for (const [input, message] of refused) {
    assert.throws(() => defineTool({ name: 'input', description: 'd', input, run }), (error) => error instanceof SchemaError && message.test(error.message), JSON.stringify(input));
  }
});

test('optional nulls follow the rule the host applies (wit/conformance/optional-nulls.json)', () => {
  const { cases } = JSON.parse(readFileSync(new URL('../../../wit/conformance/optional-nulls.json', import.meta.url), 'utf8'));
  assert.ok(cases.length > 0);
  for (const { name, schema, args, expected } of cases) assert.deepEqual(prepareArgs(args, schema), expected, name);
});

test('absent properties with a default get it', () => {
  const schema = strictSchema({ type: 'object', properties: { n: { type: 'integer', default: 3 }, k: { type: 'object', properties: {} } }, required: ['k'] });
  assert.deepEqual(prepareArgs({ n: null }, schema), { n: 3, k: {} });
});
