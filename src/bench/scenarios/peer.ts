/**
 * Scenario `peer`: BullMQ on Redis, the job queue Node users pick, doing the same work in the same run:
 * the same number of no-op jobs, the same total concurrency (as many BullMQ Workers as the farm has
 * workers, each with `concurrency` = the farm's capacity, e.g. 8 × 4 = 32), all in one fresh process
 * as the farm's roles are, producer included. Jobs are added with Queue.addBulk in chunks; completed
 * jobs are kept (BullMQ's default, like the farm's /status).
 *
 * Figure: jobs/s = N ÷ (first addBulk sent → last `completed` event, client clock). The farm and
 * BullMQ measurements alternate (farm 1, BullMQ 1, farm 2, ...) so both see the same machine load, and
 * the headline is the ratio farm tasks/s ÷ BullMQ jobs/s, per pair and as median ÷ median.
 * Checks: every job completed exactly once (processor calls, completed events, and the queue's counts).
 */
import type { BenchContext } from '../context.js';
import { type BenchIo, sleep, throwIfAborted } from '../farm-fixture.js';
import { cpuSince, cpuSnapshot, rssMb } from '../proc.js';
import { type RedisServer, redisCommand, redisInfo } from '../redis.js';
import { num, ratio, sig, spread, spreadCells } from '../stats.js';
import type { BullmqJob, BullmqResult, FarmResult, ScenarioReport } from '../types.js';
import { farmWaitMs } from './throughput.js';

