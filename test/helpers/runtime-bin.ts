/**
 * How tests start `runtime`: the compiled CLI (dist/, what `npx runtime` runs) when it is at least as new
 * as every source file, else from source under tsx. A compiled start takes about half a second against
 * a second under tsx, and the suite starts a few hundred of them. A dist/ older than any file of src/ or
 * workers/ is never used, so a test never runs stale code; ZKFARM_TEST_FROM_SOURCE=1 forces tsx.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const COMPILED = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function compiledIsCurrent(): boolean {
  if (process.env['ZKFARM_TEST_FROM_SOURCE'] === '1' || !existsSync(COMPILED)) return false;
  const built = statSync(COMPILED).mtimeMs;
  return ['src', 'workers'].every((d) => newestSource(join(ROOT, d)) <= built);
}

let argv: readonly string[] | undefined;

/** Node's arguments that start `runtime` (before its own), decided once per test file. */
export function runtimeArgv(): readonly string[] {
  argv ??= compiledIsCurrent() ? [COMPILED] : ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
  return argv;
}
