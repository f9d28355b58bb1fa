/**
 * The benchmark page: `latest.md` (what ran, machine, versions, ZooKeeper settings, every scenario's
 * tables) and its SVG charts, rendered from `latest.json` — so the page can be regenerated from the
 * data alone (`main.ts --render benchmarks/results/latest.json`).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CeilingFigures } from './context.js';
import type { MachineInfo, Versions } from './machine.js';
import { PASS_NAMES, PASS_SHORT, type PassName, passLabel } from './passes.js';
import { num, renderMarkdown, sig } from './stats.js';
import { type ChartSeries, lineChart } from './svg.js';
import type { ScenarioName, ScenarioReport, Spread, Table } from './types.js';

export interface RunRecord {
  /** Format version of this file. */
  format: 1;
  generatedAt: string;
  command: string;
  size: string;
  durationMs: number;
  machine: MachineInfo;
  versions: Versions;
  zookeeper: { settings: Record<string, string>; javaOpts: string[]; warmUp: string };
  redis?: { version: string; persistence: string; args: string[] } | { unavailable: string };
  scenarios: Partial<Record<ScenarioName, ScenarioReport>>;
  /** JSON files of this run, by scenario. */
  files: Partial<Record<ScenarioName, string>>;
  ok: boolean;
}

const DESCRIPTIONS: Record<ScenarioName, string> = {
  ceiling:
    'Raw ZooKeeper writes with the client layer the farm uses: pipelined single creates and creates batched in `multi`, from one and several sessions. The physical limit the farm is measured against.',
  throughput:
    'A host with the default farm (2 masters, 8 workers × capacity 4) runs N no-op tasks submitted by a separate submitter as fast as the farm accepts them, then N more on the same farm once the first N completed. Tasks/s = N ÷ (first submit sent → last status created), for the first N after start (cold) and for the second N (steady state).',
  latency:
    'Submit-to-status latency (status znode ctime − client send time) on an idle farm and under a steady open-loop load at fractions of the capacity measured in this run; BullMQ on Redis runs the same series at the same offered rates, alternating with the farm, as the reference.',
  scaling:
    'Throughput (cold: the first N tasks after start) with 1 to 32 workers against the ZooKeeper ceiling, and the host’s memory (RSS) per role thread.',
  failover:
    'Faults during a steady stream: the leading master crashed (its session left to expire) and stopped gracefully, and the busiest worker crashed. Gap without new statuses, time until every earlier task has its status, re-executions.',
  services:
    'A service of 3 instances of a small HTTP server across two runtime hosts (one master, one worker each); the host running two of them is SIGKILLed. Time until 3 healthy endpoints again on the other host, until the killed host’s copies are gone, and the most copies alive and instances answering at once. Run by name only (`--scenario services`).',
  peer: 'BullMQ on Redis doing the same no-op jobs with the same total concurrency, in the same two passes on one queue (N jobs, then N more), alternating with the farm’s throughput runs; the ratio farm ÷ BullMQ, cold and in the steady state.',
  scale:
    'Run only when named. N no-op tasks queued on a paused queue (half by `runtime submit --file`, half by raw `create -s /tasks/task-`, at once), then drained by the default farm, on a ZooKeeper sized as the embedded one: submit and drain rates, the largest child listing of any node the farm writes, the memory of the leader and of ZooKeeper, and a check that every task has exactly one result.',
  fresh:
    'The farm as a new user meets it: a new `runtime --masters 2 --workers 8` process with the embedded ZooKeeper it starts itself, N no-op tasks from `runtime submit --file` in another process once it says ready, results counted by a separate client; against a new redis-server, a process of BullMQ Workers and a separate producer process. Tasks/s = N ÷ (submitting process started → last result written), per alternating pair.',
  'multi-host':
    'Run only when named. The default farm’s roles in one runtime process and split over two, on a 3-member ZooKeeper ensemble started by the harness, alternating: tasks/s in two passes, each process’s and each member’s CPU per task, ZooKeeper requests, notifications, write transactions and bytes per task from every member’s `mntr`; the capacity model checked against them on this machine, and its prediction for N hosts on 3 and 5 members (benchmarks/README.md, "Capacity model: beyond one machine").',
};

const spreadOf = (x: unknown): Spread | undefined =>
  x && typeof x === 'object' && 'median' in (x as object) ? (x as Spread) : undefined;

type Summary = Record<string, unknown> | undefined;

/** A summary's figures of one pass: its own fields for `cold`, its `warm` object for `warm`. */
const passSummary = (summary: Summary, pass: PassName): Summary =>
  pass === 'cold' ? summary : (summary?.['warm'] as Summary);

