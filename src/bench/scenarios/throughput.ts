/**
 * Scenario `throughput`: a host with M masters and W workers (default 2 and 8, capacity 4, as
 * `runtime --masters 2 --workers 8` runs them), N no-op tasks submitted by a separate Submitter (its own
 * session, in the measurement process's main thread) with submitMany() — batched multis with the
 * submitter's own backpressure — as fast as the farm accepts them.
 *
 * Figures, each repeat a fresh process:
 *   tasks/s            N ÷ (first submit sent, client clock → last status created, its znode's ctime on
 *                      the ZooKeeper server; same machine, same clock, 1 ms resolution)
 *   ZK requests/task   requests sent during the run by every role thread plus the submitter's client
 *                      (a multi counts once), ÷ N; the harness's own admin session is not counted
 *   CPU                the measurement process (role threads + submitter) and the ZooKeeper java
 *                      process, utime+stime over the same window, per 1000 tasks
 *   host start         Host.start() until a leader and every worker are registered
 * Then every task is checked to have exactly one status (see invariants.ts).
 */
import type { BenchContext } from '../context.js';
import { type BenchIo, describeFarmState, sleep, startFarm, waitForStatusCount } from '../farm-fixture.js';
import { checkFarm, summaryOf } from '../invariants.js';
import { cpuSince, cpuSnapshot, rssMb } from '../proc.js';
import { monotonicUs, writeProfileWindow } from '../profile-summary.js';
import { num, percentiles, sig, spread, spreadCells } from '../stats.js';
import type {
  CpuFigures,
  FarmCheckSummary,
  FarmJob,
  FarmResult,
  FarmShape,
  ScenarioReport,
  Table,
} from '../types.js';

/** CPU time of the process's other threads: V8's compiler and GC helpers, libuv's pool. */
function otherThreadsMs(cpu: CpuFigures): number {
  return cpu.processMs - cpu.mainThreadMs - (cpu.mastersMs ?? Number.NaN) - (cpu.workersMs ?? Number.NaN);
}

/** How long a farm run may take before it counts as stuck: at least 50 tasks/s, plus 30 s. */
export const farmWaitMs = (tasks: number) => Math.min(15 * 60_000, 30_000 + tasks * 20);

export function farmJob(ctx: BenchContext, shape: FarmShape, tasks: number, name: string): FarmJob {
  return { kind: 'farm', zk: ctx.target(name), shape, tasks, timeoutMs: farmWaitMs(tasks) };
}

export function describeFarm(r: FarmResult): string {
  return `${num(r.tasksPerSecond)} tasks/s, ${sig(r.zkRequests.perTask)} ZK req/task${r.check.ok ? '' : `, INVARIANTS BROKEN: ${r.check.problems.join('; ')}`}`;
}

/** One farm measurement in a fresh process. */
export function measureFarmOnce(
  ctx: BenchContext,
  shape: FarmShape,
  tasks: number,
  label: string,
  name = 'throughput',
): Promise<FarmResult> {
  const job = farmJob(ctx, shape, tasks, name);
  return ctx.measure<FarmResult>(job, label, job.timeoutMs + 120_000, describeFarm);
}

export function farmProblems(runs: Array<{ check: FarmCheckSummary }>): string[] {
  return runs.flatMap((r, i) => r.check.problems.map((p) => `run ${i + 1}: ${p}`));
}

