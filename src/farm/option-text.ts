/**
 * Option fields (option-schema.ts) as text: a command-line flag's value parsed and checked against its
 * field, and the Markdown options tables of docs/configuration.md (scripts/options-docs.ts).
 */
import { defaultOf, expectedOf, type Field, type Fields, SECRET } from './option-schema.js';

/**
 * A flag's text as a value of `f`: numbers from digits, `true`/`false` for booleans, strings as given.
 * Returns the value, or a message "expected ..., got "..."" for the command line parser to report.
 */
export function parseFlagValue<T>(f: Field<T>, text: string): { value: T } | { problem: string } {
  const trimmed = text.trim();
  const candidates: unknown[] = [trimmed];
  if (/^-?\d+(\.\d+)?$/.test(trimmed)) candidates.unshift(Number(trimmed));
  if (trimmed === 'true' || trimmed === 'false') candidates.unshift(trimmed === 'true');
  for (const c of candidates) {
    if (f.accepts?.(c) === true) return { value: c as T };
    const r = f.schema.safeParse(c);
    if (r.success) return { value: r.data };
  }
  const got = f.secret ? SECRET : JSON.stringify(text);
  return { problem: `expected ${expectedOf(f as Field<unknown>)}, got ${got}` };
}

/** One row of an options table: a key (a field path or a flag), its field, and optional overrides. */
export interface TableRow {
  key: string;
  field: Field<unknown>;
  /** The `for` column (which roles take it). */
  for?: string;
  /** What to show as accepted instead of the field's expected value (a flag that takes none). */
  accepts?: string;
}

/** A Markdown table of fields: `| key | accepts | default | meaning |` (and a `for` column when asked). */
export function renderTable(
  rows: TableRow[],
  columns: { key: string; for?: string } = { key: 'field' },
): string {
  const head = [columns.key, ...(columns.for ? [columns.for] : []), 'accepts', 'default', 'meaning'];
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const r of rows) {
    const cells = [
      `\`${r.key}\``,
      ...(columns.for ? [r.for ?? 'all'] : []),
      r.accepts ?? expectedOf(r.field),
      defaultOf(r.field),
      r.field.description,
    ];
    lines.push(`| ${cells.map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Rows for a table of fields, a group's fields under `name.` after the group itself. */
export function rowsOf(fields: Fields, prefix = ''): TableRow[] {
  const rows: TableRow[] = [];
  for (const [key, f] of Object.entries(fields)) {
    rows.push({ key: `${prefix}${key}`, field: f as Field<unknown> });
    if (f.fields) rows.push(...rowsOf(f.fields, `${prefix}${key}.`));
  }
  return rows;
}