function headline(run: RunRecord): Table | undefined {
  const s = run.scenarios;
  const rows: Table['rows'] = [];
  const add = (name: string, sp: Spread | undefined, f: (n: number) => string) => {
    if (sp && sp.n > 0) rows.push([name, f(sp.min), f(sp.median), f(sp.max)]);
  };
  const t = s.throughput?.summary;
  const p = s.peer?.summary;
  const shape = (s.throughput?.params['shape'] ?? s.peer?.params) as
    | { masters?: number; workers?: number; capacity?: number; concurrency?: number }
    | undefined;
  const w = shape?.workers ?? '?';
  const c = shape?.capacity ?? shape?.concurrency ?? '?';
  const n = Number(s.throughput?.params['tasks'] ?? s.peer?.params['jobs']);
  // Steady state first: a farm that has been running; cold is a farm started for one batch.
  const passes = [...PASS_NAMES].reverse();
  const label = (pass: PassName) => (Number.isFinite(n) ? passLabel(pass, n) : PASS_SHORT[pass]);
  const times = (x: number) => `${sig(x)}x`;
  // What a new user meets first: a new runtime and a new BullMQ, the first N tasks after ready.
  const f = s.fresh?.summary;
  const fresh = `fresh (each side started anew, the first ${num(Number(s.fresh?.params['tasks']))} after ready)`;
  add(`zkfarm ÷ BullMQ, ${fresh}`, spreadOf(f?.['ratio']), times);
  for (const pass of passes) {
    add(`zkfarm ÷ BullMQ, ${label(pass)}`, spreadOf(passSummary(p, pass)?.['ratioPerPair']), times);
  }
  add(`zkfarm tasks/s, ${fresh}`, spreadOf(f?.['farmPerSecond']), (x) => num(x));
  add(`BullMQ jobs/s, ${fresh}`, spreadOf(f?.['bullPerSecond']), (x) => num(x));
  for (const pass of passes) {
    add(
      `zkfarm tasks/s (${shape?.masters ?? 2} masters, ${w} workers × ${c}), ${label(pass)}`,
      spreadOf(passSummary(t, pass)?.['tasksPerSecond'] ?? passSummary(p, pass)?.['farmTasksPerSecond']),
      (x) => num(x),
    );
  }
  for (const pass of passes) {
    add(
      `BullMQ jobs/s (${w} workers × concurrency ${c}), ${label(pass)}`,
      spreadOf(passSummary(p, pass)?.['bullmqJobsPerSecond']),
      (x) => num(x),
    );
  }
  // The ceiling ratios and requests per task of the steady state (of the cold pass for a run without one).
  const steady: PassName = passSummary(t, 'warm') ? 'warm' : 'cold';
  const ts = passSummary(t, steady);
  const of = PASS_SHORT[steady];
  add(`zkfarm ÷ ZooKeeper single-create ceiling, ${of}`, spreadOf(ts?.['ratioToSingleCeiling']), times);
  add(`zkfarm ÷ ZooKeeper multi-create ceiling, ${of}`, spreadOf(ts?.['ratioToMultiCeiling']), times);
  add(`ZooKeeper requests per task, ${of}`, spreadOf(ts?.['requestsPerTask']), (x) => sig(x));
  const lat = s.latency?.summary as
    | {
        idle?: { p50?: Spread };
        rates?: Array<{ fraction: number; p99: Spread }>;
        warmRates?: Array<{ fraction: number; p99: Spread }>;
      }
    | undefined;
  // BullMQ's same series in the same run, at the same offered rates: the reference for each figure.
  const bull = (s.latency?.summary as { bullmq?: typeof lat } | undefined)?.bullmq;
  const half = (l: typeof lat, key: 'rates' | 'warmRates') => l?.[key]?.find((r) => r.fraction === 0.5)?.p99;
  add('latency p50 on an idle farm, ms', lat?.idle?.p50, (x) => num(x));
  add('BullMQ latency p50 on an idle queue, same run, ms', bull?.idle?.p50, (x) => num(x));
  add('latency p99 at 50% of capacity, farm just started, ms', half(lat, 'rates'), (x) => num(x));
  add('BullMQ latency p99 at the same rate, queue just started, ms', half(bull, 'rates'), (x) => num(x));
  add('latency p99 at 50% of capacity, warm (the series again), ms', half(lat, 'warmRates'), (x) => num(x));
  add('BullMQ latency p99 at the same rate, warm, ms', half(bull, 'warmRates'), (x) => num(x));
  const rss = (
    s.scaling?.summary as { rss?: Array<{ roles: number; perRoleMb: number }> } | undefined
  )?.rss?.at(-1);
  if (rss) rows.push([`RSS per role thread at ${rss.roles} roles, MB`, '', sig(rss.perRoleMb), '']);
  if (rows.length === 0) return undefined;
  return {
    title: 'Headline figures (measured in this run; min / median / max over repeats)',
    columns: ['figure', 'min', 'median', 'max'],
    rows,
  };
}