export function throughputReport(
  ctx: BenchContext,
  runs: FarmResult[],
  failures: string[] = [],
): Omit<ScenarioReport, 'startedAt' | 'durationMs'> {
  const shape = ctx.defaultShape;
  const tasks = ctx.opts.preset.throughput.tasks;
  const s = {
    tasksPerSecond: spread(runs.map((r) => r.tasksPerSecond)),
    requestsPerTask: spread(runs.map((r) => r.zkRequests.perTask)),
    hostCpuMsPer1000: spread(runs.map((r) => (r.cpu.processMs / r.tasks) * 1000)),
    submitterCpuMsPer1000: spread(runs.map((r) => (r.cpu.mainThreadMs / r.tasks) * 1000)),
    mastersCpuMsPer1000: spread(runs.map((r) => ((r.cpu.mastersMs ?? Number.NaN) / r.tasks) * 1000)),
    workersCpuMsPer1000: spread(runs.map((r) => ((r.cpu.workersMs ?? Number.NaN) / r.tasks) * 1000)),
    otherCpuMsPer1000: spread(runs.map((r) => (otherThreadsMs(r.cpu) / r.tasks) * 1000)),
    zkCpuMsPer1000: spread(runs.map((r) => (r.cpu.serverMs / r.tasks) * 1000)),
    hostStartMs: spread(runs.map((r) => r.hostStartMs)),
    submitMs: spread(runs.map((r) => r.submitMs)),
    rssMb: spread(runs.map((r) => r.rssMb)),
    latencyP50: spread(runs.map((r) => r.latencyUnderLoad?.p50 ?? Number.NaN)),
    latencyP99: spread(runs.map((r) => r.latencyUnderLoad?.p99 ?? Number.NaN)),
  };
  const ceiling = ctx.shared.ceiling;
  const summary: Record<string, unknown> = { ...s };
  const rows: Table['rows'] = [
    ['tasks/s (first submit → last status)', ...spreadCells(s.tasksPerSecond, (n) => num(n))],
    ['ZooKeeper requests per task', ...spreadCells(s.requestsPerTask)],
    ['host process CPU ms per 1000 tasks', ...spreadCells(s.hostCpuMsPer1000, (n) => num(n))],
    ['  of which main thread (submitter)', ...spreadCells(s.submitterCpuMsPer1000, (n) => num(n))],
    ['  of which master threads', ...spreadCells(s.mastersCpuMsPer1000, (n) => num(n))],
    ['  of which worker threads', ...spreadCells(s.workersCpuMsPer1000, (n) => num(n))],
    [
      '  of which other threads (V8 compiler and GC helpers, libuv)',
      ...spreadCells(s.otherCpuMsPer1000, (n) => num(n)),
    ],
    ['ZooKeeper CPU ms per 1000 tasks', ...spreadCells(s.zkCpuMsPer1000, (n) => num(n))],
    ['submit phase ms (submitMany returned)', ...spreadCells(s.submitMs, (n) => num(n))],
    ['status ctime − task ctime p50 ms', ...spreadCells(s.latencyP50, (n) => num(n))],
    ['status ctime − task ctime p99 ms', ...spreadCells(s.latencyP99, (n) => num(n))],
    ['host start ms (until leader + workers up)', ...spreadCells(s.hostStartMs, (n) => num(n))],
    ['process RSS MB at the end', ...spreadCells(s.rssMb, (n) => num(n))],
  ];
  if (ceiling) {
    const single = spread(runs.map((r) => r.tasksPerSecond / ceiling.single.perSecond));
    const multi = spread(runs.map((r) => r.tasksPerSecond / ceiling.multi.perSecond));
    summary['ratioToSingleCeiling'] = single;
    summary['ratioToMultiCeiling'] = multi;
    rows.push([`farm ÷ ceiling (${ceiling.single.variant})`, ...spreadCells(single, (n) => `${sig(n)}x`)]);
    rows.push([`farm ÷ ceiling (${ceiling.multi.variant})`, ...spreadCells(multi, (n) => `${sig(n)}x`)]);
  }
  const problems = [...failures, ...farmProblems(runs)];
  return {
    scenario: 'throughput',
    title: 'Farm throughput',
    params: { shape, tasks, repeats: runs.length, handler: 'noop' },
    summary,
    runs,
    tables: [
      {
        title: `throughput: ${shape.masters} masters, ${shape.workers} workers × capacity ${shape.capacity}, ${num(tasks)} no-op tasks`,
        columns: ['figure', 'min', 'median', 'max'],
        rows,
        notes: [
          `${runs.length} repeat(s), each a fresh process. Re-executions: ${runs.reduce((n, r) => n + r.check.reruns, 0)}. ` +
            (problems.length
              ? `PROBLEMS: ${problems.join('; ')}`
              : 'Invariants: every task has exactly one status.'),
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

export async function measureFarm(job: FarmJob, io: BenchIo): Promise<FarmResult> {
  const farm = await startFarm(job.zk, job.shape, io);
  try {
    const tasks = Array.from({ length: job.tasks }, () => ({ handler: 'noop' }));
    await sleep(300, io.signal);
    const sub0 = farm.submitterRequests();
    const roles0 = await farm.roleCounters();
    const cpu0 = cpuSnapshot(job.zk.pid);
    const us0 = monotonicUs();
    const t0 = Date.now();
    // The wait stops early when submitting fails, so a failure is reported at once.
    const waitAbort = new AbortController();
    io.signal.addEventListener('abort', () => waitAbort.abort(), { once: true });
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
    const [ids] = await Promise.all([
      submitting,
      waitForStatusCount(farm.admin, job.tasks, job.timeoutMs, { ...io, signal: waitAbort.signal }).catch(
        async (err) => {
          if (io.signal.aborted || waitAbort.signal.aborted) throw err;
          throw new Error(`${(err as Error).message}. Farm state: ${await describeFarmState(farm)}`);
        },
      ),
    ]);
    const cpu = cpuSince(cpu0, job.zk.pid);
    writeProfileWindow(us0, monotonicUs());
    const roles1 = await farm.roleCounters();
    const sub = farm.submitterRequests() - sub0;
    const rss = rssMb();
    const check = await checkFarm(farm.admin, ids, { workdir: farm.workdir });
    let last = 0;
    const underLoad: number[] = [];
    for (const r of check.records.values()) {
      last = Math.max(last, r.ctime);
      if (typeof r.status.submittedAt === 'number') underLoad.push(r.ctime - r.status.submittedAt);
    }
    const elapsedMs = Math.max(1, last - t0);
    const masters = roles1.masters - roles0.masters;
    const workers = roles1.workers - roles0.workers;
    const total = masters + workers + sub;
    return {
      shape: job.shape,
      tasks: job.tasks,
      hostStartMs: farm.hostStartMs,
      elapsedMs,
      tasksPerSecond: (job.tasks / elapsedMs) * 1000,
      submitMs,
      zkRequests: { submitter: sub, masters, workers, total, perTask: total / job.tasks },
      cpu: {
        ...cpu,
        mastersMs: Math.round(roles1.mastersCpuMs - roles0.mastersCpuMs),
        workersMs: Math.round(roles1.workersCpuMs - roles0.workersCpuMs),
      },
      ...(underLoad.length ? { latencyUnderLoad: percentiles(underLoad) } : {}),
      rssMb: rss,
      check: summaryOf(check),
    };
  } finally {
    await farm.close();
  }
}
