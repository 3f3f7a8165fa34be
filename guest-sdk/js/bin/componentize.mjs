#!/usr/bin/env node
// Build a plugin's component entry into a sanctum component with componentize-js.
//
//   cp componentize.mjs <toolchain dir>/ && node <toolchain dir>/componentize.mjs \
//        --wit <repo>/wit --root <dir holding the entry and the SDK> <entry.js> <out.wasm>
//
// It runs from a copy inside the pinned toolchain's directory (target/js, beside its
// node_modules) so its bare imports resolve to exactly the packages the lock file pins.
//
// Why not `componentize-js` / `jco componentize` directly: in this toolchain the splicer reads
// the WIT through @bytecodealliance/preview2-shim 0.26, which grants no filesystem by default,
// so both fail to read any file on Linux. Here the shim is given `/` before componentize runs.
// componentize-js maps the working directory to the guest's `/`, so the entry's relative
// imports (the SDK, outside the plugin's directory) resolve when --root contains them all.

import { writeFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { wit: { type: 'string' }, root: { type: 'string' } },
  allowPositionals: true,
});
if (!values.wit || !values.root || positionals.length !== 2) {
  console.error('usage: componentize.mjs --wit DIR --root DIR ENTRY.js OUT.wasm');
  process.exit(2);
}
const [entry, out] = positionals.map((path) => resolve(path));
const root = resolve(values.root);
const wit = resolve(values.wit);

const { _setPreopens } = await import('@bytecodealliance/preview2-shim/filesystem');
_setPreopens({ '/': '/' });
const { componentize } = await import('@bytecodealliance/componentize-js');

process.chdir(root);
const { component } = await componentize({
  sourcePath: relative(root, entry),
  witPath: wit,
  worldName: 'plugin',
  // No `fetch-event`: a plugin serves no incoming HTTP. `http` stays: the global `fetch` over
  // wasi:http/outgoing-handler, which the host links for every plugin.
  disableFeatures: ['fetch-event'],
});
await writeFile(out, component);
