// The JSON Schemas in policy-core/schema against the loader: every document the project ships
// validates; the structural problems of the `load_error_*` vectors are found by both, at the
// same paths; and, over thousands of mutations of valid documents (unknown fields, deleted
// fields, wrong types, nulls), the schema never refuses what the loader accepts and always
// finds what the loader calls an unknown field, missing field, wrong type or unknown selector.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { here, loadPackage, readJson, repoRoot } from './support.mjs';

const { PolicyEngine, PolicyError } = await loadPackage();

const schemaDir = join(here, '../schema');
const warnings = [];
const ajv = new Ajv2020({
  strict: true,
  // Valid JSON Schema that ajv's strict mode would refuse by taste: `type: [..., "null"]`, and
  // `required` inside `oneOf`/`if` naming properties the parent schema defines.
  allowUnionTypes: true,
  strictRequired: false,
  allErrors: true,
  logger: { log() {}, warn: (...args) => warnings.push(args.join(' ')), error: console.error },
});
const schemas = Object.fromEntries(
  ['edge-access.schema.json', 'edge-access-request.schema.json', 'edge-access-test.schema.json'].map(
    (name) => [name, JSON.parse(readFileSync(join(schemaDir, name), 'utf8'))],
  ),
);
for (const schema of Object.values(schemas)) ajv.addSchema(schema);
const validateDocument = ajv.getSchema(schemas['edge-access.schema.json'].$id);
const validateRequest = ajv.getSchema(schemas['edge-access-request.schema.json'].$id);
const validateTestFile = ajv.getSchema(schemas['edge-access-test.schema.json'].$id);

const vectorDir = join(here, '../tests/vectors');
const vectors = readdirSync(vectorDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((file) => ({ file, vector: JSON.parse(readFileSync(join(vectorDir, file), 'utf8')) }));

/** The loader's problems with `document`, `[]` when it loads. */
function loaderProblems(document) {
  try {
    new PolicyEngine(document).free();
    return [];
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    return error.problems;
  }
}

/** ajv's errors, each with its location in the loader's path spelling. */
function schemaErrors(validate, value) {
  if (validate(value)) return [];
  return validate.errors.map((e) => {
    // A bad key of a map (`directory.group_parents`) is reported at the map, naming the key.
    const { propertyName } = e.params;
    const pointer = propertyName === undefined ? e.instancePath : `${e.instancePath}/${propertyName}`;
    // An unknown key is reported at its object; it is also an error about the key itself.
    const { additionalProperty } = e.params;
    const keyPath = additionalProperty === undefined ? null : loaderPath(`${e.instancePath}/${additionalProperty}`);
    return { ...e, path: loaderPath(pointer), keyPath };
  });
}

/** `/apps/0/policies/1` → `apps[0].policies[1]`. */
function loaderPath(pointer) {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const step = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (/^(0|[1-9][0-9]*)$/.test(step)) path += `[${step}]`;
    else path += path === '' ? step : `.${step}`;
  }
  return path;
}

function show(errors) {
  return errors.map((e) => `  ${e.path || '(root)'}: ${e.message} ${JSON.stringify(e.params)}`).join('\n');
}

/**
 * Loader problems that are about the document's shape: the schema must report each at the same
 * path (a missing field also at the field itself, when it is there as `null`).
 */
const STRUCTURAL = [
  /^unknown field /,
  /^missing field /,
  /^expected (?!.*non-empty)/,
  /^unknown selector /,
  /^unsupported selector /,
  /^a rule must have exactly one selector key/,
  /^a policy needs at least one include rule/,
  /^unknown decision /,
  /^unsupported identity provider type /,
  /^unsupported app type /,
  /^unsupported list type /,
  /^unknown (prompt|azure_cloud|identity_update_behavior) /,
  / is not supported by edge-access/,
  /^secrets do not belong in the document/,
  /is not a GUID/,
  /^invalid country code/,
  /^invalid email/,
  /^`@[^`]*` must be a bare domain/,
  /is not an `https:\/\/host` URL/,
  /^expected 64 hexadecimal characters/,
  /is not an absolute http\(s\) URL/,
];

function isStructural(problem) {
  return STRUCTURAL.some((pattern) => pattern.test(problem.message));
}

function schemaFinds(errors, problem) {
  const field = /^missing field `([^`]+)`/.exec(problem.message)?.[1];
  const at = field === undefined ? null : problem.path === '' ? field : `${problem.path}.${field}`;
  // An option that would restrict access is reported at the option (`mfa_config`); the
  // schema's error may be inside it (`mfa_config.mfa_disabled`).
  const inside = / is not supported by edge-access/.test(problem.message) ? `${problem.path}.` : null;
  return errors.some(
    (e) =>
      e.path === problem.path ||
      e.keyPath === problem.path ||
      (at !== null && e.path === at) ||
      (inside !== null && e.path.startsWith(inside)),
  );
}

test('the schemas compile in strict mode without warnings', () => {
  assert.ok(validateDocument && validateRequest && validateTestFile);
  assert.deepEqual(warnings, []);
});

test('every $id is stable and the files are where it says', () => {
  for (const [name, schema] of Object.entries(schemas)) {
    assert.equal(
      schema.$id,
      `https://raw.githubusercontent.com/edge-access/edge-access/main/policy-core/schema/${name}`,
    );
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  }
});

/** Every configuration document the repository ships outside the vectors. */
function shippedDocuments() {
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith('.json')) {
        const value = JSON.parse(readFileSync(path, 'utf8'));
        if (value && typeof value === 'object' && 'team_domain' in value) found.push(path);
      }
    }
  };
  for (const dir of ['examples', 'cli/tests/fixtures']) walk(join(repoRoot, dir));
  return found;
}

