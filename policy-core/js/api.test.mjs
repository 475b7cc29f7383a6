// The package's JS API: objects and JSON text in, objects out; wrong input is a TypeError
// naming its path, a document or request that does not load is a PolicyError listing every
// problem, and nothing a caller passes traps the Wasm instance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadPackage, packageDir, readJson } from './support.mjs';

const { PolicyEngine, PolicyError, PreparedRequest, init, initSync } = await loadPackage();
const config = readJson('examples', 'config.json');
const request = readJson('examples', 'request.json');

test('objects and JSON text in, a verdict object out', () => {
  const engine = new PolicyEngine(config);
  const verdict = engine.evaluate(request);
  assert.equal(verdict.outcome, 'allow');
  assert.deepEqual(verdict.policy, { id: 'engineers', name: 'Engineers with MFA', precedence: 2 });
  assert.equal(verdict.session_duration, '8h');
  assert.ok(verdict.trace.length > 0);
  const fromText = new PolicyEngine(JSON.stringify(config));
  assert.deepEqual(fromText.evaluate(JSON.stringify(request)), verdict);
  assert.deepEqual(JSON.parse(engine.evaluateJson(request)), verdict);
  assert.equal(engine.decide(request), 'allow');
  assert.equal(engine.decide(JSON.stringify(request)), 'allow');
  assert.deepEqual(engine.warnings(), []);
  engine.free();
  fromText.free();
});

test('init and initSync resolve at once in Node', async () => {
  await init();
  initSync();
});

test('undefined properties are absent, as null is', () => {
  const document = { ...config, service_tokens: undefined };
  document.apps = config.apps.map((app) => ({ ...app, allowed_idps: null, custom_deny_url: undefined }));
  const engine = new PolicyEngine(document);
  const verdict = engine.evaluate({ ...request, mtls: undefined, service_token: null });
  assert.equal(verdict.outcome, 'allow');
  engine.free();
});

const badValues = [
  ['a function', () => {}, 'a function'],
  ['a symbol', Symbol('x'), 'a symbol'],
  ['a bigint', 10n, 'a bigint'],
  ['NaN', Number.NaN, 'NaN'],
  ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
  ['a Date', new Date(0), 'a Date'],
  ['a Map', new Map(), 'a Map'],
  ['a class instance', new (class Rules {})(), 'a Rules'],
  ['a lone surrogate', 'ada\ud800@example.com', 'lone surrogate'],
];

for (const [name, value, found] of badValues) {
  test(`${name} in a document is a TypeError naming its path`, () => {
    const document = structuredClone(config);
    document.policies[0].require[0] = { auth_method: { auth_method: value } };
    assert.throws(
      () => new PolicyEngine(document),
      (err) => {
        assert.ok(err instanceof TypeError, String(err));
        assert.equal(err.path, 'policies[0].require[0].auth_method.auth_method');
        assert.match(err.message, /^the document: policies\[0\]\.require\[0\]\.auth_method\.auth_method: /);
        assert.ok(err.message.includes(found), err.message);
        return true;
      },
    );
  });
}

test('undefined and holes in arrays, cycles and deep nesting are TypeErrors', () => {
  const engine = new PolicyEngine(config);
  const cases = [
    [{ app: 'a.example.com/', identity: { groups: [undefined] } }, 'identity.groups[0]', 'undefined'],
    // eslint-disable-next-line no-sparse-arrays
    [{ app: 'a.example.com/', identity: { amr: ['pwd', , 'mfa'] } }, 'identity.amr[1]', 'a hole'],
  ];
  const cyclic = { app: 'a.example.com/', identity: { claims: {} } };
  cyclic.identity.claims.self = cyclic;
  cases.push([cyclic, 'identity.claims.self', 'a cycle']);
  let deep = {};
  const root = { app: 'a.example.com/', identity: { claims: { deep } } };
  for (let i = 0; i < 200; i++) deep = deep.next = {};
  cases.push([root, null, 'nesting deeper than 128']);
  for (const [value, path, found] of cases) {
    assert.throws(
      () => engine.evaluate(value),
      (err) => {
        assert.ok(err instanceof TypeError, String(err));
        if (path !== null) assert.equal(err.path, path);
        assert.ok(err.message.startsWith('the request: '), err.message);
        assert.ok(err.message.includes(found), err.message);
        return true;
      },
    );
  }
  assert.equal(engine.decide(request), 'allow', 'the engine still works');
  engine.free();
});

test('a document or request that is not an object or text is a TypeError', () => {
  for (const value of [undefined, null, 42, true, [config], () => config]) {
    assert.throws(() => new PolicyEngine(value), (err) => {
      assert.ok(err instanceof TypeError, String(err));
      assert.match(err.message, /^the document must be an object or JSON text, found /);
      assert.equal(err.path, '');
      return true;
    });
  }
  const engine = new PolicyEngine(config);
  for (const value of [undefined, null, 7, [request]]) {
    for (const method of ['evaluate', 'evaluateJson', 'decide', 'prepare']) {
      assert.throws(() => engine[method](value), TypeError, `${method}(${String(value)})`);
    }
  }
  assert.equal(engine.decide(request), 'allow');
  engine.free();
});

