// The errors a tool meets and the one rule for turning anything a tool throws into the message
// the model reads: a tool call always ends as a result, never as a trap.

/** A failure the model should read: the call's result is `isError: true` with this message. */
export class ToolError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ToolError';
  }
}

/**
 * A granted command did not run. `kind` is `not-granted`, `argument-refused` or `failed`;
 * `detail` is the host's text (it names the grant to add, or the argument refused).
 */
export class CommandError extends Error {
  constructor(kind, detail) {
    super(`${kind}: ${detail}`);
    this.name = 'CommandError';
    this.kind = kind;
    this.detail = detail;
  }
}

/**
 * An HTTP request got no response: the operator's policy does not grant its origin (the host
 * refuses it and says which rule in the tool error), or the connection failed. `origin` is
 * `scheme://host:port` as requested.
 */
export class HttpError extends Error {
  constructor(origin, message) {
    super(message);
    this.name = 'HttpError';
    this.origin = origin;
  }
}

const MAX_MESSAGE = 2000;

function show(value) {
  if (typeof value === 'string') return value;
  try {
    const text = JSON.stringify(value);
    if (text !== undefined) return text;
  } catch {
    // A cycle or a BigInt: fall through to String().
  }
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** A componentize-js `ComponentError` payload (often a WIT variant `{tag, val}`), in words. */
function showPayload(payload) {
  if (payload !== null && typeof payload === 'object' && 'tag' in payload) {
    return 'val' in payload && payload.val !== undefined ? `${payload.tag}: ${show(payload.val)}` : String(payload.tag);
  }
  return show(payload);
}

/** The message for the model for whatever a tool threw (any value at all). */
export function messageOf(thrown) {
  let message;
  try {
    if (thrown instanceof ToolError) {
      message = thrown.message || 'ToolError';
    } else if (thrown !== null && typeof thrown === 'object' && Object.prototype.hasOwnProperty.call(thrown, 'payload')) {
      // componentize-js throws a ComponentError (its name is plain `Error`) from a WIT import
      // that returned `err`; its payload is the error value.
      message = `ComponentError: ${showPayload(thrown.payload)}`;
    } else if (thrown instanceof Error) {
      message = thrown.message ? `${thrown.name}: ${thrown.message}` : thrown.name;
    } else {
      message = `the tool threw ${thrown === null ? 'null' : typeof thrown}: ${show(thrown)}`;
    }
  } catch {
    message = 'the tool failed with an error that cannot be shown';
  }
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
}