test('every shipped document that loads validates, and those that do not are refused by both', () => {
  const files = shippedDocuments();
  assert.ok(files.length >= 6, files.join(', '));
  for (const file of files) {
    const document = JSON.parse(readFileSync(file, 'utf8'));
    const problems = loaderProblems(document);
    const errors = schemaErrors(validateDocument, document);
    const name = relative(repoRoot, file);
    if (problems.length === 0) {
      assert.deepEqual(errors, [], `${name} loads but the schema refuses it:\n${show(errors)}`);
    } else {
      for (const problem of problems.filter(isStructural)) {
        assert.ok(schemaFinds(errors, problem), `${name}: the schema misses ${problem.path}: ${problem.message}`);
      }
    }
  }
});

test('every vector document that loads validates', () => {
  let checked = 0;
  for (const { file, vector } of vectors.filter((v) => v.vector.cases)) {
    assert.deepEqual(loaderProblems(vector.document), [], file);
    const errors = schemaErrors(validateDocument, vector.document);
    assert.deepEqual(errors, [], `${file}:\n${show(errors)}`);
    checked += 1;
  }
  assert.ok(checked >= 40, `${checked} documents`);
});

test('the structural load errors of the vectors are found by the schema at the same paths', (t) => {
  let structural = 0;
  for (const { file, vector } of vectors.filter((v) => v.vector.expect_load_errors)) {
    const problems = loaderProblems(vector.document);
    assert.ok(problems.length > 0, `${file} loads`);
    const errors = schemaErrors(validateDocument, vector.document);
    for (const problem of problems.filter(isStructural)) {
      structural += 1;
      assert.ok(
        schemaFinds(errors, problem),
        `${file}: the schema misses ${problem.path}: ${problem.message}; it says:\n${show(errors)}`,
      );
    }
  }
  // unknown field, wrong type, missing field, unknown and unsupported selectors, bad values.
  t.diagnostic(`${structural} structural problems found by both`);
  assert.ok(structural >= 50, `${structural} structural problems`);
});

test('these vectors are refused by the schema as by the loader', () => {
  for (const file of [
    'load_error_unknown_field.json',
    'load_error_unknown_selector.json',
    'load_error_unsupported_selector.json',
    'load_error_rule_shape.json',
    'load_error_missing_include.json',
    'load_error_missing_team_domain.json',
    'load_error_team_domain_not_https.json',
    'load_error_identity_provider.json',
    'load_error_unsupported_restriction.json',
    'load_error_mfa_config.json',
    'load_error_bad_guid.json',
    'load_error_bad_values.json',
  ]) {
    const { vector } = vectors.find((v) => v.file === file) ?? {};
    assert.ok(vector, file);
    assert.ok(loaderProblems(vector.document).length > 0, `${file}: the loader accepts it`);
    assert.equal(validateDocument(vector.document), false, `${file}: the schema accepts it`);
  }
});

test('every test file validates against the test-file schema, and its requests against the request schema', () => {
  const files = [
    ...vectors.map((v) => [v.file, v.vector]),
    ...['passing', 'failing'].map((dir) => {
      const path = join('cli/tests/fixtures/policy-tests', dir, 'wiki.test.json');
      return [path, readJson(path)];
    }),
    ...readdirSync(join(repoRoot, 'examples/policy-tests/policies'))
      .filter((f) => f.endsWith('.test.json'))
      .map((f) => [f, readJson('examples/policy-tests/policies', f)]),
  ];
  let requests = 0;
  for (const [name, file] of files) {
    const errors = schemaErrors(validateTestFile, file);
    assert.deepEqual(errors, [], `${name}:\n${show(errors)}`);
    for (const c of file.cases ?? []) {
      const requestErrors = schemaErrors(validateRequest, c.request);
      if (c.expect) {
        assert.deepEqual(requestErrors, [], `${name} / ${c.name}:\n${show(requestErrors)}`);
        requests += 1;
      }
    }
  }
  assert.ok(requests >= 300, `${requests} requests`);
  assert.equal(validateRequest(readJson('examples/request.json')), true);
});

