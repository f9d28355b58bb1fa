/**
 * Scenario `throughput`: a host with M masters and W workers (default 2 and 8, capacity 4, as
 * `runtime --masters 2 --workers 8` runs them), N no-op tasks submitted by a separate Submitter (its own
 * session, in the measurement process's main thread) with submitMany() — batched multis with the
 * submitter's own backpressure — as fast as the farm accepts them.
 *
 * Two passes on the same farm in the same process (see passes.ts): the first N tasks after start
 * (cold), then N more once the first N had their status (steady state). Each pass has its own figures:
 *   tasks/s            N ÷ (first submit sent, client clock → the pass's last status created, its znode's
 *                      ctime on the ZooKeeper server; same machine, same clock, 1 ms resolution)
 *   ZK requests/task   requests sent during the pass by every role thread plus the submitter's client
 *                      (a multi counts once), ÷ N; the harness's own admin session is not counted
 *   CPU                the measurement process (role threads + submitter) and the ZooKeeper java
 *                      process, utime+stime over the same window, per 1000 tasks
 * and once per farm: host start, Host.start() until a leader and every worker are registered.
 * Then every task of both passes is checked to have exactly one status (see invariants.ts).
 */
import type { BenchContext, CeilingFigures } from '../context.js';
import {
  type BenchIo,
  describeFarmState,
  type Farm,
  sleep,
  startFarm,
  waitForStatusCount,
} from '../farm-fixture.js';
import { checkFarm, type StatusRecord, summaryOf } from '../invariants.js';
import { PASS_NAMES, PASS_SHORT, type PassName, passesNote, passLabel, passOf } from '../passes.js';
import { cpuSince, cpuSnapshot, rssMb } from '../proc.js';
import { monotonicUs, writeProfileWindow } from '../profile-summary.js';
import { num, percentiles, sig, spread, spreadCells } from '../stats.js';
import type {
  CpuFigures,
  FarmCheckSummary,
  FarmJob,
  FarmPass,
  FarmResult,
  FarmShape,
  Passes,
  ScenarioReport,
  Spread,
  Table,
} from '../types.js';

/** CPU time of the process's other threads: V8's compiler and GC helpers, libuv's pool. */
function otherThreadsMs(cpu: CpuFigures): number {
  return cpu.processMs - cpu.mainThreadMs - (cpu.mastersMs ?? Number.NaN) - (cpu.workersMs ?? Number.NaN);
}

/** How long one pass may take before it counts as stuck: at least 50 tasks/s, plus 30 s. */
export const farmWaitMs = (tasks: number) => Math.min(15 * 60_000, 30_000 + tasks * 20);

export function farmJob(
  ctx: BenchContext,
  shape: FarmShape,
  tasks: number,
  name: string,
  passes: Passes = 2,
): FarmJob {
  return { kind: 'farm', zk: ctx.target(name), shape, tasks, passes, timeoutMs: farmWaitMs(tasks) };
}

export function describeFarm(r: FarmResult): string {
  const warm = r.warm ? `, steady state ${num(r.warm.tasksPerSecond)} tasks/s` : '';
  return `${num(r.tasksPerSecond)} tasks/s${r.warm ? ' cold' : ''}${warm}, ${sig(r.zkRequests.perTask)} ZK req/task${r.check.ok ? '' : `, INVARIANTS BROKEN: ${r.check.problems.join('; ')}`}`;
}

/** One farm measurement in a fresh process: `passes` passes of `tasks` tasks on one farm. */
export function measureFarmOnce(
  ctx: BenchContext,
  shape: FarmShape,
  tasks: number,
  label: string,
  name = 'throughput',
  passes: Passes = 2,
): Promise<FarmResult> {
  const job = farmJob(ctx, shape, tasks, name, passes);
  return ctx.measure<FarmResult>(job, label, passes * job.timeoutMs + 120_000, describeFarm);
}

export function farmProblems(runs: Array<{ check: FarmCheckSummary }>): string[] {
  return runs.flatMap((r, i) => r.check.problems.map((p) => `run ${i + 1}: ${p}`));
}

