// A tool's result: what `run` may return and the one form the SDK works with afterwards.
// A string becomes a text block; an Output or a block is taken as it is; anything else is a
// JSON block. Blocks are class instances so a tool can return plain data shaped like one.

/** One block of a result (make them with text(), json(), image(), audio(), resource()). */
export class Block {
  constructor(fields) {
    Object.assign(this, fields);
  }
}

/** Plain text for the model. */
export const text = (value) => new Block({ type: 'text', text: String(value) });

/** A JSON value, sent to clients as a text block. */
export const json = (value) => new Block({ type: 'json', value });

/** An image: bytes (Uint8Array) and a media type such as `image/png`. */
export const image = (data, mimeType) => new Block({ type: 'image', data: new Uint8Array(data), mimeType });

/** Audio: bytes and a media type such as `audio/wav`. */
export const audio = (data, mimeType) => new Block({ type: 'audio', data: new Uint8Array(data), mimeType });

/** An embedded resource: `{uri, mimeType?, text}` or `{uri, mimeType?, blob}` (bytes). */
export function resource({ uri, mimeType = null, text: body, blob }) {
  if ((body === undefined) === (blob === undefined)) throw new TypeError('resource(): give exactly one of `text` and `blob`');
  return new Block({ type: 'resource', uri, mimeType, ...(body !== undefined ? { text: String(body) } : { blob: new Uint8Array(blob) }) });
}

/** A whole result: blocks in order and, optionally, structured content (any JSON value). */
export class Output {
  constructor(content = [], structured = undefined) {
    this.content = content.map(toBlock);
    this.structured = structured;
  }
}

/** `output([blocks...], {structured})`: several blocks and/or structured content. */
export const output = (content = [], { structured } = {}) => new Output(content, structured);

function toBlock(item) {
  if (item instanceof Block) return item;
  return typeof item === 'string' ? text(item) : json(item);
}

/** What a tool's `run` returned, as an Output. */
export function toOutput(result) {
  if (result instanceof Output) return result;
  if (result === undefined || result === null) return new Output([]);
  return new Output([toBlock(result)]);
}

