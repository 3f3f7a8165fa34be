// The component's side of the SDK: binds sanctum's WIT imports and builds the `tools` export.
// Only a component entry imports this module (componentize-js resolves `sanctum:plugin/*`);
// Node cannot, so plugins and their tests import ./index.js instead. An entry is three lines:
//
//   import { exportTools } from '<sdk>/src/component.js';
//   import plugin from './plugin.js';
//   export const tools = exportTools(plugin);

import * as config from 'sanctum:plugin/config@0.2.0';
import * as host from 'sanctum:plugin/host@0.2.0';
import * as process from 'sanctum:plugin/process@0.2.0';

import { messageOf } from './errors.js';
import { bindWit } from './host.js';
import { witPluginInfo, witToolOutput } from './wit.js';

/** The `sanctum:plugin/tools` export for `plugin`. */
export function exportTools(plugin) {
  bindWit({ config, host, process });
  return {
    describe() {
      return witPluginInfo(plugin.describe());
    },
    // Must never throw: componentize-js turns a thrown Error into a trap (it takes only a
    // ComponentError's payload as the `err` value), so both arms are returned explicitly. A
    // synchronous tool is answered synchronously: a promise costs the call a turn of the event
    // loop, about 30 of the ~380 µs an echo spends in the guest (docs/benchmarks.md).
    call(name, argsJson) {
      let outcome;
      try {
        outcome = plugin.settle(name, argsJson);
      } catch (thrown) {
        return witErr(thrown);
      }
      if (outcome instanceof Promise) return outcome.then(witResult, witErr);
      return witResult(outcome);
    },
  };
}

function witResult(outcome) {
  if ('error' in outcome) return { tag: 'err', val: { message: outcome.error } };
  try {
    return { tag: 'ok', val: witToolOutput(outcome.output) };
  } catch (thrown) {
    return witErr(thrown);
  }
}

function witErr(thrown) {
  return { tag: 'err', val: { message: messageOf(thrown) } };
}
