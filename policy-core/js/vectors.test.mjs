// Runs every vector in policy-core/tests/vectors through the wasm-bindgen JS API, as another
// runtime would use it. The package is built by `cargo xtask test` into target/policy-core-js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = process.env.POLICY_CORE_JS ?? join(here, '../../target/policy-core-js/policy_core.js');
const { PolicyEngine } = createRequire(import.meta.url)(pkg);
const dir = join(here, '../tests/vectors');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('there are vectors', () => assert.ok(files.length >= 40, `${files.length} files`));

for (const file of files) {
  const vector = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const document = JSON.stringify(vector.document);
  test(file, () => {
    if (vector.expect_load_errors) {
      assert.throws(() => new PolicyEngine(document), (err) => {
        assert.ok(err instanceof Error);
        for (const { path, contains } of vector.expect_load_errors) {
          const prefix = path === '' ? '' : `${path}: `;
          const line = err.message.split('\n').find((l) => l.startsWith(prefix) && l.includes(contains));
          assert.ok(line, `no error at ${path} containing ${contains} in:\n${err.message}`);
        }
        return true;
      });
      return;
    }
    const engine = new PolicyEngine(document);
    try {
      for (const c of vector.cases) {
        const request = JSON.stringify(c.request);
        if (c.expect_request_error) {
          assert.throws(() => engine.evaluate(request), new RegExp(escape(c.expect_request_error.contains)), c.name);
          continue;
        }
        const verdict = JSON.parse(engine.evaluate(request));
        assert.equal(verdict.outcome, c.expect.outcome, `${c.name}: ${verdict.trace.join(' | ')}`);
        assert.equal(engine.decide(request), c.expect.outcome, `${c.name}: decide() agrees`);
        const prepared = engine.prepare(request);
        assert.equal(engine.decideRequest(prepared), c.expect.outcome, `${c.name}: decideRequest() agrees`);
        prepared.free();
        const policy = verdict.policy === null ? null : (verdict.policy.id ?? verdict.policy.name);
        assert.equal(policy, c.expect.policy, `${c.name}: deciding policy`);
        if ('session_duration' in c.expect) assert.equal(verdict.session_duration, c.expect.session_duration, c.name);
        for (const needle of c.expect.trace_contains ?? []) {
          assert.ok(verdict.trace.some((l) => l.includes(needle)), `${c.name}: trace lacks ${needle}`);
        }
      }
    } finally {
      engine.free();
    }
  });
}

test('errors cross into JavaScript as Error objects with the message', () => {
  assert.throws(() => new PolicyEngine('{"team_domain": 1'), /invalid JSON/);
  const engine = new PolicyEngine(readFileSync(join(here, '../../examples/config.json'), 'utf8'));
  assert.throws(() => engine.evaluate('{"app": 7}'), /app: expected a string/);
  assert.equal(engine.warnings(), '');
  engine.free();
});

function escape(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
