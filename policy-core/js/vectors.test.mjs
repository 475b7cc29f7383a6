// Runs every vector in policy-core/tests/vectors through the package's JS API, as another
// runtime would use it: documents and requests as objects, and once more as JSON text. The
// package is built by `cargo xtask test` into target/policy-core-js (POLICY_CORE_JS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { here, loadPackage } from './support.mjs';

const { PolicyEngine, PolicyError } = await loadPackage();
const dir = join(here, '../tests/vectors');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('there are vectors', () => assert.ok(files.length >= 40, `${files.length} files`));

for (const file of files) {
  const vector = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  test(file, () => {
    if (vector.expect_load_errors) {
      for (const document of [vector.document, JSON.stringify(vector.document)]) {
        assert.throws(() => new PolicyEngine(document), (err) => {
          assert.ok(err instanceof PolicyError, String(err));
          assert.equal(err.source, 'document');
          for (const { path, contains } of vector.expect_load_errors) {
            const found = err.problems.find((p) => p.path === path && p.message.includes(contains));
            assert.ok(found, `no problem at ${path} containing ${contains} in:\n${err.message}`);
            const line = path === '' ? found.message : `${path}: ${found.message}`;
            assert.ok(err.message.includes(line), `the message lists ${line}`);
          }
          return true;
        });
      }
      return;
    }
    const engine = new PolicyEngine(vector.document);
    const fromText = new PolicyEngine(JSON.stringify(vector.document));
    try {
      for (const c of vector.cases) {
        if (c.expect_request_error) {
          assert.throws(() => engine.evaluate(c.request), (err) => {
            assert.ok(err instanceof PolicyError, `${c.name}: ${err}`);
            assert.equal(err.source, 'request');
            const { path, contains } = c.expect_request_error;
            assert.ok(
              err.problems.some((p) => p.path === path && p.message.includes(contains)),
              `${c.name}: no problem at ${path} containing ${contains} in:\n${err.message}`,
            );
            return true;
          });
          continue;
        }
        const verdict = engine.evaluate(c.request);
        assert.equal(verdict.outcome, c.expect.outcome, `${c.name}: ${verdict.trace.join(' | ')}`);
        assert.deepEqual(fromText.evaluate(JSON.stringify(c.request)), verdict, `${c.name}: text agrees`);
        assert.equal(engine.decide(c.request), c.expect.outcome, `${c.name}: decide() agrees`);
        const prepared = engine.prepare(c.request);
        assert.equal(engine.decide(prepared), c.expect.outcome, `${c.name}: a prepared request agrees`);
        prepared.free();
        const policy = verdict.policy === null ? null : (verdict.policy.id ?? verdict.policy.name);
        assert.equal(policy, c.expect.policy, `${c.name}: deciding policy`);
        if ('session_duration' in c.expect) {
          assert.equal(verdict.session_duration, c.expect.session_duration, c.name);
        }
        for (const needle of c.expect.trace_contains ?? []) {
          assert.ok(verdict.trace.some((l) => l.includes(needle)), `${c.name}: trace lacks ${needle}`);
        }
      }
    } finally {
      engine.free();
      fromText.free();
    }
  });
}
