/**
 * Scenario `peer`: BullMQ on Redis, the job queue Node users pick, doing the same work in the same run:
 * the same number of no-op jobs, the same total concurrency (as many BullMQ Workers as the farm has
 * workers, each with `concurrency` = the farm's capacity, e.g. 8 × 4 = 32), all in one fresh process
 * as the farm's roles are, producer included. Jobs are added with Queue.addBulk in chunks; completed
 * jobs are kept (BullMQ's default, like the farm's /status).
 *
 * Two passes on the same Queue and Workers, as the farm gets (see passes.ts): N jobs, then N more once
 * the first N completed. Figure, per pass: jobs/s = N ÷ (first addBulk sent → the pass's last
 * `completed` event, client clock). The farm and BullMQ measurements alternate (farm 1, BullMQ 1,
 * farm 2, ...) so both see the same machine load, and the headline is the ratio farm tasks/s ÷ BullMQ
 * jobs/s, per pair and as median ÷ median, for each pass.
 * Checks: every job of every pass completed exactly once (processor calls and completed events counted
 * per pass, and the queue's counts).
 */
import type { BenchContext } from '../context.js';
import { type BenchIo, sleep, throwIfAborted } from '../farm-fixture.js';
import { PASS_NAMES, PASS_SHORT, type PassName, passesNote, passLabel, passOf } from '../passes.js';
import { cpuSince, cpuSnapshot, rssMb } from '../proc.js';
import { type RedisServer, redisCommand, redisInfo } from '../redis.js';
import { num, ratio, sig, spread, spreadCells } from '../stats.js';
import type {
  BullmqJob,
  BullmqPass,
  BullmqResult,
  FarmPass,
  FarmResult,
  ScenarioReport,
  Spread,
  Table,
} from '../types.js';
import { farmWaitMs } from './throughput.js';

export function describeBull(r: BullmqResult): string {
  const warm = r.warm ? `, steady state ${num(r.warm.jobsPerSecond)} jobs/s` : '';
  return `${num(r.jobsPerSecond)} jobs/s${r.warm ? ' cold' : ''}${warm}${r.check.ok ? '' : `, CHECK FAILED: ${r.check.problems.join('; ')}`}`;
}

export function measureBullOnce(ctx: BenchContext, redis: RedisServer, label: string): Promise<BullmqResult> {
  const shape = ctx.defaultShape;
  const jobs = ctx.opts.preset.throughput.tasks;
  const job: BullmqJob = {
    kind: 'bullmq',
    redis: { port: redis.port, pid: redis.pid },
    workers: shape.workers,
    concurrency: shape.capacity,
    jobs,
    passes: 2,
    chunk: 1000,
    timeoutMs: farmWaitMs(jobs),
  };
  return ctx.measure<BullmqResult>(job, label, job.passes * job.timeoutMs + 60_000, describeBull);
}

const whole = (n: number) => num(n);
const per1000 = (ms: number, n: number) => (ms / n) * 1000;

/** A figure of one pass of a pair: its summary key, its row, how it is computed from the pair's passes. */
interface PeerFigure {
  key: string;
  label: string;
  /** The row names the pass in full (the throughput figures), not just `cold`/`steady state`. */
  long?: true;
  value(farm: FarmPass, bull: BullmqPass, tasks: number, jobs: number): number;
  format(n: number): string;
}

