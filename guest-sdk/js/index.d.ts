// Types of the sanctum JavaScript guest SDK (src/index.js), written by hand: jco's type
// generator is not used. The WIT shapes themselves stay inside src/wit.js and src/component.js.

/** A JSON Schema object (2020-12), as written by hand. */
export type JsonSchema = { [keyword: string]: unknown };

export type RequirementKind = 'command' | 'http-host' | 'directory' | 'env' | 'secret' | 'config';
export type LogLevel = 'debug' | 'info' | 'warning' | 'error';

export interface Annotations {
  readOnly?: boolean | null;
  destructive?: boolean | null;
  idempotent?: boolean | null;
  openWorld?: boolean | null;
}

/** The services a tool's `run` receives as its second argument. */
export interface ToolContext {
  /** The tool's name. */
  tool: string;
  log: typeof log;
  progress: typeof progress;
  isCancelled: typeof isCancelled;
  agentId: typeof agentId;
  config: typeof config;
  run: typeof run;
  fetch: typeof fetch;
}

/** What `run` may return: a string (text), an Output or Block, null/undefined (no content), or any JSON value. */
export type ToolResult = string | Output | Block | null | undefined | unknown;

export interface ToolOptions<Args = any> {
  name: string;
  title?: string | null;
  description: string;
  /** The arguments object's schema; its root must be `{"type": "object", ...}`. */
  input?: JsonSchema;
  /** Schema of structured content, declared only if every successful call returns conforming content. */
  output?: JsonSchema | null;
  annotations?: Annotations;
  run(args: Args, ctx: ToolContext): ToolResult | Promise<ToolResult>;
}

export interface Tool<Args = any> {
  readonly name: string;
  readonly title: string | null;
  readonly description: string;
  /** The strict form of `input`, as the host is told it. */
  readonly inputSchema: JsonSchema;
  readonly outputSchema: JsonSchema | null;
  readonly annotations: Required<{ [K in keyof Annotations]: boolean | null }>;
  readonly run: ToolOptions<Args>['run'];
}

export function defineTool<Args = any>(options: ToolOptions<Args>): Tool<Args>;

export interface PluginOptions {
  name: string;
  version: string;
  description: string;
  requires?: Array<[RequirementKind, string]>;
  tools?: Array<Tool | ToolOptions>;
}

export interface PluginInfo {
  name: string;
  version: string;
  description: string;
  tools: Array<Omit<Tool, 'run'>>;
  requires: Array<[RequirementKind, string]>;
}

export class Plugin {
  constructor(options: PluginOptions);
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly requires: Array<[RequirementKind, string]>;
  readonly tools: Map<string, Tool>;
  add(tool: Tool | ToolOptions): Tool;
  inputSchema(tool: string): JsonSchema | undefined;
  describe(): PluginInfo;
  /** Run a tool as the host does; never rejects. */
  dispatch(name: string, argsJson: string): Promise<{ output: Output } | { error: string }>;
  /** `dispatch`, but a plain outcome (no promise) when the tool's `run` returned a plain value. */
  settle(name: string, argsJson: string): { output: Output } | { error: string } | Promise<{ output: Output } | { error: string }>;
  /** Run a tool as the host does (for tests); rejects with ToolError. */
  call(tool: string, args?: object | string): Promise<Output>;
}

export function definePlugin(options: PluginOptions): Plugin;

export class Block {
  readonly type: 'text' | 'json' | 'image' | 'audio' | 'resource';
  readonly text?: string;
  readonly value?: unknown;
  readonly data?: Uint8Array;
  readonly blob?: Uint8Array;
  readonly mimeType?: string | null;
  readonly uri?: string;
}
export class Output {
  constructor(content?: Array<Block | string | unknown>, structured?: unknown);
  content: Block[];
  structured: unknown;
}
export function text(value: string): Block;
export function json(value: unknown): Block;
export function image(data: Uint8Array | ArrayLike<number>, mimeType: string): Block;
export function audio(data: Uint8Array | ArrayLike<number>, mimeType: string): Block;
export function resource(options: { uri: string; mimeType?: string | null; text?: string; blob?: Uint8Array }): Block;
export function output(content?: Array<Block | string | unknown>, options?: { structured?: unknown }): Output;

export class ToolError extends Error {}
export class CommandError extends Error {
  readonly kind: 'not-granted' | 'argument-refused' | 'failed';
  readonly detail: string;
}
export class HttpError extends Error {
  /** `scheme://host:port`, or null for an invalid URL. */
  readonly origin: string | null;
}
export class SchemaError extends TypeError {}
export function messageOf(thrown: unknown): string;

export class CommandOutput {
  readonly status: number | null;
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
  readonly stdoutTruncated: boolean;
  readonly stderrTruncated: boolean;
  readonly timedOut: boolean;
  readonly ok: boolean;
  text(): string;
  errorText(): string;
}

export interface StandInOptions {
  config?: Record<string, string>;
  agent?: string | null;
  cancelled?: boolean;
  commands?: Record<string, (args: string[], stdin: string | Uint8Array | null) => CommandOutput | Partial<{
    status: number | null; stdout: string | Uint8Array; stderr: string | Uint8Array; stdoutTruncated: boolean; stderrTruncated: boolean; timedOut: boolean;
  }>>;
  /** Origins `fetch` may reach, `scheme://host[:port]`. */
  httpOrigins?: string[];
}
export class StandIn {
  constructor(options?: StandInOptions);
  config: Record<string, string>;
  agent: string | null;
  cancelled: boolean;
  httpOrigins: string[];
  readonly logs: Array<[LogLevel, string]>;
  readonly progress: Array<[number, number | null, string | null]>;
}
export function useStandIn(stand?: StandIn | StandInOptions): StandIn;
export function inComponent(): boolean;

export function log(level: LogLevel, message: string): void;
export function progress(done: number, total?: number | null, message?: string | null): void;
export function isCancelled(): boolean;
export function agentId(): string | null;
export function config(key: string): string | null;
export function run(command: string, args?: string[], stdin?: string | Uint8Array | null): CommandOutput;
export function fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;

export function strictSchema(schema: JsonSchema, where?: string): JsonSchema;
export function nullable(schema: JsonSchema): JsonSchema;
export function prepareArgs<T>(value: T, schema: JsonSchema): T;
