// The packed npm package, installed from its tarball into a scratch folder as a user would
// install it, and used from Node (import and require), from TypeScript, from a plain JS Worker
// under workerd (`wrangler dev`, loopback only), and from pages in headless Chromium (Debian's
// chromium driven by its chromedriver): one page loading the package through an import map,
// one bundled by esbuild. `cargo xtask test` packs the tarball first (POLICY_CORE_TARBALL).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile as execFileCb, spawn } from 'node:child_process';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { extname, join, normalize, sep } from 'node:path';
import { promisify } from 'node:util';
import { readJson, repoRoot, tarball, targetDir, version } from './support.mjs';

const execFile = promisify(execFileCb);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CHROMEDRIVER = process.env.CHROMEDRIVER ?? '/usr/bin/chromedriver';
/** The flags Chromium needs on this machine (as tests/src/browser.rs): nothing but loopback. */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];
const WRANGLER = join(repoRoot, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const TIMEOUT = 180_000;

const config = readJson('examples', 'config.json');
const request = readJson('examples', 'request.json');
let scratch;
let expected;

before(async () => {
  assert.ok(existsSync(tarball), `${tarball} is missing: \`cargo xtask test\` packs it`);
  mkdirSync(targetDir, { recursive: true });
  scratch = mkdtempSync(join(targetDir, 'policy-core-npm-'));
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
  await execFile('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], { cwd: scratch });
  const { PolicyEngine } = await import(join(scratch, 'node_modules/@edge-access/policy-core/node.js'));
  const engine = new PolicyEngine(config);
  expected = engine.evaluate(request);
  engine.free();
  assert.equal(expected.outcome, 'allow');
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('the tarball holds the package and nothing else', async () => {
  const { stdout } = await execFile('tar', ['tzf', tarball]);
  const files = stdout.trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
  assert.deepEqual(files, [
    'README.md',
    'browser.js',
    'index.d.ts',
    'lib/engine.js',
    'node.js',
    'package.json',
    'schema/edge-access-request.schema.json',
    'schema/edge-access-test.schema.json',
    'schema/edge-access.schema.json',
    'wasm/policy_core.js',
    'wasm/policy_core_bg.wasm',
    'workerd.js',
  ]);
  const manifest = JSON.parse(readFileSync(join(scratch, 'node_modules/@edge-access/policy-core/package.json')));
  assert.equal(manifest.version, version);
});

test('Node: import, require and the schema export', { timeout: TIMEOUT }, async () => {
  const script = `
    import { PolicyEngine, PolicyError, init } from '@edge-access/policy-core';
    import schema from '@edge-access/policy-core/schema/edge-access.schema.json' with { type: 'json' };
    import { createRequire } from 'node:module';
    await init();
    const config = ${JSON.stringify(config)};
    const engine = new PolicyEngine(config);
    const required = createRequire(import.meta.url)('@edge-access/policy-core');
    const other = new required.PolicyEngine(JSON.stringify(config));
    let problem;
    try { new PolicyEngine({ team_domain: 'https://a.example.com', apps: [{}] }); }
    catch (error) { problem = error instanceof PolicyError && error.problems[0].path; }
    console.log(JSON.stringify({
      verdict: engine.evaluate(${JSON.stringify(request)}),
      required: other.decide(${JSON.stringify(JSON.stringify(request))}),
      same: required.PolicyEngine === PolicyEngine,
      problem,
      schema: schema.$id,
    }));`;
  writeFileSync(join(scratch, 'node-check.mjs'), script);
  const { stdout } = await execFile(process.execPath, ['--no-warnings', 'node-check.mjs'], { cwd: scratch });
  const result = JSON.parse(stdout);
  assert.deepEqual(result.verdict, expected);
  assert.equal(result.required, 'allow');
  assert.equal(result.same, true, 'require() and import share one module');
  assert.equal(result.problem, 'apps[0]');
  assert.match(result.schema, /edge-access\.schema\.json$/);
});

test('TypeScript: the types accept every valid document and request, and refuse mistakes', { timeout: TIMEOUT }, async () => {
  const vectors = readVectors();
  const lines = [
    "import { PolicyEngine, PolicyError, init, type ConfigurationDocument, type PolicyRequest,",
    "  type Verdict, type Outcome, type Rule, type Problem } from '@edge-access/policy-core';",
    'await init();',
    `const config = ${JSON.stringify(config)} satisfies ConfigurationDocument;`,
    `const request = ${JSON.stringify(request)} satisfies PolicyRequest;`,
    'const engine = new PolicyEngine(config);',
    'const verdict: Verdict = engine.evaluate(request);',
    'const outcome: Outcome = engine.decide(JSON.stringify(request));',
    'const policyName: string | undefined = verdict.policy?.name;',
    'const prepared = engine.prepare(request);',
    'engine.decide(prepared);',
    'try { new PolicyEngine("{}"); } catch (e) { if (e instanceof PolicyError) { const p: Problem[] = e.problems; const s: "document" | "request" | "evaluation" = e.source; void p; void s; } }',
    'void outcome; void policyName;',
    '// @ts-expect-error two selectors in one rule',
    "const twoKeys: Rule = { email: { email: 'a@example.com' }, geo: { country_code: 'PT' } };",
    '// @ts-expect-error an unknown selector',
    "const unknownSelector: Rule = { frobnicate: {} };",
    '// @ts-expect-error a typo in a policy',
    "const typo = { team_domain: 'https://a.example.com', policies: [{ id: 'p', name: 'P', decision: 'allow', include: [{ everyone: {} }], exlude: [] }] } satisfies ConfigurationDocument;",
    '// @ts-expect-error an unknown decision',
    "const permit = { team_domain: 'https://a.example.com', policies: [{ id: 'p', name: 'P', decision: 'permit', include: [{ everyone: {} }] }] } satisfies ConfigurationDocument;",
    '// @ts-expect-error a request without app',
    "const noApp = { identity: { email: 'a@example.com' } } satisfies PolicyRequest;",
    'void twoKeys; void unknownSelector; void typo; void permit; void noApp;',
  ];
  let n = 0;
  for (const vector of vectors.filter((v) => v.cases)) {
    lines.push(`export const document${n} = ${JSON.stringify(vector.document)} satisfies ConfigurationDocument;`);
    for (const c of vector.cases.filter((c) => c.expect)) {
      lines.push(`export const request${n}_${lines.length} = ${JSON.stringify(c.request)} satisfies PolicyRequest;`);
    }
    n += 1;
  }
  writeFileSync(join(scratch, 'check.ts'), `${lines.join('\n')}\n`);
  writeFileSync(
    join(scratch, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        lib: ['es2022', 'dom'],
        types: [],
        skipLibCheck: false,
      },
      files: ['check.ts'],
    }),
  );
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = await execFile(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: scratch }).catch((e) => e);
  assert.equal(result.code ?? 0, 0, `tsc:\n${result.stdout}${result.stderr}`);
  assert.ok(n >= 40, `${n} documents`);
});

test('a plain JS Worker under workerd (wrangler dev) bundles and runs it, with no fs', { timeout: TIMEOUT }, async () => {
  const dir = join(scratch, 'worker');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(
    join(dir, 'worker.js'),
    `import { PolicyEngine, PolicyError } from '@edge-access/policy-core';
import document from './config.json';

const engine = new PolicyEngine(document);

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/evaluate') {
      try {
        return Response.json(engine.evaluate(await request.json()));
      } catch (error) {
        const body = { name: error.name, source: error.source, problems: error.problems };
        return Response.json(body, { status: error instanceof PolicyError ? 400 : 500 });
      }
    }
    if (url.pathname === '/type-error') {
      try {
        engine.evaluate({ app: 'a.example.com/', identity: { groups: [() => 1] } });
      } catch (error) {
        return Response.json({ name: error.name, path: error.path });
      }
    }
    return new Response('not found', { status: 404 });
  },
};
`,
  );
  writeFileSync(
    join(dir, 'wrangler.json'),
    JSON.stringify({ name: 'policy-core-package-test', main: 'worker.js', compatibility_date: '2026-04-20' }),
  );
  const port = await freePort();
  const inspector = await freePort();
  const log = [];
  const wrangler = spawn(
    process.execPath,
    [
      WRANGLER,
      'dev',
      '--local',
      '--config',
      'wrangler.json',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--inspector-port',
      String(inspector),
      '--persist-to',
      join(dir, '.state'),
      '--show-interactive-dev-session=false',
    ],
    { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } },
  );
  wrangler.stdout.on('data', (chunk) => log.push(String(chunk)));
  wrangler.stderr.on('data', (chunk) => log.push(String(chunk)));
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/`)).status === 404, wrangler, () => log.join(''));
    const post = (body) => fetch(`${base}/evaluate`, { method: 'POST', body: JSON.stringify(body) });
    const allowed = await post(request);
    assert.equal(allowed.status, 200, log.join(''));
    assert.deepEqual(await allowed.json(), expected);
    const refused = await post({ app: 7 });
    assert.equal(refused.status, 400);
    assert.deepEqual(await refused.json(), {
      name: 'PolicyError',
      source: 'request',
      problems: [{ path: 'app', message: 'expected a string, found a number' }],
    });
    assert.deepEqual(await (await fetch(`${base}/type-error`)).json(), { name: 'TypeError', path: 'identity.groups[0]' });
  } finally {
    stop(wrangler);
  }
});

test('pages in headless Chromium: through an import map, and bundled by esbuild', { timeout: TIMEOUT }, async () => {
  const page = (specifier, initArgument) => `import { init, PolicyEngine, PolicyError } from '${specifier}';
${initArgument.import}
window.policyResult = (async () => {
  await init(${initArgument.value});
  const engine = new PolicyEngine(await (await fetch('/config.json')).json());
  const verdict = engine.evaluate(${JSON.stringify(request)});
  let typeError;
  try { engine.evaluate({ app: 'a.example.com/', identity: { groups: [() => 1] } }); }
  catch (error) { typeError = { name: error.name, path: error.path }; }
  let problem;
  try { new PolicyEngine({ team_domain: 'http://a.example.com' }); }
  catch (error) { problem = error instanceof PolicyError ? error.problems : String(error); }
  return { verdict, typeError, problem };
})().catch((error) => ({ failed: String(error && error.stack || error) }));
`;
  const web = join(scratch, 'web');
  mkdirSync(join(web, 'dist'), { recursive: true });
  writeFileSync(join(web, 'config.json'), JSON.stringify(config));
  writeFileSync(join(web, 'mapped.js'), page('@edge-access/policy-core', { import: '', value: '' }));
  writeFileSync(
    join(web, 'mapped.html'),
    `<!doctype html><meta charset="utf-8"><script type="importmap">
{ "imports": { "@edge-access/policy-core": "/node_modules/@edge-access/policy-core/browser.js" } }
</script><script type="module" src="/mapped.js"></script>`,
  );
  writeFileSync(
    join(web, 'bundled-src.js'),
    page('@edge-access/policy-core', {
      import: "import wasmUrl from '@edge-access/policy-core/policy_core_bg.wasm';",
      value: 'new URL(wasmUrl, import.meta.url)',
    }),
  );
  const esbuild = createRequire(join(repoRoot, 'package.json'))('esbuild');
  await esbuild.build({
    absWorkingDir: scratch,
    entryPoints: [join(web, 'bundled-src.js')],
    outfile: join(web, 'dist', 'bundled.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    loader: { '.wasm': 'file' },
    logLevel: 'silent',
  });
  writeFileSync(join(web, 'bundled.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="/dist/bundled.js"></script>');

  const server = await serve({ '/node_modules/': join(scratch, 'node_modules'), '/': web });
  const driverPort = await freePort();
  const driver = spawn(CHROMEDRIVER, [`--port=${driverPort}`, '--allowed-ips=127.0.0.1'], {
    detached: true,
    stdio: 'ignore',
  });
  const webdriver = `http://127.0.0.1:${driverPort}`;
  let session;
  try {
    await waitFor(async () => (await (await fetch(`${webdriver}/status`)).json()).value.ready, driver, () => '');
    const created = await wd('POST', `${webdriver}/session`, {
      capabilities: {
        alwaysMatch: {
          browserName: 'chrome',
          timeouts: { pageLoad: 30_000, script: 30_000, implicit: 0 },
          'goog:chromeOptions': {
            binary: CHROMIUM,
            args: [...CHROMIUM_FLAGS, `--user-data-dir=${join(scratch, 'chromium-profile')}`],
          },
        },
      },
    });
    session = `${webdriver}/session/${created.sessionId}`;
    for (const name of ['mapped', 'bundled']) {
      await wd('POST', `${session}/url`, { url: `http://127.0.0.1:${server.port}/${name}.html` });
      const result = await wd('POST', `${session}/execute/async`, {
        script: 'const done = arguments[arguments.length - 1]; window.policyResult.then(done);',
        args: [],
      });
      assert.equal(result.failed, undefined, `${name}: ${result.failed}`);
      assert.deepEqual(result.verdict, expected, name);
      assert.deepEqual(result.typeError, { name: 'TypeError', path: 'identity.groups[0]' }, name);
      assert.deepEqual(result.problem, [{ path: 'team_domain', message: '`http://a.example.com` is not an `https://host` URL' }], name);
    }
    assert.ok(server.served.some((p) => p.endsWith('/wasm/policy_core_bg.wasm')), 'the mapped page fetched the module by URL');
    assert.ok(server.served.some((p) => /^\/dist\/policy_core_bg-[^/]+\.wasm$/.test(p)), 'the bundle fetched its copy');
  } finally {
    if (session) await wd('DELETE', session).catch(() => {});
    stop(driver);
    server.close();
  }
});

function readVectors() {
  const dir = join(repoRoot, 'policy-core', 'tests', 'vectors');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

/** A WebDriver command; returns its `value`, or throws with WebDriver's error. */
async function wd(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`webdriver ${method} ${url}: ${json.value?.error}: ${json.value?.message}`);
  return json.value;
}

/** A static server on 127.0.0.1 for `routes` (URL prefix → folder); records what it served. */
function serve(routes) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.wasm': 'application/wasm' };
  const served = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const prefix = Object.keys(routes).find((p) => path.startsWith(p));
    const root = routes[prefix];
    const file = normalize(join(root, path.slice(prefix.length)));
    if (!file.startsWith(root + sep) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    served.push(path);
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ port: server.address().port, served, close: () => server.close() }));
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls `ready` until it holds; fails when `child` exits first or after a minute. */
async function waitFor(ready, child, output) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before it was ready:\n${output()}`);
    try {
      if (await ready()) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`not ready after 60 s:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Ends a child started here, with its whole process group (workerd, Chromium). */
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
}
