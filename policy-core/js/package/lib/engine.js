// The package's API over the Wasm module: documents and requests as objects or JSON text in,
// verdicts as objects out, wrong input as a TypeError naming its path, problems as a
// PolicyError listing each one. Every entry point (node.js, browser.js, workerd.js) exports
// this module once it has instantiated the Wasm module.
import * as wasm from '../wasm/policy_core.js';

let ready = false;

/** Called by the entry point once the Wasm module is instantiated. */
export function markReady() {
  ready = true;
}

/** Whether the Wasm module is instantiated (see `init`). */
export function isReady() {
  return ready;
}

/**
 * A document that does not load, a request that does not load, or an evaluation stopped by a
 * work limit. `problems` lists each problem with its JSON path.
 */
export class PolicyError extends Error {
  constructor(message, source, problems, options) {
    super(message, options);
    this.name = 'PolicyError';
    /** `document`, `request` or `evaluation`. */
    this.source = source;
    /** `{ path, message }` for each problem (none for `evaluation`). */
    this.problems = problems;
  }
}

const preparedRequests = new WeakMap();

/**
 * A request's JSON text as UTF-8 bytes for the Wasm module: `TextEncoder` writes them natively,
 * and the module copies them in one block (a string would be copied by a JavaScript loop over
 * its characters, which costs more than parsing and deciding). Lone surrogates become U+FFFD,
 * as in that copy.
 */
const encoder = new TextEncoder();
function utf8(text) {
  return encoder.encode(text);
}

/** A request parsed once by `PolicyEngine.prepare`, to decide it many times. */
export class PreparedRequest {
  constructor() {
    throw new TypeError('PreparedRequest: use `engine.prepare(request)`');
  }

  /** Releases the request's Wasm memory (also done when it is garbage-collected). */
  free() {
    const raw = preparedRequests.get(this);
    preparedRequests.delete(this);
    raw?.free();
  }
}
addDispose(PreparedRequest);

/** A compiled configuration document: compile once, decide many requests. */
export class PolicyEngine {
  #engine;

  /**
   * Compiles `document`, a configuration object or its JSON text.
   * Throws a `TypeError` when it is neither (or holds values JSON cannot carry), and a
   * `PolicyError` listing every problem when it does not load.
   */
  constructor(document) {
    checkReady();
    const text = jsonText(document, 'the document');
    try {
      this.#engine = new wasm.PolicyEngine(text);
    } catch (cause) {
      throw problemError('document', cause);
    }
  }

  /** The verdict on `request` (an object or JSON text): outcome, app, policy, trace. */
  evaluate(request) {
    return JSON.parse(this.evaluateJson(request));
  }

  /** `evaluate` with the verdict as JSON text (for hosts that pass it on as it is). */
  evaluateJson(request) {
    const engine = this.#live();
    const text = jsonText(request, 'the request');
    try {
      return engine.evaluateUtf8(utf8(text));
    } catch (cause) {
      throw problemError('request', cause);
    }
  }

  /** The outcome alone (`allow`, `block`, …), without building a trace: the fast path. */
  decide(request) {
    const engine = this.#live();
    if (request instanceof PreparedRequest) {
      const raw = preparedRequests.get(request);
      if (raw === undefined) throw new Error('PolicyEngine.decide: the prepared request was freed');
      try {
        return engine.decideRequest(raw);
      } catch (cause) {
        throw problemError('request', cause);
      }
    }
    const text = jsonText(request, 'the request');
    try {
      return engine.decideUtf8(utf8(text));
    } catch (cause) {
      throw problemError('request', cause);
    }
  }

  /** Parses `request` once, for deciding it many times (or against several engines). */
  prepare(request) {
    const engine = this.#live();
    const text = jsonText(request, 'the request');
    let raw;
    try {
      raw = engine.prepareUtf8(utf8(text));
    } catch (cause) {
      throw problemError('request', cause);
    }
    const prepared = Object.create(PreparedRequest.prototype);
    preparedRequests.set(prepared, raw);
    return prepared;
  }

