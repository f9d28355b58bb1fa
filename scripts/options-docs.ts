/**
 * The options tables of the docs, generated from the option fields (src/farm/options.ts,
 * src/host/options.ts) so that they cannot drift from what the code accepts:
 *
 *   node --import tsx scripts/options-docs.ts           rewrite the tables in docs/*.md
 *   node --import tsx scripts/options-docs.ts --check   exit 1 if a table differs (what the test checks)
 *
 * Each table sits between `<!-- options:NAME -->` and `<!-- /options:NAME -->` in its page.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Field } from '../src/farm/option-schema.js';
import { renderTable, rowsOf, type TableRow } from '../src/farm/option-text.js';
import { masterFields, roleFields, submitterFields, workerFields } from '../src/farm/options.js';
import { fileFields, roleEntryFields, runtimeFlags, WORKER_ONLY } from '../src/host/options.js';

const ROOT = join(import.meta.dirname, '..');

/** Every generated table: its page, its marker name, its content. */
export function optionTables(): Array<{ page: string; name: string; table: string }> {
  const roleRows = rowsOf(roleEntryFields).map((r) => ({
    ...r,
    for: (WORKER_ONLY as readonly string[]).includes(r.key) ? 'workers' : 'all',
  }));
  const flagRows: TableRow[] = Object.values(runtimeFlags).map((f) => ({
    key: f.flag,
    field: f as Field<unknown>,
    accepts: /[<[]/.test(f.flag) ? undefined : '(a switch)',
  }));
  return [
    { page: 'docs/configuration.md', name: 'file', table: renderTable(rowsOf(fileFields)) },
    {
      page: 'docs/configuration.md',
      name: 'roles',
      table: renderTable(roleRows, { key: 'field', for: 'for' }),
    },
    {
      page: 'docs/configuration.md',
      name: 'role',
      table: renderTable(rowsOf(roleFields), { key: 'option' }),
    },
    {
      page: 'docs/configuration.md',
      name: 'master',
      table: renderTable(rowsOf(masterFields), { key: 'option' }),
    },
    {
      page: 'docs/configuration.md',
      name: 'worker',
      table: renderTable(rowsOf(workerFields), { key: 'option' }),
    },
    {
      page: 'docs/configuration.md',
      name: 'submitter',
      table: renderTable(rowsOf(submitterFields), { key: 'option' }),
    },
    { page: 'docs/cli.md', name: 'runtime', table: renderTable(flagRows, { key: 'flag' }) },
  ];
}

/** `text` with the table `name` replaced by `table`; throws if the page has no such markers. */
export function withTable(text: string, name: string, table: string, page: string): string {
  const open = `<!-- options:${name} -->`;
  const close = `<!-- /options:${name} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a < 0 || b < a) throw new Error(`${page} has no ${open} ... ${close} markers`);
  return `${text.slice(0, a + open.length)}\n\n${table}\n\n${text.slice(b)}`;
}

/** Each page as it should be: `{ page, current, wanted }`. */
export function pages(): Array<{ page: string; current: string; wanted: string }> {
  const byPage = new Map<string, { current: string; wanted: string }>();
  for (const { page, name, table } of optionTables()) {
    const entry =
      byPage.get(page) ??
      (() => {
        const current = readFileSync(join(ROOT, page), 'utf8');
        return { current, wanted: current };
      })();
    entry.wanted = withTable(entry.wanted, name, table, page);
    byPage.set(page, entry);
  }
  return [...byPage].map(([page, e]) => ({ page, ...e }));
}

function main(): void {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const { page, current, wanted } of pages()) {
    if (current === wanted) continue;
    stale++;
    if (check)
      process.stderr.write(`${page}: its options tables are out of date: run npm run docs:options\n`);
    else {
      writeFileSync(join(ROOT, page), wanted);
      process.stdout.write(`${page}: tables rewritten\n`);
    }
  }
  if (check && stale > 0) process.exit(1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
