// The policy-core benchmark in Wasm under Node: the same workload as the criterion benchmark
// (examples/workload.rs), through the npm package's API. Run by `cargo xtask bench`, which builds
// the package and writes the workload files first.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPackage, targetDir as target } from './support.mjs';

const { PolicyEngine } = await loadPackage();
const workload = JSON.parse(readFileSync(join(target, 'bench-workload-realistic.json'), 'utf8'));
const large = readFileSync(join(target, 'bench-workload-large.json'), 'utf8');
const document = JSON.stringify(workload.document);
const request = JSON.stringify(workload.request);

function measure(name, iterations, fn) {
  for (let i = 0; i < Math.min(iterations, 1000); i++) fn(); // warm-up
  const samples = [];
  for (let s = 0; s < 7; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    samples.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  samples.sort((a, b) => a - b);
  const median = samples[3];
  const show = median >= 1e6 ? `${(median / 1e6).toFixed(2)} ms` : `${(median / 1e3).toFixed(2)} µs`;
  console.log(`${name.padEnd(58)} ${show} (median of 7 × ${iterations})`);
}

measure('compile realistic (50 apps, 10k-group directory)', 5, () => new PolicyEngine(document).free());
measure('compile 1,000 apps / 10,000 policies', 5, () => new PolicyEngine(large).free());
const engine = new PolicyEngine(document);
if (engine.decide(request) !== 'allow') throw new Error('workload must be allowed');
const prepared = engine.prepare(request);
measure('decide a prepared request (no trace)', 200000, () => engine.decide(prepared));
measure('decide: parse request JSON + decide (no trace)', 20000, () => engine.decide(request));
measure('evaluate: parse request JSON + decide + trace + verdict JSON', 20000, () => engine.evaluateJson(request));
