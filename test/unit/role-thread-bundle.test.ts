/**
 * The role threads' one-file entry (scripts/bundle-role-thread.mjs, made by `npm run build`): what it
 * still imports by relative path resolves from where it is written, and none of our modules is wrapped
 * in a lazy initialiser (which cost the farm CPU per task). `npm test` builds first; without a build
 * there is nothing to check.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';

const BUNDLE = join(import.meta.dirname, '..', '..', 'dist', 'src', 'host', 'role-thread.bundle.js');

test('the role-thread bundle imports only files that exist, and wraps no module lazily', (t) => {
  if (!existsSync(BUNDLE)) {
    t.skip('not built: npm run build');
    return;
  }
  const text = readFileSync(BUNDLE, 'utf8');
  const relative = [...text.matchAll(/(?:from|import\()\s*"(\.{1,2}\/[^"]+)"/g)].map((m) => m[1]!);
  assert.ok(relative.length > 0, 'the handler pool stays a lazy import of its own');
  for (const spec of relative)
    assert.ok(existsSync(resolve(dirname(BUNDLE), spec)), `${spec} resolves from ${BUNDLE}`);
  assert.doesNotMatch(text, /__esm\(/);
});
