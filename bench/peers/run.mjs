// The Wasm half of the peers benchmark: `node run.mjs DIR CASE` loads DIR/{core,cedar,regorus}
// (wasm-bindgen `--target nodejs` output, one engine each), checks that every engine decides
// every request of CASE as policy-core did natively, measures, and prints a JSON report.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const [dir, casePath] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const testCase = JSON.parse(readFileSync(casePath, 'utf8'));
const quick = testCase.quick;

function median(rounds, iterations, fn) {
  for (let i = 0; i < Math.min(iterations, 100); i++) fn();
  const samples = [];
  for (let s = 0; s < rounds; s++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn();
    samples.push(Number(process.hrtime.bigint() - start) / iterations);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const engines = [
  ['policy-core', 'core', 'core', 'core'],
  ['policy-core, prepared identity', 'core', 'core', 'core', 'PeerIdentity'],
  ['Cedar', 'cedar', 'cedar', 'peer'],
  ['regorus', 'regorus', 'rego', 'peer'],
];
const report = {};
for (const [name, folder, text, form, className = 'Peer'] of engines) {
  const Peer = require(join(dir, folder, 'edge_access_peers_bench.js'))[className];
  const wasm = readFileSync(join(dir, folder, 'edge_access_peers_bench_bg.wasm'));
  const engine = new Peer(testCase.realistic[text]);
  testCase.requests.forEach((request, i) => {
    const got = engine.decideJson(request[form]);
    if (got !== request.expected) {
      throw new Error(`${name} in Wasm decided request ${i} ${got}, policy-core natively ${request.expected}`);
    }
  });
  const workload = testCase.requests[0][form];
  const handle = engine.prepare(workload);
  const rounds = quick ? 1 : 3;
  report[name] = {
    compile: median(rounds, 1, () => new Peer(testCase.realistic[text]).free()),
    compile_large: median(rounds, 1, () => new Peer(testCase.large[text]).free()),
    decide: median(7, 2000, () => engine.decide(handle)),
    json_decide: median(7, 500, () => engine.decideJson(workload)),
    raw: wasm.length,
    gzip: gzipSync(wasm, { level: 9 }).length,
  };
  console.error(`${name}: ${testCase.requests.length} requests agree in Wasm`);
}
process.stdout.write(JSON.stringify(report));