test('a document that does not load is a PolicyError listing every problem', () => {
  const document = structuredClone(config);
  document.policies[0].exlude = [];
  document.groups[0].include = [{ frobnicate: {} }];
  assert.throws(
    () => new PolicyEngine(document),
    (err) => {
      assert.ok(err instanceof PolicyError && err instanceof Error);
      assert.equal(err.name, 'PolicyError');
      assert.equal(err.source, 'document');
      assert.deepEqual(err.problems, [
        { path: 'groups[0].include[0]', message: 'unknown selector `frobnicate`' },
        { path: 'policies[0]', message: 'unknown field `exlude`' },
      ]);
      assert.equal(
        err.message,
        'the document does not load:\n  groups[0].include[0]: unknown selector `frobnicate`\n' +
          '  policies[0]: unknown field `exlude`',
      );
      return true;
    },
  );
  assert.throws(
    () => new PolicyEngine('{"team_domain": 1'),
    (err) => err instanceof PolicyError && err.problems[0].path === '' && /invalid JSON/.test(err.message),
  );
});

test('a request that does not load is a PolicyError with its paths', () => {
  const engine = new PolicyEngine(config);
  for (const method of ['evaluate', 'evaluateJson', 'decide', 'prepare']) {
    assert.throws(
      () => engine[method]({ app: 7, identity: { groups: ['Finance'] } }),
      (err) => {
        assert.ok(err instanceof PolicyError, `${method}: ${err}`);
        assert.equal(err.source, 'request');
        assert.deepEqual(
          err.problems.map((p) => p.path),
          ['app', 'identity.groups[0]'],
        );
        return true;
      },
    );
  }
  engine.free();
});

test('prepared requests decide, and are refused once freed', () => {
  const engine = new PolicyEngine(config);
  const prepared = engine.prepare(request);
  assert.ok(prepared instanceof PreparedRequest);
  assert.equal(engine.decide(prepared), 'allow');
  prepared.free();
  assert.throws(() => engine.decide(prepared), /freed/);
  assert.throws(() => new PreparedRequest(), TypeError);
  engine.free();
});

test('a freed engine throws an Error, never traps', () => {
  const engine = new PolicyEngine(config);
  engine.free();
  engine.free();
  for (const method of ['evaluate', 'decide', 'prepare', 'warnings']) {
    assert.throws(() => engine[method](request), /the engine was freed/, method);
  }
});

test('warnings are objects with paths', () => {
  const document = structuredClone(config);
  document.apps[0].policies = [];
  const engine = new PolicyEngine(document);
  assert.deepEqual(engine.warnings(), [
    { path: 'apps[0].policies', message: 'the app has no policies: every request to it is denied' },
  ]);
  engine.free();
});

// The wasm-bindgen layer under the API: its glue copied any argument into Wasm memory as if it
// were a string, so an object trapped (`RuntimeError: memory access out of bounds`).
test('the Wasm module itself refuses anything but text with a TypeError', async () => {
  const raw = await import(pathToFileURL(join(packageDir, 'wasm', 'policy_core.js')).href);
  const text = JSON.stringify(config);
  for (const value of [config, 42, null, undefined, [text]]) {
    assert.throws(() => new raw.PolicyEngine(value), (err) => {
      assert.ok(err instanceof TypeError, `${String(value)}: ${err}`);
      assert.match(err.message, /^the document must be JSON text \(a string\), found /);
      return true;
    });
  }
  // Requests reach the module as UTF-8 bytes (the package encodes them): bytes that are not
  // UTF-8 are a TypeError too, and the instance keeps working.
  const engine = new raw.PolicyEngine(text);
  for (const method of ['evaluateUtf8', 'decideUtf8', 'prepareUtf8']) {
    assert.throws(() => engine[method](new Uint8Array([0x7b, 0xff, 0xfe])), TypeError, method);
  }
  const bytes = new TextEncoder().encode(JSON.stringify(request));
  assert.equal(engine.decideUtf8(bytes), 'allow', 'the instance still works');
  engine.free();
});

test("the package README's examples hold", () => {
  const engine = new PolicyEngine({
    team_domain: 'https://access.example.com',
    apps: [{
      id: 'wiki', name: 'Wiki', domain: 'wiki.example.com', aud: 'aud-wiki',
      policies: [{ id: 'staff', name: 'Staff', decision: 'allow', session_duration: '8h',
                   include: [{ email_domain: { domain: 'example.com' } }] }],
    }],
  });
  const verdict = engine.evaluate({
    app: 'wiki.example.com/pages/home',
    identity: { email: 'ada@example.com', groups: [], amr: ['pwd', 'mfa'] },
    ip: '203.0.113.7',
    country: 'PT',
  });
  assert.equal(verdict.outcome, 'allow');
  assert.equal(verdict.app, 'wiki');
  assert.deepEqual(verdict.policy, { id: 'staff', name: 'Staff', precedence: 1 });
  assert.equal(verdict.session_duration, '8h');
  assert.match(verdict.trace[0], /^app `Wiki` \(wiki\) covers /);
  assert.equal(engine.decide({ app: 'wiki.example.com/', identity: { email: 'eve@evil.example' } }), 'default_deny');
  assert.throws(
    () => engine.evaluate({ app: 'wiki.example.com/', identity: { groups: [() => 'x'] } }),
    { name: 'TypeError', message: 'the request: identity.groups[0]: expected a JSON value, found a function' },
  );
  engine.free();
  assert.throws(
    () => new PolicyEngine({ team_domain: 'https://access.example.com',
                             policies: [{ id: 'p', name: 'P', decision: 'allow', exlude: [] }] }),
    (error) => {
      assert.deepEqual(error.problems, [
        { path: 'policies[0]', message: 'unknown field `exlude`' },
        { path: 'policies[0]', message: 'missing field `include`' },
      ]);
      return true;
    },
  );
});