/** Write the charts this run has data for; returns their file names. */
export function writeCharts(run: RunRecord, dir: string): Partial<Record<'scaling' | 'latency', string>> {
  const out: Partial<Record<'scaling' | 'latency', string>> = {};
  const scaling = run.scenarios.scaling?.summary as
    | { points?: Array<{ workers: number; tasksPerSecond: Spread }>; ceiling?: CeilingFigures }
    | undefined;
  if (scaling?.points?.length && scaling.ceiling) {
    const series: ChartSeries = {
      name: 'zkfarm (median, min–max)',
      color: '#1f6feb',
      points: scaling.points.map((p) => ({
        x: p.workers,
        y: p.tasksPerSecond.median,
        lo: p.tasksPerSecond.min,
        hi: p.tasksPerSecond.max,
      })),
    };
    // The points are cold (one pass per process), so BullMQ's line is its cold pass too.
    const bull = spreadOf(run.scenarios.peer?.summary?.['bullmqJobsPerSecond']);
    const tasks = Number(run.scenarios.scaling?.params['tasks']);
    const dataMax = Math.max(...series.points.map((p) => p.hi ?? p.y));
    const yMax = Math.max(dataMax, scaling.ceiling.single.perSecond, bull?.median ?? 0) * 1.12;
    const file = 'scaling.svg';
    writeFileSync(
      join(dir, file),
      lineChart({
        title: 'zkfarm throughput by workers, against the ZooKeeper ceiling',
        subtitle: `${Number.isFinite(tasks) ? `first ${num(tasks)} no-op tasks after start (cold)` : 'no-op tasks'} · 2 masters, capacity 4 · ${run.machine.cores} cores · ${run.size} run ${run.generatedAt.slice(0, 10)}`,
        xLabel: 'workers (log scale)',
        yLabel: 'tasks/s',
        logX: true,
        yMax,
        series: [series],
        refLines: [
          { y: scaling.ceiling.single.perSecond, label: 'ZK single creates', color: '#cf222e' },
          { y: scaling.ceiling.multi.perSecond, label: 'ZK creates in multi', color: '#8250df' },
          ...(bull ? [{ y: bull.median, label: 'BullMQ 8×4 jobs/s, cold', color: '#1a7f37' }] : []),
        ],
        notes: [
          `Ceilings: ${scaling.ceiling.single.variant}; ${scaling.ceiling.multi.variant} (creates/s, same run). A task needs several writes.`,
        ],
      }),
    );
    out.scaling = file;
  }
  const latency = run.scenarios.latency?.summary as
    | {
        rates?: Array<{ rate: number; fraction: number; p50: Spread; p95: Spread; p99: Spread; max: Spread }>;
        idle?: { p50: Spread };
        capacity?: number;
      }
    | undefined;
  if (latency?.rates?.length) {
    const pick = (k: 'p50' | 'p95' | 'p99' | 'max') =>
      latency.rates!.map((r) => ({ x: r.rate, y: r[k].median, lo: r[k].min, hi: r[k].max }));
    const file = 'latency.svg';
    writeFileSync(
      join(dir, file),
      lineChart({
        title: 'zkfarm submit-to-status latency by offered load',
        subtitle: `status znode ctime − send time · capacity ${num(latency.capacity)} tasks/s in this run · ${run.size} run ${run.generatedAt.slice(0, 10)}`,
        xLabel: 'offered tasks/s',
        yLabel: 'ms',
        logY: true,
        xTicks: latency.rates.map((r) => r.rate),
        series: [
          { name: 'p50', color: '#1f6feb', points: pick('p50') },
          { name: 'p95', color: '#bf8700', points: pick('p95') },
          { name: 'p99', color: '#cf222e', points: pick('p99') },
          { name: 'max', color: '#6e7781', points: pick('max'), dashed: true },
        ],
        refLines:
          latency.idle?.p50 && Number.isFinite(latency.idle.p50.median)
            ? [{ y: latency.idle.p50.median, label: 'idle farm p50', color: '#1a7f37' }]
            : [],
        notes: [
          'Bars: min–max over repeats. Rates are fractions of the throughput measured in the same run.',
        ],
      }),
    );
    out.latency = file;
  }
  return out;
}

