/**
 * A small SVG line chart (no dependencies): series of points with min–max bars, horizontal reference
 * lines (a ceiling, a peer), linear or log axes. The output is a standalone SVG file that browsers and
 * GitHub render as is.
 */

export interface ChartPoint {
  x: number;
  y: number;
  /** Error bar from `lo` to `hi` (e.g. min and max over repeats). */
  lo?: number;
  hi?: number;
}

export interface ChartSeries {
  name: string;
  color: string;
  points: ChartPoint[];
  dashed?: boolean;
}

export interface RefLine {
  y: number;
  label: string;
  color: string;
}

export interface ChartSpec {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  refLines?: RefLine[];
  logX?: boolean;
  logY?: boolean;
  /** Where to put x ticks (default: every x of the data). */
  xTicks?: number[];
  /** Upper end of a linear y axis (default: the data and reference lines, plus 10%). */
  yMax?: number;
  /** Lines of small print under the chart. */
  notes?: string[];
  width?: number;
  height?: number;
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const r1 = (n: number) => Math.round(n * 10) / 10;

function label(n: number): string {
  if (n >= 100_000) return `${Math.round(n / 1000)}k`;
  if (n >= 1000) return `${r1(n / 1000)}k`;
  if (n >= 1 || n === 0) return String(Math.round(n * 100) / 100);
  return String(Number(n.toPrecision(2)));
}

/** About five round ticks from 0 to max (steps of 1, 2, 2.5 or 5 × 10^k). */
function linearTicks(max: number): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let i = 0; i * step <= max + step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

export function lineChart(spec: ChartSpec): string {
  const W = spec.width ?? 760;
  const H = spec.height ?? 440;
  const notes = spec.notes ?? [];
  const m = { left: 72, right: 210, top: spec.subtitle ? 62 : 46, bottom: 56 + notes.length * 15 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const pts = spec.series
    .flatMap((s) => s.points)
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = [...pts.map((p) => p.x), ...(spec.xTicks ?? [])];
  const ys = pts.flatMap((p) => [p.y, p.hi ?? p.y, p.lo ?? p.y]).filter(Number.isFinite);
  const refs = (spec.refLines ?? []).filter((r) => Number.isFinite(r.y) && r.y > 0);

  // x scale
  const fx = spec.logX ? Math.log2 : (v: number) => v;
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (!Number.isFinite(x0)) [x0, x1] = [0, 1];
  if (x0 === x1) [x0, x1] = spec.logX ? [x0 / 2, x1 * 2] : [x0 - 1, x1 + 1];
  const padX = (fx(x1) - fx(x0)) * 0.06;
  const sx = (v: number) => m.left + ((fx(v) - fx(x0) + padX) / (fx(x1) - fx(x0) + 2 * padX)) * pw;

  // y scale
  let yTicks: number[];
  let sy: (v: number) => number;
  const offChart: RefLine[] = [];
  if (spec.logY) {
    const lo = Math.max(0.1, Math.min(...ys.filter((v) => v > 0), ...refs.map((r) => r.y)));
    const hi = Math.max(1, ...ys, ...refs.map((r) => r.y));
    const e0 = Math.floor(Math.log10(lo));
    const e1 = Math.max(e0 + 1, Math.ceil(Math.log10(hi)));
    yTicks = [];
    // 1-2-5 steps when the axis spans few decades, decades otherwise.
    const steps = e1 - e0 <= 3 ? [1, 2, 5] : [1];
    for (let e = e0; e <= e1; e++)
      for (const k of steps) if (k * 10 ** e <= 10 ** e1) yTicks.push(k * 10 ** e);
    sy = (v: number) => m.top + ph - ((Math.log10(Math.max(v, 10 ** e0)) - e0) / (e1 - e0)) * ph;
  } else {
    const dataMax = Math.max(0, ...ys);
    const shown = refs.filter((r) => spec.yMax === undefined || r.y <= spec.yMax);
    const top = spec.yMax ?? Math.max(dataMax, ...shown.map((r) => r.y)) * 1.1;
    yTicks = linearTicks(top || 1);
    const yTop = Math.max(top, yTicks.at(-1)!);
    sy = (v: number) => m.top + ph - (v / yTop) * ph;
    for (const r of refs) if (r.y > yTop) offChart.push(r);
  }

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${m.left}" y="24" font-size="16" font-weight="bold" fill="#222">${esc(spec.title)}</text>`,
  );
  if (spec.subtitle) out.push(`<text x="${m.left}" y="44" fill="#555">${esc(spec.subtitle)}</text>`);
  // grid and y axis
  for (const t of yTicks) {
    const y = r1(sy(t));
    out.push(`<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${m.left - 8}" y="${y + 4}" text-anchor="end" fill="#444">${esc(label(t))}</text>`);
  }
  // x axis
  const xTicks = spec.xTicks ?? [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
  for (const t of xTicks) {
    const x = r1(sx(t));
    out.push(`<line x1="${x}" y1="${m.top + ph}" x2="${x}" y2="${m.top + ph + 5}" stroke="#444"/>`);
    out.push(
      `<text x="${x}" y="${m.top + ph + 19}" text-anchor="middle" fill="#444">${esc(label(t))}</text>`,
    );
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(
    `<text x="${m.left + pw / 2}" y="${m.top + ph + 40}" text-anchor="middle" fill="#222">${esc(spec.xLabel)}</text>`,
  );
  out.push(
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#222">${esc(spec.yLabel)}${spec.logY ? ' (log scale)' : ''}</text>`,
  );
  // reference lines
  const legend: Array<{ name: string; color: string; dashed: boolean; ref: boolean }> = [];
  for (const r of refs) {
    if (offChart.includes(r)) continue;
    const y = r1(sy(r.y));
    out.push(
      `<line x1="${m.left}" y1="${y}" x2="${m.left + pw}" y2="${y}" stroke="${r.color}" stroke-width="2" stroke-dasharray="7 4"/>`,
    );
    legend.push({ name: `${r.label}: ${label(r.y)}`, color: r.color, dashed: true, ref: true });
  }
  // series
  for (const s of spec.series) {
    const ps = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    if (ps.length === 0) continue;
    for (const p of ps) {
      if (
        p.lo !== undefined &&
        p.hi !== undefined &&
        Number.isFinite(p.lo) &&
        Number.isFinite(p.hi) &&
        p.hi > p.lo
      ) {
        const x = r1(sx(p.x));
        const [ylo, yhi] = [r1(sy(p.lo)), r1(sy(p.hi))];
        out.push(
          `<line x1="${x}" y1="${ylo}" x2="${x}" y2="${yhi}" stroke="${s.color}" stroke-width="1.5"/>`,
        );
        out.push(
          `<line x1="${x - 4}" y1="${ylo}" x2="${x + 4}" y2="${ylo}" stroke="${s.color}" stroke-width="1.5"/>`,
        );
        out.push(
          `<line x1="${x - 4}" y1="${yhi}" x2="${x + 4}" y2="${yhi}" stroke="${s.color}" stroke-width="1.5"/>`,
        );
      }
    }
    const path = ps.map((p) => `${r1(sx(p.x))},${r1(sy(p.y))}`).join(' ');
    out.push(
      `<polyline points="${path}" fill="none" stroke="${s.color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`,
    );
    for (const p of ps) {
      out.push(
        `<circle cx="${r1(sx(p.x))}" cy="${r1(sy(p.y))}" r="4" fill="${s.color}"><title>${esc(`${s.name}: ${label(p.x)} → ${label(p.y)}`)}</title></circle>`,
      );
    }
    legend.push({ name: s.name, color: s.color, dashed: s.dashed ?? false, ref: false });
  }
  // legend
  let ly = m.top + 8;
  const lx = m.left + pw + 16;
  for (const l of legend) {
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 26}" y2="${ly}" stroke="${l.color}" stroke-width="${l.ref ? 2 : 2.5}"${l.dashed ? ` stroke-dasharray="${l.ref ? '7 4' : '5 4'}"` : ''}/>`,
    );
    out.push(`<text x="${lx + 32}" y="${ly + 4}" fill="#222">${esc(l.name)}</text>`);
    ly += 20;
  }
  for (const r of offChart) {
    out.push(`<text x="${lx}" y="${ly + 4}" fill="${r.color}">${esc(`↑ ${r.label}: ${label(r.y)}`)}</text>`);
    out.push(`<text x="${lx}" y="${ly + 18}" fill="#777">(above this chart)</text>`);
    ly += 36;
  }
  notes.forEach((n, i) => {
    out.push(
      `<text x="${m.left}" y="${H - notes.length * 15 + i * 15 + 2}" fill="#666" font-size="11">${esc(n)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