const PEER_FIGURES: PeerFigure[] = [
  {
    key: 'farmTasksPerSecond',
    label: 'zkfarm tasks/s',
    long: true,
    value: (f) => f.tasksPerSecond,
    format: whole,
  },
  {
    key: 'bullmqJobsPerSecond',
    label: 'BullMQ jobs/s',
    long: true,
    value: (_, b) => b.jobsPerSecond,
    format: whole,
  },
  {
    key: 'ratioPerPair',
    label: 'zkfarm ÷ BullMQ (per alternating pair)',
    long: true,
    value: (f, b) => ratio(f.tasksPerSecond, b.jobsPerSecond),
    format: (n) => `${sig(n)}x`,
  },
  {
    key: 'farmCpuMsPer1000',
    label: 'zkfarm process CPU ms / 1000',
    value: (f, _, n) => per1000(f.cpu.processMs, n),
    format: whole,
  },
  {
    key: 'bullmqCpuMsPer1000',
    label: 'BullMQ process CPU ms / 1000',
    value: (_, b, __, n) => per1000(b.cpu.processMs, n),
    format: whole,
  },
  {
    key: 'zkCpuMsPer1000',
    label: 'ZooKeeper CPU ms / 1000',
    value: (f, _, n) => per1000(f.cpu.serverMs, n),
    format: whole,
  },
  {
    key: 'redisCpuMsPer1000',
    label: 'redis-server CPU ms / 1000',
    value: (_, b, __, n) => per1000(b.cpu.serverMs, n),
    format: whole,
  },
  {
    key: 'requestsPerTask',
    label: 'ZooKeeper requests per task',
    value: (f) => f.zkRequests.perTask,
    format: sig,
  },
  {
    key: 'redisCommandsPerJob',
    label: 'Redis commands per job',
    value: (_, b) => b.redisCommandsPerJob,
    format: sig,
  },
];

/** Every figure of one pass over the pairs where both sides ran it, and median ÷ median. */
function pairSummary(
  pairs: Array<[FarmResult, BullmqResult]>,
  pass: PassName,
): { spreads: Record<string, Spread>; ratioOfMedians: number } | undefined {
  const both = pairs.flatMap(([f, b]) => {
    const fp = passOf<FarmPass>(f, pass);
    const bp = passOf<BullmqPass>(b, pass);
    return fp && bp ? [{ fp, bp, tasks: f.tasks, jobs: b.jobs }] : [];
  });
  if (both.length === 0) return undefined;
  const out: Record<string, Spread> = {};
  for (const fig of PEER_FIGURES)
    out[fig.key] = spread(both.map(({ fp, bp, tasks, jobs }) => fig.value(fp, bp, tasks, jobs)));
  return {
    spreads: out,
    ratioOfMedians: ratio(out['farmTasksPerSecond']!.median, out['bullmqJobsPerSecond']!.median),
  };
}