const whole = (n: number) => num(n);
const per1000 = (ms: number | undefined, tasks: number) => ((ms ?? Number.NaN) / tasks) * 1000;

/** A figure of one pass: its summary key, its row in the table, how it is computed and printed. */
interface PassFigure {
  key: string;
  label: string;
  value(p: FarmPass, tasks: number): number;
  format(n: number): string;
  /** The row names the pass in full (`cold (first N after start)`), not just `cold`. */
  long?: true;
  /** A share of the row above it ("of which"): printed right under it, in the same pass. */
  part?: true;
}

const PASS_FIGURES: PassFigure[] = [
  { key: 'tasksPerSecond', label: 'tasks/s', long: true, value: (p) => p.tasksPerSecond, format: whole },
  {
    key: 'requestsPerTask',
    label: 'ZooKeeper requests per task',
    value: (p) => p.zkRequests.perTask,
    format: sig,
  },
  {
    key: 'hostCpuMsPer1000',
    label: 'host process CPU ms per 1000 tasks',
    value: (p, n) => per1000(p.cpu.processMs, n),
    format: whole,
  },
  {
    key: 'submitterCpuMsPer1000',
    label: '  of which main thread (submitter)',
    value: (p, n) => per1000(p.cpu.mainThreadMs, n),
    format: whole,
    part: true,
  },
  {
    key: 'mastersCpuMsPer1000',
    label: '  of which master threads',
    value: (p, n) => per1000(p.cpu.mastersMs, n),
    format: whole,
    part: true,
  },
  {
    key: 'workersCpuMsPer1000',
    label: '  of which worker threads',
    value: (p, n) => per1000(p.cpu.workersMs, n),
    format: whole,
    part: true,
  },
  {
    key: 'otherCpuMsPer1000',
    label: '  of which other threads (V8 compiler and GC helpers, libuv)',
    value: (p, n) => per1000(otherThreadsMs(p.cpu), n),
    format: whole,
    part: true,
  },
  {
    key: 'zkCpuMsPer1000',
    label: 'ZooKeeper CPU ms per 1000 tasks',
    value: (p, n) => per1000(p.cpu.serverMs, n),
    format: whole,
  },
  {
    key: 'submitMs',
    label: 'submit phase ms (submitMany returned)',
    value: (p) => p.submitMs,
    format: whole,
  },
  {
    key: 'latencyP50',
    label: 'status ctime − task ctime p50 ms',
    value: (p) => p.latencyUnderLoad?.p50 ?? Number.NaN,
    format: whole,
  },
  {
    key: 'latencyP99',
    label: 'status ctime − task ctime p99 ms',
    value: (p) => p.latencyUnderLoad?.p99 ?? Number.NaN,
    format: whole,
  },
  { key: 'rssMb', label: 'process RSS MB at the end of the pass', value: (p) => p.rssMb, format: whole },
];

/** The figures as rows: each figure (with its "of which" rows) once per pass, cold first. */
function passRows(
  figures: PassFigure[],
  summaries: Partial<Record<PassName, Record<string, Spread>>>,
  tasks: number,
): Table['rows'] {
  const groups: PassFigure[][] = [];
  for (const f of figures) {
    if (f.part && groups.length) groups.at(-1)!.push(f);
    else groups.push([f]);
  }
  const rows: Table['rows'] = [];
  for (const group of groups) {
    for (const pass of PASS_NAMES) {
      const s = summaries[pass];
      if (!s) continue;
      for (const f of group) {
        const name = f.part ? f.label : `${f.label}, ${f.long ? passLabel(pass, tasks) : PASS_SHORT[pass]}`;
        rows.push([name, ...spreadCells(s[f.key]!, f.format)]);
      }
    }
  }
  return rows;
}

