// Browsers and bundlers: the Wasm module is fetched by URL (next to this package's
// `wasm/policy_core.js`, found through `import.meta.url`, which Vite, webpack and Parcel
// follow) or given to `init` / `initSync`. Nothing reads files.
import initWasm, { initSync as initWasmSync } from './wasm/policy_core.js';
import { isReady, markReady } from './lib/engine.js';

export { PolicyEngine, PolicyError, PreparedRequest } from './lib/engine.js';

/**
 * Loads the Wasm module: from `input` (a URL, a `Response`, its bytes or a compiled
 * `WebAssembly.Module`), else from `policy_core_bg.wasm` beside the package's glue.
 * Call it once before anything else; later calls resolve at once.
 */
export async function init(input) {
  if (isReady()) return;
  await initWasm(input === undefined ? undefined : { module_or_path: input });
  markReady();
}

/** Loads the Wasm module from its bytes or a compiled `WebAssembly.Module`, synchronously. */
export function initSync(module) {
  if (isReady()) return;
  initWasmSync({ module });
  markReady();
}
