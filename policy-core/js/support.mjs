// Shared by the policy-core JS tests: where the repository, the built package and its tarball
// are. `cargo xtask test` builds the package into target/policy-core-js (POLICY_CORE_JS) and
// packs it (POLICY_CORE_TARBALL).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '../..');
export const targetDir = process.env.CARGO_TARGET_DIR
  ? resolve(repoRoot, process.env.CARGO_TARGET_DIR)
  : join(repoRoot, 'target');

/** The built package folder (what `npm pack` packs). */
export const packageDir = process.env.POLICY_CORE_JS ?? join(targetDir, 'policy-core-js');

/** The package's version, from its sources. */
export const version = JSON.parse(readFileSync(join(here, 'package/package.json'), 'utf8')).version;

/** The packed tarball. */
export const tarball =
  process.env.POLICY_CORE_TARBALL ?? join(targetDir, `edge-access-policy-core-${version}.tgz`);

/** The package's Node entry, imported from the built folder. */
export async function loadPackage() {
  const entry = join(packageDir, 'node.js');
  if (!existsSync(entry)) {
    throw new Error(`${entry} is missing: \`cargo xtask test\` builds the package`);
  }
  return import(pathToFileURL(entry).href);
}

/** A JSON file of the repository. */
export function readJson(...parts) {
  return JSON.parse(readFileSync(join(repoRoot, ...parts), 'utf8'));
}