export function renderMarkdownReport(
  run: RunRecord,
  charts: Partial<Record<'scaling' | 'latency', string>>,
): string {
  const v = run.versions;
  const m = run.machine;
  const lines: string[] = [];
  lines.push('# zkfarm benchmark results', '');
  lines.push(
    `Generated ${run.generatedAt} by \`${run.command}\` (${run.size} run, ${Math.round(run.durationMs / 1000)} s). ` +
      'How to read and reproduce these figures: [benchmarks/README.md](../README.md).',
    '',
  );
  lines.push(
    run.ok
      ? 'Every farm run ended with every task having exactly one status, and every BullMQ job completed exactly once.'
      : '**Some checks failed or some scenarios did not complete: see the notes under each scenario.**',
    '',
  );
  const head = headline(run);
  if (head) lines.push(`## ${head.title}`, '', renderMarkdown({ ...head, title: '' }), '');
  lines.push('## What ran', '');
  const ran = Object.values(run.scenarios).map((s) =>
    s.skipped ? `${s.scenario} (skipped: ${s.skipped})` : s.error ? `${s.scenario} (failed)` : s.scenario,
  );
  lines.push(`Scenarios: ${ran.join(', ')}.`, '');
  lines.push('## Machine and versions', '');
  const redis = run.redis && 'version' in run.redis ? run.redis : undefined;
  lines.push(
    renderMarkdown({
      title: '',
      columns: ['', ''],
      rows: [
        ['CPU', `${m.cpuModel}, ${m.cores} cores`],
        ['memory', `${m.memoryGb} GB`],
        ['OS', m.os],
        [
          'load average (1/5/15 min) before → after',
          `${m.loadAverageBefore.join(' ')} → ${m.loadAverageAfter?.join(' ') ?? '?'}`,
        ],
        ['zkfarm', `${v.zkfarm} (${v.commit}), ${v.mode}`],
        ['Node.js', v.node],
        ['Java', v.java],
        ['ZooKeeper', v.zookeeper],
        ['ZooKeeper client', v.zkClient ?? `node-zookeeper-client ${v.nodeZookeeperClient ?? '?'}`],
        [
          'Redis',
          redis
            ? `${redis.version}, persistence: ${redis.persistence}`
            : run.redis && 'unavailable' in run.redis
              ? `not used: ${run.redis.unavailable}`
              : 'not used',
        ],
        ['BullMQ', v.bullmq ?? 'not installed'],
      ],
    }),
    '',
  );
  lines.push('## ZooKeeper settings', '');
  lines.push(
    'One standalone server started by the harness with the same launcher as the tests and `runtime` (src/zk/server.ts), on 127.0.0.1. ' +
      `ZooKeeper's defaults apply where not set (forceSync=yes: every write is fsynced before it is answered). ${run.zookeeper.warmUp}`,
    '',
  );
  const shown = Object.entries(run.zookeeper.settings).filter(([k]) => k !== 'dataDir');
  lines.push(
    '```',
    ...shown.map(([k, val]) => `${k}=${val}`),
    `# JVM: ${run.zookeeper.javaOpts.join(' ')}`,
    '```',
    '',
  );
  for (const s of Object.values(run.scenarios)) {
    lines.push(`## ${s.scenario}: ${s.title}`, '', DESCRIPTIONS[s.scenario], '');
    if (s.skipped) {
      lines.push(`Skipped: ${s.skipped}`, '');
      continue;
    }
    if (s.error) lines.push(`**Failed:** ${s.error.split('\n')[0]}`, '');
    for (const t of s.tables) lines.push(`### ${t.title}`, '', renderMarkdown({ ...t, title: '' }), '');
    if (s.scenario === 'scaling' && charts.scaling) lines.push(`![scaling chart](${charts.scaling})`, '');
    if (s.scenario === 'latency' && charts.latency) lines.push(`![latency chart](${charts.latency})`, '');
    for (const n of s.notes) lines.push(`${n}`, '');
    if (!s.invariants.ok) lines.push(`**Invariant problems:** ${s.invariants.problems.join('; ')}`, '');
    const file = run.files[s.scenario];
    if (file) lines.push(`Raw data: \`${file}\` (not committed; \`latest.json\` holds every run).`, '');
  }
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

/** Write latest.md and the charts of `run` into `dir`; returns the files written. */
export function writeReport(run: RunRecord, dir: string): string[] {
  const charts = writeCharts(run, dir);
  writeFileSync(join(dir, 'latest.md'), renderMarkdownReport(run, charts));
  return ['latest.md', ...Object.values(charts)].map((f) => join(dir, f));
}