test('the test-file schema refuses what the suite parser refuses', () => {
  const typo = readJson('cli/tests/fixtures/policy-tests-broken/typo.test.json');
  const errors = schemaErrors(validateTestFile, typo);
  assert.ok(errors.some((e) => e.path === 'cases[0].expect' && e.params.additionalProperty === 'outcom'), show(errors));
  const base = { config: 'access.json', cases: [{ name: 'x', request: { app: 'a.example.com/' }, expect: { outcome: 'allow' } }] };
  for (const [change, path] of [
    [(f) => (f.cases[0].expect.outcome = 'alow'), 'cases[0].expect.outcome'],
    [(f) => (f.document = {}), ''],
    [(f) => delete f.config, ''],
    [(f) => (f.cases = []), 'cases'],
    [(f) => (f.expect_load_errors = [{ path: '', contains: 'x' }]), ''],
    [(f) => (f.cases[0].expect_request_error = { path: 'ip', contains: 'x' }), 'cases[0]'],
    [(f) => delete f.cases[0].expect, 'cases[0]'],
    [(f) => (f.cases[0].request.identity = { groups: ['Finance'] }), 'cases[0].request.identity.groups[0]'],
  ]) {
    const file = structuredClone(base);
    change(file);
    const found = schemaErrors(validateTestFile, file);
    assert.ok(found.some((e) => e.path === path), `${change}: expected an error at ${path}:\n${show(found)}`);
  }
  assert.deepEqual(schemaErrors(validateTestFile, base), []);
});

test('a document may name its schema, and the loader ignores it', () => {
  const document = { $schema: schemas['edge-access.schema.json'].$id, ...readJson('examples/config.json') };
  assert.deepEqual(loaderProblems(document), []);
  assert.equal(validateDocument(document), true);
});

/** Every mutation of `document` that changes one node's shape, with a name. */
function* mutations(document) {
  const nodes = [];
  const walk = (value, steps) => {
    nodes.push([value, steps]);
    if (Array.isArray(value)) value.forEach((item, i) => walk(item, [...steps, i]));
    else if (value && typeof value === 'object') for (const k of Object.keys(value)) walk(value[k], [...steps, k]);
  };
  walk(document, []);
  const at = (root, steps) => steps.reduce((v, s) => v[s], root);
  const edit = (steps, change) => {
    const copy = structuredClone(document);
    if (steps.length === 0) return change(copy) ?? copy;
    const parent = at(copy, steps.slice(0, -1));
    change(parent, steps[steps.length - 1]);
    return copy;
  };
  const wrong = (value) => {
    if (typeof value === 'string') return 42;
    if (typeof value === 'number') return '1';
    if (typeof value === 'boolean') return 'yes';
    if (Array.isArray(value)) return {};
    if (value && typeof value === 'object') return [];
    return {};
  };
  for (const [value, steps] of nodes) {
    const name = steps.join('.');
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const copy = structuredClone(document);
      at(copy, steps).zzz_typo = true;
      yield [`${name || '(root)'} + zzz_typo`, copy];
    }
    if (steps.length === 0) continue;
    const last = steps[steps.length - 1];
    yield [`${name} → wrong type`, edit(steps, (p, k) => (p[k] = wrong(value)))];
    yield [`${name} → null`, edit(steps, (p, k) => (p[k] = null))];
    if (typeof last === 'string') yield [`${name} deleted`, edit(steps, (p, k) => delete p[k])];
    if (typeof value === 'string') yield [`${name} → ""`, edit(steps, (p, k) => (p[k] = ''))];
  }
}

test('over mutations of valid documents, the schema agrees with the loader on shape', (t) => {
  const bases = [
    ['examples/config.json', readJson('examples/config.json')],
    ['examples/dev-config.json', readJson('examples/dev-config.json')],
    ...vectors
      .filter((v) => v.vector.cases && JSON.stringify(v.vector.document).length < 6000)
      .map((v) => [v.file, v.vector.document]),
  ];
  let count = 0;
  let refused = 0;
  const failures = [];
  for (const [baseName, base] of bases) {
    for (const [name, document] of mutations(base)) {
      count += 1;
      const problems = loaderProblems(document);
      const errors = schemaErrors(validateDocument, document);
      if (errors.length > 0) refused += 1;
      if (errors.length > 0 && problems.length === 0) {
        failures.push(`${baseName}: ${name}: the loader accepts it, the schema refuses:\n${show(errors)}`);
      }
      for (const problem of problems.filter(isStructural)) {
        if (!schemaFinds(errors, problem)) {
          failures.push(`${baseName}: ${name}: the schema misses ${problem.path}: ${problem.message}`);
        }
      }
    }
  }
  t.diagnostic(`${count} mutations of ${bases.length} documents, ${refused} refused by the schema`);
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} disagreements`);
  assert.ok(count >= 5000 && refused >= 3000, `${count} mutations, ${refused} refused by the schema`);
});