  /** Risky but valid parts of the document: `{ path, message }` for each. */
  warnings() {
    return JSON.parse(this.#live().warnings());
  }

  /** Releases the engine's Wasm memory (also done when it is garbage-collected). */
  free() {
    const engine = this.#engine;
    this.#engine = undefined;
    engine?.free();
  }

  #live() {
    if (this.#engine === undefined) throw new Error('PolicyEngine: the engine was freed');
    return this.#engine;
  }
}
addDispose(PolicyEngine);

function addDispose(cls) {
  if (typeof Symbol.dispose === 'symbol') cls.prototype[Symbol.dispose] = cls.prototype.free;
}

function checkReady() {
  if (!ready) {
    throw new Error(
      '@edge-access/policy-core: the Wasm module is not loaded yet; `await init()` first',
    );
  }
}

/**
 * The error for a document or request that did not load (the Wasm module's message is then a
 * JSON array of `{ path, message }`) or an evaluation stopped by a work limit (plain text).
 */
function problemError(source, cause) {
  const passThrough =
    !(cause instanceof Error) || cause instanceof TypeError || cause instanceof WebAssembly.RuntimeError;
  if (passThrough) return cause;
  if (!cause.message.startsWith('[')) {
    return new PolicyError(cause.message, 'evaluation', [], { cause });
  }
  const problems = JSON.parse(cause.message);
  const lines = problems.map((p) => (p.path === '' ? p.message : `${p.path}: ${p.message}`));
  return new PolicyError(`the ${source} does not load:\n  ${lines.join('\n  ')}`, source, problems);
}

/** serde_json's recursion limit: deeper JSON does not load anyway. */
const MAX_DEPTH = 128;

/**
 * `value` as JSON text: a string as it is, a plain object serialised. Anything JSON cannot
 * carry exactly (functions, symbols, bigints, non-finite numbers, class instances such as
 * `Date` or `Map`, cycles, holes, lone surrogates) is a `TypeError` naming its path, rather
 * than something `JSON.stringify` would drop or change. `undefined` object properties are
 * left out, as `JSON.stringify` does and as the loader reads `null`: absent.
 */
export function jsonText(value, what) {
  if (typeof value === 'string') return value;
  if (!isPlainObject(value)) {
    throw typeError(`${what} must be an object or JSON text, found ${describe(value)}`, '');
  }
  const out = [];
  write(value, [], out, new Set(), what);
  return out.join('');
}

function write(value, path, out, ancestors, what) {
  switch (typeof value) {
    case 'string':
      if (typeof value.isWellFormed === 'function' && !value.isWellFormed()) {
        fail(what, path, 'a string with a lone surrogate (not Unicode text)');
      }
      out.push(JSON.stringify(value));
      return;
    case 'number':
      if (!Number.isFinite(value)) fail(what, path, String(value));
      out.push(JSON.stringify(value));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'object':
      if (value === null) {
        out.push('null');
        return;
      }
      break;
    default:
      fail(what, path, describe(value));
  }
  if (ancestors.has(value)) fail(what, path, 'a cycle (an object inside itself)');
  if (path.length >= MAX_DEPTH) fail(what, path, `nesting deeper than ${MAX_DEPTH} levels`);
  ancestors.add(value);
  if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      path.push(i);
      const item = value[i];
      if (item === undefined) fail(what, path, i in value ? 'undefined' : 'a hole');
      write(item, path, out, ancestors, what);
      path.pop();
    }
    out.push(']');
  } else if (isPlainObject(value)) {
    out.push('{');
    let first = true;
    for (const key of Object.keys(value)) {
      const item = value[key];
      if (item === undefined) continue;
      if (!first) out.push(',');
      first = false;
      out.push(JSON.stringify(key), ':');
      path.push(key);
      write(item, path, out, ancestors, what);
      path.pop();
    }
    out.push('}');
  } else {
    fail(what, path, describe(value));
  }
  ancestors.delete(value);
}

/** An object literal, `JSON.parse` result or `Object.create(null)`, from any realm. */
function isPlainObject(value) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function describe(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    case 'bigint':
      return 'a bigint';
    case 'number':
      return 'a number';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'a boolean';
    default: {
      const name = Object.getPrototypeOf(value)?.constructor?.name;
      return name ? `a ${name}` : 'an object';
    }
  }
}

/** A path in the loader's spelling: `apps[0].policies[1].include`. */
function pathText(path) {
  let text = '';
  for (const step of path) {
    if (typeof step === 'number') text += `[${step}]`;
    else text += text === '' ? step : `.${step}`;
  }
  return text;
}

function fail(what, path, found) {
  const at = pathText(path);
  throw typeError(`${what}: ${at}: expected a JSON value, found ${found}`, at);
}

function typeError(message, path) {
  const error = new TypeError(message);
  error.path = path;
  return error;
}
