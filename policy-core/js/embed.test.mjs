// The README's JavaScript example (examples/embed.mjs) as a user runs it: the packed tarball
// installed into a scratch folder, the example beside it, Node run on examples/config.json and
// examples/request.json. `cargo xtask test` packs the tarball first (POLICY_CORE_TARBALL).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile as execFileCb } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { here, repoRoot, tarball, targetDir } from './support.mjs';

const execFile = promisify(execFileCb);
let scratch;

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test("the README's JavaScript example allows Ada", { timeout: 180_000 }, async () => {
  assert.ok(existsSync(tarball), `${tarball} is missing: \`cargo xtask test\` packs it`);
  mkdirSync(targetDir, { recursive: true });
  scratch = mkdtempSync(join(targetDir, 'policy-core-embed-'));
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ private: true, type: 'module' }));
  await execFile('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], { cwd: scratch });
  copyFileSync(join(here, 'examples', 'embed.mjs'), join(scratch, 'embed.mjs'));
  const { stdout } = await execFile(
    process.execPath,
    ['embed.mjs', join(repoRoot, 'examples', 'config.json'), join(repoRoot, 'examples', 'request.json')],
    { cwd: scratch },
  );
  const [first, last] = stdout.trim().split('\n');
  assert.equal(first, 'allow engineers');
  assert.ok(last.length > 0, 'the last step of the trace');
});
