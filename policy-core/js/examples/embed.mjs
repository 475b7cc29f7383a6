// The JavaScript example of policy-core/README.md ("Embedding"): embed.test.mjs installs the
// packed tarball into a scratch folder, copies this file there and runs it with
// examples/config.json and examples/request.json. The README's block is the region between the
// README markers (abi/tests/readme.rs checks that they match).
// README: begin js
import { readFileSync } from 'node:fs';
import { PolicyEngine, PolicyError } from '@edge-access/policy-core';

const [configFile, requestFile] = process.argv.slice(2);
let engine;
try {
  engine = new PolicyEngine(readFileSync(configFile, 'utf8')); // JSON text or an object
} catch (error) {
  if (!(error instanceof PolicyError)) throw error; // a TypeError: not JSON-shaped input
  for (const p of error.problems) console.error(`${p.path}: ${p.message}`);
  process.exit(2);
}
const request = JSON.parse(readFileSync(requestFile, 'utf8'));
const verdict = engine.evaluate(request); // with the trace; engine.decide(request) → outcome only
console.log(verdict.outcome, verdict.policy?.id); // allow engineers
console.log(verdict.trace.at(-1)); // why, for a person
engine.free(); // the Wasm memory behind the engine
// README: end
