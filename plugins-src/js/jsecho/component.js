// jsecho's component entry (plugins-src/js/build.sh); the tests import ./plugin.js.
import { exportTools } from '../../../guest-sdk/js/src/component.js';
import plugin from './plugin.js';

export const tools = exportTools(plugin);
