// The project's policy vectors (policy-core/tests/vectors) run as `edge-access policy test`
// runs them — compile each document, decide each case, check outcome, deciding policy, session
// and trace — but in Wasm, through the npm package in Node. `cargo xtask bench` runs it after
// building the package and prints cases/s beside the native command's; nothing asserts a time.
// Prints one JSON object: cases, the median time of one pass over every file, and failures.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { here, loadPackage } from './support.mjs';

const loadStarted = process.hrtime.bigint();
const { PolicyEngine } = await loadPackage();
const loadMs = Number(process.hrtime.bigint() - loadStarted) / 1e6;
const dir = join(here, '../tests/vectors');
const vectors = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => [f, readFileSync(join(dir, f), 'utf8')]);

/** One pass, as the CLI does it: test files read as text, parsed, run. */
function pass() {
  let cases = 0;
  const failures = [];
  for (const [file, text] of vectors) {
    const vector = JSON.parse(text);
    if (vector.expect_load_errors) {
      cases += 1;
      try {
        new PolicyEngine(vector.document).free();
        failures.push(`${file}: the document loaded`);
      } catch (err) {
        for (const { path, contains } of vector.expect_load_errors) {
          if (!err.problems?.some((p) => p.path === path && p.message.includes(contains))) {
            failures.push(`${file}: no problem at ${path} containing ${contains}`);
          }
        }
      }
      continue;
    }
    const engine = new PolicyEngine(vector.document);
    for (const c of vector.cases) {
      cases += 1;
      if (c.expect_request_error) {
        try {
          engine.evaluate(c.request);
          failures.push(`${file} / ${c.name}: the request loaded`);
        } catch (err) {
          const { path, contains } = c.expect_request_error;
          if (!err.problems?.some((p) => p.path === path && p.message.includes(contains))) {
            failures.push(`${file} / ${c.name}: no problem at ${path} containing ${contains}`);
          }
        }
        continue;
      }
      const verdict = engine.evaluate(c.request);
      const policy = verdict.policy === null ? null : (verdict.policy.id ?? verdict.policy.name);
      const wrong =
        verdict.outcome !== c.expect.outcome ||
        ('policy' in c.expect && policy !== c.expect.policy) ||
        ('session_duration' in c.expect && verdict.session_duration !== c.expect.session_duration) ||
        (c.expect.trace_contains ?? []).some((n) => !verdict.trace.some((l) => l.includes(n)));
      if (wrong) failures.push(`${file} / ${c.name}: ${verdict.outcome}`);
    }
    engine.free();
  }
  return { cases, failures };
}

const first = pass();
const samples = [];
for (let i = 0; i < 7; i++) {
  const started = process.hrtime.bigint();
  pass();
  samples.push(Number(process.hrtime.bigint() - started) / 1e6);
}
samples.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    files: vectors.length,
    cases: first.cases,
    failures: first.failures,
    package_load_ms: loadMs,
    pass_ms: samples[3],
  }),
);
