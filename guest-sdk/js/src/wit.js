// The SDK's plain values in the shapes componentize-js 0.23 passes across the WIT boundary:
// records as camelCase objects, variants as {tag, val}, options as a value or undefined.
// Pure functions, so they are tested under Node too.

const none = (value) => (value === null || value === undefined ? undefined : value);

/** `describe()`'s plugin-info. */
export function witPluginInfo(info) {
  return {
    name: info.name,
    version: info.version,
    description: info.description,
    tools: info.tools.map((tool) => ({
      name: tool.name,
      title: none(tool.title),
      description: tool.description,
      inputSchema: JSON.stringify(tool.inputSchema),
      outputSchema: tool.outputSchema == null ? undefined : JSON.stringify(tool.outputSchema),
      annotations: {
        readOnly: none(tool.annotations.readOnly),
        destructive: none(tool.annotations.destructive),
        idempotent: none(tool.annotations.idempotent),
        openWorld: none(tool.annotations.openWorld),
      },
    })),
    requirements: info.requires.map(([kind, value]) => ({ tag: kind, val: value })),
  };
}

function witBlock(block) {
  switch (block.type) {
    case 'text':
      return { tag: 'text', val: block.text };
    case 'json':
      return { tag: 'json', val: JSON.stringify(block.value) ?? 'null' };
    case 'image':
    case 'audio':
      return { tag: block.type, val: { data: block.data, mimeType: block.mimeType } };
    case 'resource':
      return {
        tag: 'resource',
        val: {
          uri: block.uri,
          mimeType: none(block.mimeType),
          contents: block.blob !== undefined ? { tag: 'blob', val: block.blob } : { tag: 'text', val: block.text },
        },
      };
    default:
      throw new TypeError(`unknown content block type ${JSON.stringify(block.type)}`);
  }
}

/** `call()`'s tool-output. */
export function witToolOutput(output) {
  return {
    content: output.content.map(witBlock),
    structured: output.structured === undefined ? undefined : JSON.stringify(output.structured),
  };
}
