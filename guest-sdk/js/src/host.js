// The host's services (log, progress, cancellation, the agent, config, commands, HTTP), called
// through the component's WIT imports inside sanctum and through a stand-in under plain Node,
// so a plugin's own tests run with `node --test`.
//
// This module never imports `sanctum:plugin/*` itself (Node cannot resolve those specifiers):
// the component's entry imports them through ./component.js, which hands them to `bindWit`.

import { CommandError, HttpError } from './errors.js';

let wit = null; // {host, process, config} once bound inside a component

/** Called by ./component.js with the WIT import modules; from then on the host answers. */
export function bindWit(imports) {
  wit = imports;
}

/** True inside a sanctum component, false under plain Node (the stand-in answers). */
export function inComponent() {
  return wit !== null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (value) => (value == null ? new Uint8Array() : typeof value === 'string' ? encoder.encode(value) : new Uint8Array(value));

/** What a granted command produced (`run`). */
export class CommandOutput {
  constructor({ status = null, stdout, stderr, stdoutTruncated = false, stderrTruncated = false, timedOut = false } = {}) {
    this.status = status ?? null; // null when killed by a signal (also on timeout)
    this.stdout = bytes(stdout);
    this.stderr = bytes(stderr);
    this.stdoutTruncated = stdoutTruncated;
    this.stderrTruncated = stderrTruncated;
    this.timedOut = timedOut;
  }

  /** Exited with status 0 within its time limit. */
  get ok() {
    return this.status === 0 && !this.timedOut;
  }

  /** Standard output as text (invalid UTF-8 replaced). */
  text() {
    return decoder.decode(this.stdout);
  }

  /** Standard error as text. */
  errorText() {
    return decoder.decode(this.stderr);
  }
}

/**
 * What the host would answer, for tests outside sanctum. `commands` maps a command name to
 * `(args, stdin) => output` (a CommandOutput or its fields; throw CommandError to refuse); a
 * command not in it is not granted. `httpOrigins` lists the origins `fetch` may reach, as
 * `scheme://host[:port]`; any other is refused, as by the host. Logs and progress are collected.
 */
export class StandIn {
  constructor({ config = {}, agent = null, cancelled = false, commands = {}, httpOrigins = [] } = {}) {
    this.config = config;
    this.agent = agent;
    this.cancelled = cancelled;
    this.commands = commands;
    this.httpOrigins = httpOrigins;
    this.logs = []; // [level, message]
    this.progress = []; // [done, total, message]
  }
}

let standIn = new StandIn();

/** Answer host calls from `stand` (a StandIn or its options) outside sanctum; returns the StandIn. */
export function useStandIn(stand = {}) {
  standIn = stand instanceof StandIn ? stand : new StandIn(stand);
  return standIn;
}

const LEVELS = ['debug', 'info', 'warning', 'error'];

/** A log line for the host's log and the MCP client: level `debug`, `info`, `warning` or `error`. */
export function log(level, message) {
  if (!LEVELS.includes(level)) throw new TypeError(`log level ${JSON.stringify(level)} is not one of ${LEVELS.join(', ')}`);
  if (wit) wit.host.log(level, String(message));
  else standIn.logs.push([level, String(message)]);
}

/** Progress for the MCP client (when it asked for it); `done` should grow with every report. */
export function progress(done, total = null, message = null) {
  if (wit) wit.host.progress(Number(done), total == null ? undefined : Number(total), message ?? undefined);
  else standIn.progress.push([done, total, message]);
}

/** Whether the client cancelled this call: a long tool checks and stops early. */
export function isCancelled() {
  return wit ? wit.host.isCancelled() : Boolean(standIn.cancelled);
}

/** The calling agent as the client said (X-Agent-Id), or null. Advice only, never authority. */
export function agentId() {
  return (wit ? wit.host.agentId() : standIn.agent) ?? null;
}

/** The operator's configuration value `key` for this plugin, or null if unset. */
export function config(key) {
  return (wit ? wit.config.get(key) : standIn.config[key]) ?? null;
}

const RUN_ERRORS = ['not-granted', 'argument-refused', 'failed'];

/**
 * Run the operator's command `command` (a name from the policy, never a path) with `args`
 * appended to its fixed arguments; no shell. `stdin` is a string or bytes. Throws CommandError
 * when it cannot run. Synchronous: the host runs it to the end (or its time limit).
 */
export function run(command, args = [], stdin = null) {
  args = args.map(String);
  if (!wit) {
    const handler = standIn.commands[command];
    if (!handler) throw new CommandError('not-granted', `command ${JSON.stringify(command)} is not granted (stand-in)`);
    const out = handler(args, stdin);
    return out instanceof CommandOutput ? out : new CommandOutput(out);
  }
  let out;
  try {
    out = wit.process.run(command, args, stdin == null ? undefined : bytes(stdin));
  } catch (error) {
    // componentize-js throws a ComponentError whose payload is the `run-error` variant.
    const payload = error?.payload;
    if (payload && RUN_ERRORS.includes(payload.tag)) throw new CommandError(payload.tag, String(payload.val));
    throw error;
  }
  return new CommandOutput(out);
}

const DEFAULT_PORTS = { 'http:': '80', 'https:': '443' };

/** `scheme://host:port` with the port always written, so grants compare exactly. */
export function originOf(url) {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.hostname}:${parsed.port || DEFAULT_PORTS[parsed.protocol] || ''}`;
}

/**
 * `fetch`, with a refusal or a failed connection thrown as HttpError naming the origin (the
 * bare global `fetch` works too, but its errors say little). Inside sanctum it is
 * StarlingMonkey's `fetch` over wasi:http, which the host sends only to origins the operator's
 * policy grants; outside, Node's `fetch`, limited to the stand-in's `httpOrigins`.
 */
export async function fetch(input, init) {
  const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
  let origin;
  try {
    origin = originOf(url);
  } catch {
    throw new HttpError(null, `not a valid absolute URL: ${JSON.stringify(url)}`);
  }
  if (!wit && !standIn.httpOrigins.some((granted) => originOf(granted) === origin)) {
    throw new HttpError(origin, `HTTP request to ${origin} refused: the stand-in grants no such origin (httpOrigins)`);
  }
  try {
    return await globalThis.fetch(input, init);
  } catch (error) {
    if (error?.name === 'AbortError' || error?.name === 'TimeoutError') throw error;
    const why = error?.cause?.message ?? error?.message ?? String(error);
    throw new HttpError(
      origin,
      `HTTP request to ${origin} got no response (${why}): the operator's policy may not grant this ` +
        `origin (sanctum then adds the rule to the tool error), or it could not be reached`,
    );
  }
}