/** Every figure of one pass over the runs (a run without that pass counts for nothing), and the ceiling ratios. */
function passSummary(
  runs: FarmResult[],
  pass: PassName,
  ceiling: CeilingFigures | undefined,
): Record<string, Spread> | undefined {
  const passes = runs.flatMap((r) => {
    const p = passOf<FarmPass>(r, pass);
    return p ? [{ p, tasks: r.tasks }] : [];
  });
  if (passes.length === 0) return undefined;
  const out: Record<string, Spread> = {};
  for (const f of PASS_FIGURES) out[f.key] = spread(passes.map(({ p, tasks }) => f.value(p, tasks)));
  if (ceiling) {
    out['ratioToSingleCeiling'] = spread(passes.map(({ p }) => p.tasksPerSecond / ceiling.single.perSecond));
    out['ratioToMultiCeiling'] = spread(passes.map(({ p }) => p.tasksPerSecond / ceiling.multi.perSecond));
  }
  return out;
}

export function throughputReport(
  ctx: BenchContext,
  runs: FarmResult[],
  failures: string[] = [],
): Omit<ScenarioReport, 'startedAt' | 'durationMs'> {
  const shape = ctx.defaultShape;
  const tasks = ctx.opts.preset.throughput.tasks;
  const ceiling = ctx.shared.ceiling;
  const cold = passSummary(runs, 'cold', ceiling)!;
  const warm = passSummary(runs, 'warm', ceiling);
  const hostStartMs = spread(runs.map((r) => r.hostStartMs));
  // The cold pass keeps the fields the summary always had; the steady state is under `warm`.
  const summary: Record<string, unknown> = { ...cold, hostStartMs, ...(warm ? { warm } : {}) };
  const summaries = { cold, warm };
  const rows: Table['rows'] = [
    ...passRows(PASS_FIGURES, summaries, tasks),
    ['host start ms (until leader + workers up)', ...spreadCells(hostStartMs, whole)],
  ];
  if (ceiling) {
    for (const [key, variant] of [
      ['ratioToSingleCeiling', ceiling.single.variant],
      ['ratioToMultiCeiling', ceiling.multi.variant],
    ] as const) {
      for (const pass of PASS_NAMES) {
        const s = summaries[pass];
        if (s)
          rows.push([
            `farm ÷ ceiling (${variant}), ${PASS_SHORT[pass]}`,
            ...spreadCells(s[key]!, (n) => `${sig(n)}x`),
          ]);
      }
    }
  }
  const problems = [...failures, ...farmProblems(runs)];
  return {
    scenario: 'throughput',
    title: 'Farm throughput',
    params: { shape, tasks, passes: warm ? 2 : 1, repeats: runs.length, handler: 'noop' },
    summary,
    runs,
    tables: [
      {
        title: `throughput: ${shape.masters} masters, ${shape.workers} workers × capacity ${shape.capacity}, ${num(tasks)} no-op tasks per pass`,
        columns: ['figure', 'min', 'median', 'max'],
        rows,
        notes: [
          `${runs.length} repeat(s), each a fresh process. Re-executions: ${runs.reduce((n, r) => n + r.check.reruns, 0)}. ` +
            (problems.length
              ? `PROBLEMS: ${problems.join('; ')}`
              : 'Invariants: every task of every pass has exactly one status.'),
          warm ? passesNote(tasks, 'tasks', 'the same farm') : '',
          'tasks/s = tasks ÷ (first submit sent → last status created), per pass.',
          ceiling
            ? 'The ceiling ratios divide tasks/s by raw creates/s of the same run (see ceiling): a task costs several writes.'
            : '',
        ].filter(Boolean),
      },
    ],
    invariants: { ok: problems.length === 0, problems },
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------------
// In the measurement process
// ---------------------------------------------------------------------------------------------------

/** What one pass measured before the statuses are read: its counters, and the ids it submitted. */
interface PassRun {
  ids: string[];
  /** Client clock when the first submit went out. */
  t0: number;
  submitMs: number;
  zkRequests: FarmPass['zkRequests'];
  cpu: CpuFigures;
  rssMb: number;
  /** The pass's window on the profiler's clock. */
  startUs: number;
  endUs: number;
}

/**
 * One pass: after a short settle, submit `job.tasks` no-op tasks with submitMany() and wait until /status
 * holds `before` + that many nodes. Requests and CPU are counted over exactly that window.
 */
async function runPass(
  farm: Farm,
  job: FarmJob,
  io: BenchIo,
  before: number,
  label: string,
): Promise<PassRun> {
  const tasks = Array.from({ length: job.tasks }, () => ({ handler: 'noop' }));
  await sleep(300, io.signal);
  const sub0 = farm.submitterRequests();
  const roles0 = await farm.roleCounters();
  const cpu0 = cpuSnapshot(job.zk.pid);
  const startUs = monotonicUs();
  const t0 = Date.now();
  // The wait stops early when submitting fails, so a failure is reported at once.
  const waitAbort = new AbortController();
  const onAbort = () => waitAbort.abort();
  io.signal.addEventListener('abort', onAbort, { once: true });
  let submitMs = 0;
  const submitting = farm.submitter.submitMany(tasks).then(
    (ids) => {
      submitMs = Date.now() - t0;
      return ids;
    },
    (err) => {
      waitAbort.abort();
      throw err;
    },
  );
  let ids: string[];
  try {
    [ids] = await Promise.all([
      submitting,
      waitForStatusCount(
        farm.admin,
        before + job.tasks,
        job.timeoutMs,
        { ...io, signal: waitAbort.signal },
        label,
      ).catch(async (err) => {
        if (io.signal.aborted || waitAbort.signal.aborted) throw err;
        throw new Error(`${(err as Error).message}. Farm state: ${await describeFarmState(farm)}`);
      }),
    ]);
  } finally {
    io.signal.removeEventListener('abort', onAbort);
  }
  const cpu = cpuSince(cpu0, job.zk.pid);
  const endUs = monotonicUs();
  const roles1 = await farm.roleCounters();
  const sub = farm.submitterRequests() - sub0;
  const masters = roles1.masters - roles0.masters;
  const workers = roles1.workers - roles0.workers;
  const total = masters + workers + sub;
  return {
    ids,
    t0,
    submitMs,
    zkRequests: { submitter: sub, masters, workers, total, perTask: total / job.tasks },
    cpu: {
      ...cpu,
      mastersMs: Math.round(roles1.mastersCpuMs - roles0.mastersCpuMs),
      workersMs: Math.round(roles1.workersCpuMs - roles0.workersCpuMs),
    },
    rssMb: rssMb(),
    startUs,
    endUs,
  };
}

/** A pass's figures, its end and its latencies taken from the statuses of its own tasks. */
function passFigures(run: PassRun, records: Map<string, StatusRecord>): FarmPass {
  let last = 0;
  const underLoad: number[] = [];
  for (const id of run.ids) {
    const r = records.get(id);
    if (!r) continue;
    last = Math.max(last, r.ctime);
    if (typeof r.status.submittedAt === 'number') underLoad.push(r.ctime - r.status.submittedAt);
  }
  const elapsedMs = Math.max(1, last - run.t0);
  return {
    elapsedMs,
    tasksPerSecond: (run.ids.length / elapsedMs) * 1000,
    submitMs: run.submitMs,
    zkRequests: run.zkRequests,
    cpu: run.cpu,
    ...(underLoad.length ? { latencyUnderLoad: percentiles(underLoad) } : {}),
    rssMb: run.rssMb,
  };
}

export async function measureFarm(job: FarmJob, io: BenchIo): Promise<FarmResult> {
  const farm = await startFarm(job.zk, job.shape, io);
  try {
    const runs: PassRun[] = [];
    for (let p = 0; p < job.passes; p++) {
      const label = job.passes === 1 ? 'tasks done' : `tasks done (pass ${p + 1} of ${job.passes})`;
      runs.push(await runPass(farm, job, io, p * job.tasks, label));
    }
    writeProfileWindow(runs[0]!.startUs, runs.at(-1)!.endUs);
    const check = await checkFarm(
      farm.admin,
      runs.flatMap((r) => r.ids),
      { workdir: farm.workdir },
    );
    const [cold, warm] = runs.map((r) => passFigures(r, check.records));
    return {
      shape: job.shape,
      tasks: job.tasks,
      hostStartMs: farm.hostStartMs,
      ...cold!,
      ...(warm ? { warm } : {}),
      check: summaryOf(check),
    };
  } finally {
    await farm.close();
  }
}