export function describeBull(r: BullmqResult): string {
  return `${num(r.jobsPerSecond)} jobs/s${r.check.ok ? '' : `, CHECK FAILED: ${r.check.problems.join('; ')}`}`;
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
    chunk: 1000,
    timeoutMs: farmWaitMs(jobs),
  };
  return ctx.measure<BullmqResult>(job, label, job.timeoutMs + 60_000, describeBull);
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
  const farm = spread(farmRuns.map((r) => r.tasksPerSecond));
  const bull = spread(bullRuns.map((r) => r.jobsPerSecond));
  const pairRatio = spread(pairs.map(([f, b]) => ratio(f.tasksPerSecond, b.jobsPerSecond)));
  const medianRatio = ratio(farm.median, bull.median);
  const bullCpu = spread(bullRuns.map((r) => (r.cpu.processMs / r.jobs) * 1000));
  const redisCpu = spread(bullRuns.map((r) => (r.cpu.serverMs / r.jobs) * 1000));
  const farmCpu = spread(farmRuns.map((r) => (r.cpu.processMs / r.tasks) * 1000));
  const zkCpu = spread(farmRuns.map((r) => (r.cpu.serverMs / r.tasks) * 1000));
  const cmds = spread(bullRuns.map((r) => r.redisCommandsPerJob));
  const reqs = spread(farmRuns.map((r) => r.zkRequests.perTask));
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
  return {
    scenario: 'peer',
    title: 'zkfarm vs BullMQ on Redis',
    params: {
      jobs: ctx.opts.preset.throughput.tasks,
      workers: shape.workers,
      concurrency: shape.capacity,
      addBulkChunk: 1000,
      redis: { version: redis.version, persistence: redis.persistence, args: redis.args },
      bullmq: bullmqVersion,
      repeats: bullRuns.length,
    },
    summary: {
      farmTasksPerSecond: farm,
      bullmqJobsPerSecond: bull,
      ratioPerPair: pairRatio,
      ratioOfMedians: medianRatio,
    },
    runs: { bullmq: bullRuns, farm: farmRuns },
    tables: [
      {
        title: `peer: zkfarm ${shape.masters}+${shape.workers}×${shape.capacity} vs BullMQ ${shape.workers} workers × concurrency ${shape.capacity}, ${num(ctx.opts.preset.throughput.tasks)} no-op jobs`,
        columns: ['figure', 'min', 'median', 'max'],
        rows: [
          ['zkfarm tasks/s', ...spreadCells(farm, (n) => num(n))],
          ['BullMQ jobs/s', ...spreadCells(bull, (n) => num(n))],
          ['zkfarm ÷ BullMQ (per alternating pair)', ...spreadCells(pairRatio, (n) => `${sig(n)}x`)],
          ['zkfarm process CPU ms / 1000', ...spreadCells(farmCpu, (n) => num(n))],
          ['BullMQ process CPU ms / 1000', ...spreadCells(bullCpu, (n) => num(n))],
          ['ZooKeeper CPU ms / 1000', ...spreadCells(zkCpu, (n) => num(n))],
          ['redis-server CPU ms / 1000', ...spreadCells(redisCpu, (n) => num(n))],
          ['ZooKeeper requests per task', ...spreadCells(reqs)],
          ['Redis commands per job', ...spreadCells(cmds)],
        ],
        notes: [
          `Headline: zkfarm ÷ BullMQ = ${sig(medianRatio)}x (median ÷ median). Redis ${redis.version}, ${durability}; BullMQ ${bullmqVersion}.`,
          'ZooKeeper fsyncs every write before it answers (forceSync=yes). Neither side writes a file per task: a no-op task has no output directory (taskDirs: on-demand).',
          problems.length
            ? `CHECK FAILED: ${problems.join('; ')}`
            : 'Every BullMQ job completed exactly once.',
        ],
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

export async function measureBullmq(job: BullmqJob, io: BenchIo): Promise<BullmqResult> {
  const { Queue, Worker } = await import('bullmq');
  const connection = { host: '127.0.0.1', port: job.redis.port, maxRetriesPerRequest: null };
  const name = `bench-${process.pid}-${Date.now()}`;
  const queue = new Queue(name, { connection });
  const workers: Array<{ close(force?: boolean): Promise<void>; waitUntilReady(): Promise<unknown> }> = [];
  let processed = 0;
  let completed = 0;
  let duplicates = 0;
  let failedEvents = 0;
  let lastCompletedAt = 0;
  const seen = new Set<string>();
  try {
    await queue.waitUntilReady();
    for (let i = 0; i < job.workers; i++) {
      const w = new Worker<unknown, null>(
        name,
        async () => {
          processed++;
          return null;
        },
        { connection, concurrency: job.concurrency },
      );
      w.on('completed', (j) => {
        if (seen.has(j.id ?? '')) duplicates++;
        seen.add(j.id ?? '');
        completed++;
        lastCompletedAt = Date.now();
      });
      w.on('failed', () => failedEvents++);
      w.on('error', () => {});
      workers.push(w);
    }
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    await sleep(300, io.signal);
    const cmd0 = await totalCommands(job.redis.port);
    const cpu0 = cpuSnapshot(job.redis.pid);
    const t0 = Date.now();
    for (let i = 0; i < job.jobs; i += job.chunk) {
      throwIfAborted(io.signal);
      const n = Math.min(job.chunk, job.jobs - i);
      await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'noop', data: { i: i + k } })));
    }
    const addMs = Date.now() - t0;
    const deadline = t0 + job.timeoutMs;
    let lastReport = 0;
    while (completed + failedEvents < job.jobs) {
      throwIfAborted(io.signal);
      if (Date.now() > deadline)
        throw new Error(`only ${completed} of ${job.jobs} BullMQ jobs completed within ${job.timeoutMs} ms`);
      if (Date.now() - lastReport > 250) {
        io.progress(completed, job.jobs, 'jobs done');
        lastReport = Date.now();
      }
      await sleep(10, io.signal);
    }
    const cpu = cpuSince(cpu0, job.redis.pid);
    const cmds = (await totalCommands(job.redis.port)) - cmd0;
    const rss = rssMb();
    const elapsedMs = Math.max(1, lastCompletedAt - t0);
    const counts = await queue.getJobCounts('completed', 'failed', 'waiting', 'active', 'delayed');
    const problems: string[] = [];
    if (completed !== job.jobs) problems.push(`${completed} completed events for ${job.jobs} jobs`);
    if (duplicates) problems.push(`${duplicates} jobs completed twice`);
    if (processed !== job.jobs) problems.push(`the processor ran ${processed} times for ${job.jobs} jobs`);
    if (failedEvents) problems.push(`${failedEvents} jobs failed`);
    if (counts['completed'] !== job.jobs)
      problems.push(`the queue counts ${counts['completed']} completed jobs`);
    const left = (counts['waiting'] ?? 0) + (counts['active'] ?? 0) + (counts['delayed'] ?? 0);
    if (left) problems.push(`${left} jobs still waiting, active or delayed`);
    return {
      workers: job.workers,
      concurrency: job.concurrency,
      jobs: job.jobs,
      elapsedMs,
      jobsPerSecond: (job.jobs / elapsedMs) * 1000,
      addMs,
      redisCommandsPerJob: cmds / job.jobs,
      cpu,
      rssMb: rss,
      check: { ok: problems.length === 0, problems, completed, processed },
    };
  } finally {
    await Promise.race([Promise.all(workers.map((w) => w.close(true).catch(() => {}))), sleep(5000)]);
    await queue.obliterate({ force: true }).catch(() => {});
    await queue.close().catch(() => {});
    // The next measurement starts on an empty Redis.
    await redisCommand(job.redis.port, ['FLUSHALL']).catch(() => {});
  }
}
