// Node (and Deno, Bun): the Wasm module is read from the package and instantiated on import,
// so the API is ready at once; `init()` is there for code shared with browsers.
import { readFileSync } from 'node:fs';
import { initSync as initWasm } from './wasm/policy_core.js';
import { markReady } from './lib/engine.js';

initWasm({ module: readFileSync(new URL('./wasm/policy_core_bg.wasm', import.meta.url)) });
markReady();

export { PolicyEngine, PolicyError, PreparedRequest } from './lib/engine.js';

/** Resolves at once: the module is loaded on import. */
export async function init() {}

/** Does nothing: the module is loaded on import. */
export function initSync() {}
