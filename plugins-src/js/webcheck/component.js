// webcheck's component entry: what componentize-js builds (plugins-src/js/build.sh). Tests
// import ./plugin.js instead, since Node cannot resolve the `sanctum:plugin/*` imports.
import { exportTools } from '../../../guest-sdk/js/src/component.js';
import plugin from './plugin.js';

export const tools = exportTools(plugin);
