// Cloudflare Workers (workerd): the Wasm module is imported as a module, which wrangler and
// other Workers bundlers upload beside the script, and instantiated on import. Workers cannot
// compile Wasm from bytes at run time, so this entry never fetches or reads a file.
import module from './wasm/policy_core_bg.wasm';
import { initSync as initWasm } from './wasm/policy_core.js';
import { markReady } from './lib/engine.js';

initWasm({ module });
markReady();

export { PolicyEngine, PolicyError, PreparedRequest } from './lib/engine.js';

/** Resolves at once: the module is loaded on import. */
export async function init() {}

/** Does nothing: the module is loaded on import. */
export function initSync() {}
