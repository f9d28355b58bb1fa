/**
 * Small statistics and table formatting for the benchmark reports.
 *
 * Percentiles use the nearest-rank method: p-th percentile = the smallest value with at least p% of the
 * values at or below it (sorted[ceil(p/100 · n) − 1]); no interpolation, so every figure is a value
 * that was measured.
 */
import type { Percentiles, Spread, Table } from './types.js';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
    count: sorted.length,
  };
}

/** min / median / max (the median of an even count is the mean of the middle two). */
export function spread(values: readonly number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { min: Number.NaN, median: Number.NaN, max: Number.NaN, n: 0 };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { min: v[0]!, median, max: v.at(-1)!, n: v.length };
}

/** A number for a table: thousands separated, `digits` decimals, `–` for NaN. */
export function num(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A figure with few significant digits: 0.0123, 1.23, 12.3, 1,234. */
export function sig(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 100) return num(n, 0);
  if (a >= 10) return num(n, 1);
  if (a >= 1) return num(n, 2);
  return n.toPrecision(2);
}

export const ratio = (a: number, b: number): number => (b > 0 && Number.isFinite(a) ? a / b : Number.NaN);

/** `1.23x` */
export const times = (r: number): string => (Number.isFinite(r) ? `${sig(r)}x` : '–');

/** Cells `min`, `median`, `max` of a spread. */
export function spreadCells(s: Spread, format: (n: number) => string = (n) => sig(n)): string[] {
  return [format(s.min), format(s.median), format(s.max)];
}

/** A table as aligned text for the terminal. */
export function renderText(table: Table): string {
  const cells = [table.columns, ...table.rows.map((r) => r.map(String))];
  const widths = table.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = table.columns.map((_, i) =>
    table.rows.every((r) => /^[-–\d.,x%<>≤ ()]*$/.test(String(r[i] ?? ''))),
  );
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [table.title, line(table.columns), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of cells.slice(1)) out.push(line(r));
  for (const n of table.notes ?? []) out.push(`  ${n}`);
  return out.join('\n');
}

/** A table as GitHub Markdown. */
export function renderMarkdown(table: Table): string {
  const esc = (s: string | number) => String(s).replace(/\|/g, '\\|');
  const numeric = table.columns.map((_, i) =>
    table.rows.every((r) => /^[-–\d.,x%<>≤ ()]*$/.test(String(r[i] ?? ''))),
  );
  const out = [
    `| ${table.columns.map(esc).join(' | ')} |`,
    `| ${numeric.map((n) => (n ? '---:' : '---')).join(' | ')} |`,
    ...table.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ];
  if (table.notes?.length) out.push('', ...table.notes.map((n) => `${n}  `));
  return out.join('\n');
}

/** `median` or `median (min–max)` when there were repeats. */
export function cell(s: Spread, format: (n: number) => string = (n) => num(n)): string {
  if (s.n <= 1 || s.min === s.max) return format(s.median);
  return `${format(s.median)} (${format(s.min)}–${format(s.max)})`;
}