/** `pairs`: the farm and BullMQ measurements of each repeat that both completed, in order. */
export function peerReport(
  ctx: BenchContext,
  pairs: Array<[FarmResult, BullmqResult]>,
  redis: RedisServer,
  bullmqVersion: string,
  failures: string[] = [],
): Omit<ScenarioReport, 'startedAt' | 'durationMs'> {
  const farmRuns = pairs.map((p) => p[0]);
  const bullRuns = pairs.map((p) => p[1]);
  const shape = ctx.defaultShape;
  const jobs = ctx.opts.preset.throughput.tasks;
  const cold = pairSummary(pairs, 'cold')!;
  const warm = pairSummary(pairs, 'warm');
  const summaries = { cold, warm };
  const rows: Table['rows'] = [];
  for (const fig of PEER_FIGURES) {
    for (const pass of PASS_NAMES) {
      const s = summaries[pass];
      if (s)
        rows.push([
          `${fig.label}, ${fig.long ? passLabel(pass, jobs) : PASS_SHORT[pass]}`,
          ...spreadCells(s.spreads[fig.key]!, fig.format),
        ]);
    }
  }
  const problems = [
    ...failures,
    ...bullRuns.flatMap((r, i) => r.check.problems.map((p) => `BullMQ run ${i + 1}: ${p}`)),
  ];
  const durability =
    redis.persistence === 'none'
      ? 'no persistence (nothing on disk)'
      : redis.persistence === 'always'
        ? 'AOF, fsync before every reply (appendfsync always: ZooKeeper-like durability)'
        : 'AOF, fsync once a second (appendfsync everysec: Redis’ recommended setting)';
  const headline = warm
    ? `steady state ${sig(warm.ratioOfMedians)}x, cold ${sig(cold.ratioOfMedians)}x`
    : `${sig(cold.ratioOfMedians)}x`;
  return {
    scenario: 'peer',
    title: 'zkfarm vs BullMQ on Redis',
    params: {
      jobs,
      passes: warm ? 2 : 1,
      workers: shape.workers,
      concurrency: shape.capacity,
      addBulkChunk: 1000,
      redis: { version: redis.version, persistence: redis.persistence, args: redis.args },
      bullmq: bullmqVersion,
      repeats: bullRuns.length,
    },
    // The cold pass keeps the fields the summary always had; the steady state is under `warm`.
    summary: {
      ...cold.spreads,
      ratioOfMedians: cold.ratioOfMedians,
      ...(warm ? { warm: { ...warm.spreads, ratioOfMedians: warm.ratioOfMedians } } : {}),
    },
    runs: { bullmq: bullRuns, farm: farmRuns },
    tables: [
      {
        title: `peer: zkfarm ${shape.masters}+${shape.workers}×${shape.capacity} vs BullMQ ${shape.workers} workers × concurrency ${shape.capacity}, ${num(jobs)} no-op jobs per pass`,
        columns: ['figure', 'min', 'median', 'max'],
        rows,
        notes: [
          `Headline: zkfarm ÷ BullMQ = ${headline} (median ÷ median). Redis ${redis.version}, ${durability}; BullMQ ${bullmqVersion}.`,
          warm ? passesNote(jobs, 'tasks and jobs', 'the same farm, and the same Queue and Workers,') : '',
          'ZooKeeper fsyncs every write before it answers (forceSync=yes). Neither side writes a file per task: a no-op task has no output directory (taskDirs: on-demand).',
          problems.length
            ? `CHECK FAILED: ${problems.join('; ')}`
            : 'Every BullMQ job of every pass completed exactly once.',
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

async function totalCommands(port: number): Promise<number> {
  return Number((await redisInfo(port, 'stats'))['total_commands_processed'] ?? Number.NaN);
}

/** What the Workers saw of one pass's jobs (each job's data names its pass). */
interface PassTally {
  processed: number;
  completed: number;
  failed: number;
  lastCompletedAt: number;
}

type BullQueue = { addBulk(jobs: Array<{ name: string; data: JobData }>): Promise<unknown> };
interface JobData {
  pass: number;
  i: number;
}

/**
 * One pass: after a short settle, add `job.jobs` no-op jobs in chunks and wait for their `completed`
 * events. CPU and Redis commands are counted over exactly that window.
 */
async function runBullPass(
  queue: BullQueue,
  job: BullmqJob,
  io: BenchIo,
  pass: number,
  tally: PassTally,
): Promise<Omit<BullmqPass, 'completed' | 'processed'>> {
  await sleep(300, io.signal);
  const cmd0 = await totalCommands(job.redis.port);
  const cpu0 = cpuSnapshot(job.redis.pid);
  const t0 = Date.now();
  for (let i = 0; i < job.jobs; i += job.chunk) {
    throwIfAborted(io.signal);
    const n = Math.min(job.chunk, job.jobs - i);
    await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { pass, i: i + k } })));
  }
  const addMs = Date.now() - t0;
  const deadline = t0 + job.timeoutMs;
  const label = job.passes === 1 ? 'jobs done' : `jobs done (pass ${pass + 1} of ${job.passes})`;
  let lastReport = 0;
  while (tally.completed + tally.failed < job.jobs) {
    throwIfAborted(io.signal);
    if (Date.now() > deadline)
      throw new Error(
        `only ${tally.completed} of ${job.jobs} BullMQ jobs of pass ${pass + 1} completed within ${job.timeoutMs} ms`,
      );
    if (Date.now() - lastReport > 250) {
      io.progress(pass * job.jobs + tally.completed, job.passes * job.jobs, label);
      lastReport = Date.now();
    }
    await sleep(10, io.signal);
  }
  const cpu = cpuSince(cpu0, job.redis.pid);
  const cmds = (await totalCommands(job.redis.port)) - cmd0;
  const elapsedMs = Math.max(1, tally.lastCompletedAt - t0);
  return {
    elapsedMs,
    jobsPerSecond: (job.jobs / elapsedMs) * 1000,
    addMs,
    redisCommandsPerJob: cmds / job.jobs,
    cpu,
    rssMb: rssMb(),
  };
}

/** After a BullMQ measurement: its Workers closed (5 s at most), its queue removed, and Redis emptied. */
export async function tearDownBull(
  queue: { obliterate(o: { force: boolean }): Promise<unknown>; close(): Promise<unknown> },
  workers: ReadonlyArray<{ close(force?: boolean): Promise<void> }>,
  port: number,
): Promise<void> {
  await Promise.race([Promise.all(workers.map((w) => w.close(true).catch(() => {}))), sleep(5000)]);
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close().catch(() => {});
  // The next measurement starts on an empty Redis.
  await redisCommand(port, ['FLUSHALL']).catch(() => {});
}

export async function measureBullmq(job: BullmqJob, io: BenchIo): Promise<BullmqResult> {
  const { Queue, Worker } = await import('bullmq');
  const connection = { host: '127.0.0.1', port: job.redis.port, maxRetriesPerRequest: null };
  const name = `bench-${process.pid}-${Date.now()}`;
  const queue = new Queue<JobData>(name, { connection });
  const workers: Array<{ close(force?: boolean): Promise<void>; waitUntilReady(): Promise<unknown> }> = [];
  const tallies: PassTally[] = Array.from({ length: job.passes }, () => ({
    processed: 0,
    completed: 0,
    failed: 0,
    lastCompletedAt: 0,
  }));
  // A job whose data names no pass of this measurement: counted, and a failed check.
  const stray: PassTally = { processed: 0, completed: 0, failed: 0, lastCompletedAt: 0 };
  const tallyOf = (data: JobData | undefined) => tallies[data?.pass ?? -1] ?? stray;
  let duplicates = 0;
  const seen = new Set<string>();
  try {
    await queue.waitUntilReady();
    for (let i = 0; i < job.workers; i++) {
      const w = new Worker<JobData, null>(
        name,
        async (j) => {
          tallyOf(j.data).processed++;
          return null;
        },
        { connection, concurrency: job.concurrency },
      );
      w.on('completed', (j) => {
        if (seen.has(j.id ?? '')) duplicates++;
        seen.add(j.id ?? '');
        const t = tallyOf(j.data);
        t.completed++;
        t.lastCompletedAt = Date.now();
      });
      w.on('failed', (j) => tallyOf(j?.data).failed++);
      w.on('error', () => {});
      workers.push(w);
    }
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    const passes: Array<Omit<BullmqPass, 'completed' | 'processed'>> = [];
    for (let p = 0; p < job.passes; p++) passes.push(await runBullPass(queue, job, io, p, tallies[p]!));
    const counts = await queue.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed');
    const all = job.jobs * job.passes;
    const problems: string[] = [];
    tallies.forEach((t, p) => {
      const of = job.passes === 1 ? '' : `pass ${p + 1}: `;
      if (t.completed !== job.jobs)
        problems.push(`${of}${t.completed} completed events for ${job.jobs} jobs`);
      if (t.processed !== job.jobs)
        problems.push(`${of}the processor ran ${t.processed} times for ${job.jobs} jobs`);
      if (t.failed) problems.push(`${of}${t.failed} jobs failed`);
    });
    if (duplicates) problems.push(`${duplicates} jobs completed twice`);
    if (stray.processed + stray.completed + stray.failed)
      problems.push(`${stray.completed} completed events of jobs that belong to no pass`);
    if (counts['completed'] !== all)
      problems.push(`the queue counts ${counts['completed']} completed jobs for ${all}`);
    const left = (counts['waiting'] ?? 0) + (counts['active'] ?? 0) + (counts['delayed'] ?? 0);
    if (left) problems.push(`${left} jobs still waiting, active or delayed`);
    const [cold, warm] = passes.map((figures, p) => ({
      ...figures,
      completed: tallies[p]!.completed,
      processed: tallies[p]!.processed,
    }));
    const sum = (k: 'completed' | 'processed') => tallies.reduce((n, t) => n + t[k], 0);
    return {
      workers: job.workers,
      concurrency: job.concurrency,
      jobs: job.jobs,
      ...cold!,
      ...(warm ? { warm } : {}),
      check: {
        ok: problems.length === 0,
        problems,
        completed: sum('completed'),
        processed: sum('processed'),
      },
    };
  } finally {
    await tearDownBull(queue, workers, job.redis.port);
  }
}
