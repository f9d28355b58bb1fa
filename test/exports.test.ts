/**
 * The package's entries export deliberate lists: each exports exactly the values docs/library.md's "What
 * is public" table names for it (types leave no trace at run time; the table lists them for readers).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const ROOT = join(import.meta.dirname, '..');
const ENTRIES: Record<string, string> = {
  zkfarm: '../src/index.js',
  'zkfarm/zk': '../src/zk/index.js',
  'zkfarm/web': '../src/web/index.js',
  'zkfarm/testing': '../src/testing/index.js',
};

/** The values column of each entry's row in docs/library.md. */
function documentedValues(): Map<string, string[]> {
  const doc = readFileSync(join(ROOT, 'docs/library.md'), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const m = /^\| `(zkfarm[^`]*)` \| (.*?) \| (.*?) \|$/.exec(line);
    if (m)
      rows.set(
        m[1]!,
        [...m[2]!.matchAll(/`([A-Za-z_$][\w$]*)`/g)].map((x) => x[1]!),
      );
  }
  return rows;
}

test('each package entry exports exactly the values docs/library.md lists', async () => {
  const documented = documentedValues();
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    exports: Record<string, string>;
  };
  assert.deepEqual(
    Object.keys(pkg.exports)
      .map((k) => (k === '.' ? 'zkfarm' : `zkfarm/${k.slice(2)}`))
      .sort(),
    Object.keys(ENTRIES).sort(),
    'package.json exports the entries this test knows',
  );
  for (const [entry, path] of Object.entries(ENTRIES)) {
    const actual = Object.keys(await import(path)).sort();
    const listed = documented.get(entry);
    assert.ok(listed, `docs/library.md has a row for ${entry}`);
    assert.deepEqual(actual, [...listed].sort(), `${entry}: exported values vs docs/library.md`);
  }
});
