// webcheck: HTTP health checks of the operator's services, for an agent on call.
// `check_url` checks one URL (status, latency, content type, a body excerpt, optional
// expectations); `check_many` checks several and sums them up. Requests go through `fetch`
// (wasi:http inside sanctum), so only origins the operator's policy grants are reachable; a
// refusal is a tool error that says so, never a trap.

import { HttpError, ToolError, definePlugin, defineTool, json, output, text } from '../../../guest-sdk/js/src/index.js';

const DEFAULT_TIMEOUT_MS = 10000;
const EXCERPT_CHARS = 200;

const url = { type: 'string', description: 'The URL to GET, http:// or https://.', pattern: '^https?://', maxLength: 2000 };
const expectStatus = { type: 'integer', description: 'The status a healthy service answers with (default: any 2xx).', minimum: 100, maximum: 599 };
const timeoutMs = {
  type: 'integer',
  description: 'Give up after this many milliseconds (default: the operator\'s default_timeout_ms, else 10000).',
  minimum: 100,
  maximum: 60000,
};

/** The timeout for this call: the argument, else the operator's config, else the default. */
function timeoutFor(args, ctx) {
  if (args.timeout_ms !== undefined) return args.timeout_ms;
  const configured = Number.parseInt(ctx.config('default_timeout_ms') ?? '', 10);
  return Number.isFinite(configured) && configured > 0 ? configured : DEFAULT_TIMEOUT_MS;
}

/** `promise`, or a rejection after `ms` (AbortController alone may not stop every fetch). */
function withTimeout(promise, ms, controller) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new ToolError(`no complete answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Check one URL; resolves to a report. Throws ToolError when there is no answer at all (refused
 * by the policy, unreachable, timed out); a bad answer is a report with `healthy: false`.
 */
export async function check(target, { expect_status, expect_text, timeout }, ctx) {
  const controller = new AbortController();
  const started = performance.now();
  let response;
  let body;
  try {
    ({ response, body } = await withTimeout(
      (async () => {
        const response = await ctx.fetch(target, { method: 'GET', signal: controller.signal, headers: { 'user-agent': 'sanctum-webcheck/0.1' } });
        return { response, body: await response.text() };
      })(),
      timeout,
      controller,
    ));
  } catch (error) {
    if (error instanceof HttpError) throw new ToolError(error.message);
    if (error instanceof ToolError) throw new ToolError(`${target}: ${error.message}`);
    if (error?.name === 'AbortError') throw new ToolError(`${target}: no complete answer within ${timeout} ms`);
    throw error;
  }
  const latencyMs = Math.round(performance.now() - started);
  const problems = [];
  if (expect_status !== undefined ? response.status !== expect_status : response.status < 200 || response.status > 299) {
    problems.push(`status ${response.status}, expected ${expect_status ?? 'a 2xx'}`);
  }
  if (expect_text !== undefined && !body.includes(expect_text)) problems.push(`the body does not contain ${JSON.stringify(expect_text)}`);
  const excerpt = body.replace(/\s+/g, ' ').trim();
  return {
    url: target,
    healthy: problems.length === 0,
    status: response.status,
    latency_ms: latencyMs,
    content_type: response.headers.get('content-type'),
    body_bytes: new TextEncoder().encode(body).length,
    excerpt: excerpt.length > EXCERPT_CHARS ? `${excerpt.slice(0, EXCERPT_CHARS)}…` : excerpt,
    problems,
  };
}

const line = (report) =>
  `${report.healthy ? 'HEALTHY' : 'UNHEALTHY'} ${report.url}: ${report.status} in ${report.latency_ms} ms` +
  (report.problems.length ? ` (${report.problems.join('; ')})` : '');

export const checkUrl = defineTool({
  name: 'check_url',
  title: 'Check a URL',
  description:
    'GET one URL of a service and report whether it is healthy: status, latency in ms, content type, ' +
    'a short body excerpt. Healthy means a 2xx status (or expect_status) and, if given, expect_text in the body.',
  input: {
    type: 'object',
    properties: {
      url,
      expect_status: expectStatus,
      expect_text: { type: 'string', description: 'Text a healthy answer\'s body contains, e.g. "ok".', maxLength: 200 },
      timeout_ms: timeoutMs,
    },
    required: ['url'],
  },
  annotations: { readOnly: true, idempotent: true, openWorld: true },
  async run(args, ctx) {
    const report = await check(args.url, { ...args, timeout: timeoutFor(args, ctx) }, ctx);
    return output([text(line(report)), json(report)]);
  },
});

export const checkMany = defineTool({
  name: 'check_many',
  title: 'Check several URLs',
  description:
    'GET several URLs one after another and sum up which are healthy (2xx, or expect_status). ' +
    'A URL that gives no answer (refused by policy, unreachable, timed out) counts as unhealthy.',
  input: {
    type: 'object',
    properties: {
      urls: { type: 'array', items: url, minItems: 1, maxItems: 20, description: 'The URLs to check, in order.' },
      expect_status: expectStatus,
      timeout_ms: timeoutMs,
    },
    required: ['urls'],
  },
  annotations: { readOnly: true, idempotent: true, openWorld: true },
  async run(args, ctx) {
    const timeout = timeoutFor(args, ctx);
    const results = [];
    for (const [index, target] of args.urls.entries()) {
      if (ctx.isCancelled()) throw new ToolError(`cancelled after ${index} of ${args.urls.length} URLs`);
      try {
        results.push(await check(target, { expect_status: args.expect_status, timeout }, ctx));
      } catch (error) {
        if (!(error instanceof ToolError)) throw error;
        ctx.log('warning', error.message);
        results.push({ url: target, healthy: false, status: null, error: error.message });
      }
      ctx.progress(index + 1, args.urls.length, target);
    }
    const healthy = results.filter((report) => report.healthy).length;
    const summary = { total: results.length, healthy, unhealthy: results.length - healthy, results };
    const lines = results.map((report) => (report.error ? `UNHEALTHY ${report.error}` : line(report)));
    return output([text([`${healthy} of ${results.length} healthy`, ...lines].join('\n')), json(summary)]);
  },
});

export default definePlugin({
  name: 'webcheck',
  version: '0.1.0',
  description: 'HTTP health checks of the services the operator lets it reach: status, latency, content, expectations.',
  requires: [['config', 'default_timeout_ms']],
  tools: [checkUrl, checkMany],
});
