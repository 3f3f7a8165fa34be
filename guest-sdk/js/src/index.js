// Write sanctum plugins in JavaScript: a tool is a JSON Schema and an (async) function.
//
//   import { definePlugin, defineTool, ToolError } from '<sdk>/src/index.js';
//
//   const greet = defineTool({
//     name: 'greet',
//     description: 'Greet someone by name.',
//     input: { type: 'object', properties: { name: { type: 'string', maxLength: 64 } }, required: ['name'] },
//     annotations: { readOnly: true },
//     run: ({ name }) => { if (name === 'nobody') throw new ToolError('nobody cannot be greeted'); return `Hello, ${name}!`; },
//   });
//   export default definePlugin({ name: 'greeter', version: '0.1.0', description: 'Greets people.', tools: [greet] });
//
// This module owns the plugin and tool definitions and the call path (`dispatch`) the host and
// the tests share. Everything a tool throws becomes a tool error, never a trap.

import { messageOf, ToolError } from './errors.js';
import * as hostServices from './host.js';
import { toOutput } from './output.js';
import { prepareArgs, strictSchema } from './schema.js';

export { CommandError, HttpError, ToolError, messageOf } from './errors.js';
export { CommandOutput, StandIn, agentId, config, fetch, inComponent, isCancelled, log, progress, run, useStandIn } from './host.js';
export { Block, Output, audio, image, json, output, resource, text } from './output.js';
export { SchemaError, nullable, prepareArgs, strictSchema } from './schema.js';

const NAME = /^[a-z][a-z0-9_]*$/;
const REQUIREMENTS = ['command', 'http-host', 'directory', 'env', 'secret', 'config'];
const ANNOTATIONS = ['readOnly', 'destructive', 'idempotent', 'openWorld'];

function checkName(name, what) {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new TypeError(`${what} name ${JSON.stringify(name)}: lowercase ASCII letters, digits and '_', starting with a letter`);
  }
}

/**
 * A tool: `name`, `description` (what the model reads), `input` (a JSON Schema of the arguments
 * object, made strict and checked now, so a schema strict clients would refuse fails in the
 * plugin's own tests), optional `title`, `output` (a JSON Schema of structured content),
 * `annotations` ({readOnly, destructive, idempotent, openWorld}) and `run(args, ctx)`.
 */
export function defineTool({ name, title = null, description, input, output = null, annotations = {}, run }) {
  checkName(name, 'tool');
  if (typeof description !== 'string' || !description.trim()) {
    throw new TypeError(`tool ${name}: give it a description: it is what the model reads`);
  }
  if (typeof run !== 'function') throw new TypeError(`tool ${name}: \`run\` must be a function (args, ctx) => result`);
  for (const key of Object.keys(annotations)) {
    if (!ANNOTATIONS.includes(key)) throw new TypeError(`tool ${name}: unknown annotation ${key} (known: ${ANNOTATIONS.join(', ')})`);
  }
  return Object.freeze({
    name,
    title,
    description,
    inputSchema: strictSchema(input ?? { type: 'object', properties: {} }, name),
    outputSchema: output,
    annotations: Object.fromEntries(ANNOTATIONS.map((key) => [key, annotations[key] ?? null])),
    run,
  });
}

/** The services a tool's `run` gets as its second argument (the same as the module exports). */
function contextFor(tool) {
  const { log, progress, isCancelled, agentId, config, run, fetch } = hostServices;
  return { tool, log, progress, isCancelled, agentId, config, run, fetch };
}

/** A plugin: its name (its file is `<name>.wasm`), version, description, requirements and tools. */
export class Plugin {
  constructor({ name, version, description, requires = [], tools = [] }) {
    checkName(name, 'plugin');
    if (typeof version !== 'string' || typeof description !== 'string') throw new TypeError('a plugin needs a version and a description');
    for (const requirement of requires) {
      if (!Array.isArray(requirement) || !REQUIREMENTS.includes(requirement[0]) || typeof requirement[1] !== 'string') {
        throw new TypeError(`requirement ${JSON.stringify(requirement)}: write [kind, value] with kind one of ${REQUIREMENTS.join(', ')}`);
      }
    }
    this.name = name;
    this.version = version;
    this.description = description;
    this.requires = requires.map(([kind, value]) => [kind, value]);
    this.tools = new Map();
    tools.forEach((tool) => this.add(tool));
  }

  /** Add a tool made by defineTool (or its options). */
  add(tool) {
    const defined = Object.isFrozen(tool) && 'inputSchema' in tool ? tool : defineTool(tool);
    if (this.tools.has(defined.name)) throw new TypeError(`tool ${defined.name} is defined twice`);
    this.tools.set(defined.name, defined);
    return defined;
  }

  /** The input schema of `tool`, as the host is told it. */
  inputSchema(tool) {
    return this.tools.get(tool)?.inputSchema;
  }

  /** Who the plugin is and what it offers (plain values; ./wit.js makes the WIT form). */
  describe() {
    return {
      name: this.name,
      version: this.version,
      description: this.description,
      tools: [...this.tools.values()].map(({ run, ...tool }) => tool),
      requires: this.requires,
    };
  }

  /**
   * Run a tool as the host asks: JSON text in; `{output}` or `{error: message}` out. Never
   * throws, whatever the tool does.
   */
  async dispatch(name, argsJson) {
    return this.settle(name, argsJson);
  }

  /**
   * `dispatch` without the promise when the tool's `run` returns a plain value: the component
   * answers such a call without a turn of the event loop (see ./component.js). Never throws.
   */
  settle(name, argsJson) {
    const tool = this.tools.get(name);
    if (!tool) return { error: `unknown tool ${JSON.stringify(name)}` };
    let result;
    try {
      const raw = JSON.parse(argsJson);
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { error: 'the arguments must be a JSON object' };
      result = tool.run(prepareArgs(raw, tool.inputSchema), contextFor(name));
    } catch (thrown) {
      return failed(thrown);
    }
    if (isThenable(result)) return Promise.resolve(result).then(outcomeOf, failed);
    return outcomeOf(result);
  }

  /**
   * Run `tool` with `args` (an object or JSON text) the way the host does, for tests outside
   * sanctum. Resolves to the Output; rejects with ToolError carrying the model's message.
   */
  async call(tool, args = {}) {
    const outcome = await this.dispatch(tool, typeof args === 'string' ? args : JSON.stringify(args));
    if ('error' in outcome) throw new ToolError(outcome.error);
    return outcome.output;
  }
}

function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function';
}

function outcomeOf(result) {
  try {
    return { output: toOutput(result) };
  } catch (thrown) {
    return failed(thrown);
  }
}

const failed = (thrown) => ({ error: messageOf(thrown) });

/** `new Plugin(options)`: `{name, version, description, requires: [[kind, value]...], tools: [...]}`. */
export const definePlugin = (options) => new Plugin(options);
