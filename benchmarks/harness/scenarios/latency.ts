/**
 * Scenario `latency`: how long a task takes from submit to recorded result, on an idle farm and under
 * a steady load at fixed fractions of the capacity measured in the same run (throughput's median).
 *
 * What is measured, precisely (all clocks are this machine's one wall clock, 1 ms resolution):
 *   sent      the submitter's clock just before the request that creates the task is issued;
 *   recorded  the ctime of /status/<id>: the ZooKeeper server's clock when it took in the worker's
 *             completion (the status is readable a disk sync later, typically < 1 ms on this machine);
 *   latency   recorded − sent. A client that waits with a watch learns of the status one notification
 *             later; we leave that out because it measures the waiting client, not the farm.
 *   to start  status.startedAt (the worker's clock when the handler started) − sent: queueing and
 *             assignment, without running and recording.
 * Idle farm: the first task after the farm started and sat idle for 1 s ("time to first task"), then
 * single tasks one at a time (each waits for the previous result, then a short pause).
 * Load: an open-loop generator (load.ts) at each rate for a fixed time; every task's latency counts.
 * One fresh process per repeat runs the idle series and every rate in turn on one farm.
 */
import { statusPath } from '../../../src/farm/protocol.js';
import { type BenchContext, someOrThrow, tolerant } from '../context.js';
import { type BenchIo, sleep, startFarm, throwIfAborted, waitForStatusCount } from '../farm-fixture.js';
import { checkFarm, ctimeOf, readStatuses, summaryOf } from '../invariants.js';
import { noopTasks, RateStream } from '../load.js';
import { cell, num, percentiles, sig, spread } from '../stats.js';
import type {
  BullLatencyResult,
  LatencyJob,
  LatencyResult,
  Percentiles,
  RateLatency,
  ScenarioReport,
  Table,
} from '../types.js';
import { bullLatencyReport, measureBullLatencyOnce } from './latency-bullmq-report.js';
import { farmProblems } from './throughput.js';

export async function runLatency(
  ctx: BenchContext,
): Promise<Omit<ScenarioReport, 'startedAt' | 'durationMs'>> {
  const p = ctx.opts.preset.latency;
  const capacity = await ctx.capacity();
  const rates = p.fractions.map((f) => Math.max(5, Math.round(f * capacity)));
  const repeats = ctx.opts.preset.repeats.latency;
  const runs: LatencyResult[] = [];
  const failures: string[] = [];
  // BullMQ's same series is the reference, alternating with the farm's repeats (skipped without Redis).
  const redis = await ctx.redis();
  const pairs: Array<[LatencyResult, BullLatencyResult]> = [];
  const loadTasks = rates.reduce((n, r) => n + (r * p.durationMs) / 1000, 0);
  for (let r = 0; r < repeats; r++) {
    const job: LatencyJob = {
      kind: 'latency',
      zk: ctx.target('latency'),
      shape: ctx.defaultShape,
      idleTasks: p.idleTasks,
      idleGapMs: p.idleGapMs,
      rates,
      durationMs: p.durationMs,
      timeoutMs: 60_000 + loadTasks * 20,
    };
    // The load series runs twice (cold, then warm).
    const timeout =
      job.timeoutMs * 2 + 2 * rates.length * (p.durationMs + 30_000) + p.idleTasks * 10_000 + 120_000;
    const label = `latency #${r + 1}/${repeats}`;
    const run = await tolerant(ctx.signal, failures, label, () =>
      ctx.measure<LatencyResult>(
        job,
        label,
        timeout,
        (res) =>
          `idle p50 ${num(res.idle.p50)} ms; ${res.rates.map((x) => `${x.rate}/s p99 ${num(x.latency.p99)} ms`).join(', ')}`,
      ),
    );
    if (!run) continue;
    runs.push(run);
    if (!('port' in redis)) continue;
    const bullLabel = `latency (BullMQ) #${r + 1}/${repeats}`;
    const bull = await tolerant(ctx.signal, failures, bullLabel, () =>
      measureBullLatencyOnce(ctx, redis, job, bullLabel, timeout),
    );
    if (bull) pairs.push([run, bull]);
  }
  someOrThrow(runs, failures);
  const idle = {
    firstTaskMs: spread(runs.map((r) => r.firstTaskMs)),
    p50: spread(runs.map((r) => r.idle.p50)),
    p95: spread(runs.map((r) => r.idle.p95)),
    max: spread(runs.map((r) => r.idle.max)),
    roundTrip: spread(runs.map((r) => r.idleRoundTrip?.p50 ?? Number.NaN)),
  };
  const perRate = perRateOf(
    rates,
    p.fractions,
    runs.map((r) => r.rates),
  );
  const warmRates = perRateOf(
    rates,
    p.fractions,
    runs.map((r) => r.warmRates ?? []),
  );
  const idleTable: Table = {
    title: 'latency on an idle farm (submit sent → status created), ms',
    columns: ['figure', 'min', 'median', 'max'],
    rows: [
      [
        'time to first task (farm idle since start)',
        num(idle.firstTaskMs.min),
        num(idle.firstTaskMs.median),
        num(idle.firstTaskMs.max),
      ],
      [
        `single tasks, p50 (${p.idleTasks} per repeat)`,
        num(idle.p50.min),
        num(idle.p50.median),
        num(idle.p50.max),
      ],
      ['single tasks, p95', num(idle.p95.min), num(idle.p95.median), num(idle.p95.max)],
      ['single tasks, max', num(idle.max.min), num(idle.max.median), num(idle.max.max)],
      [
        'one ZooKeeper round trip after the same idle gap, p50',
        sig(idle.roundTrip.min),
        sig(idle.roundTrip.median),
        sig(idle.roundTrip.max),
      ],
    ],
    notes: [
      `Single tasks run one at a time, ${p.idleGapMs} ms apart. An idle task's path holds ${IDLE_PATH_ROUND_TRIPS} round trips ` +
        "to ZooKeeper before its status is recorded: the submit's create; the leader's listing of /tasks with its " +
        "read of the next ids, and its assignment multi; the worker's read and its completion multi (recorded " +
        'when it arrives). On a ' +
        "quiet machine each waits for ZooKeeper's threads and the client's to wake, so the last row times " +
        '`exists` after the same gap: an idle task cannot take much less than that many of these round trips.',
    ],
  };
  const loadTable = rateTable(
    `latency under load at fractions of the measured capacity (${num(capacity)} tasks/s), ms — median (min–max) over ${repeats} repeat(s)`,
    perRate,
    p.durationMs,
  );
  const warmTable = rateTable(
    `the same rates again, on the same farm warmed by the series above (warm, second), ms — median (min–max) over ${repeats} repeat(s)`,
    warmRates,
    p.durationMs,
  );
  const bull =
    pairs.length && 'port' in redis ? bullLatencyReport(pairs, rates, p.fractions, redis) : undefined;
  const problems = [...failures, ...farmProblems(runs), ...((bull?.summary['problems'] as string[]) ?? [])];
  return {
    scenario: 'latency',
    title: 'Submit-to-status latency',
    params: {
      shape: ctx.defaultShape,
      capacity,
      fractions: p.fractions,
      rates,
      durationMs: p.durationMs,
      idleTasks: p.idleTasks,
      repeats,
    },
    summary: { capacity, idle, rates: perRate, warmRates, ...(bull ? { bullmq: bull.summary } : {}) },
    runs: bull ? { farm: runs, bullmq: pairs.map((x) => x[1]) } : runs,
    tables: [idleTable, loadTable, warmTable, ...(bull ? [bull.table] : [])],
    invariants: { ok: problems.length === 0, problems },
    notes: 'unavailable' in redis ? [`BullMQ's reference series skipped: ${redis.unavailable}`] : [],
  };
}

type PerRate = ReturnType<typeof perRateOf>[number];

/** Per offered rate, each figure's spread over the repeats (`series[r][i]`: repeat r's rate i). */
function perRateOf(rates: readonly number[], fractions: readonly number[], series: RateLatency[][]) {
  return rates.map((rate, i) => {
    const xs = series.map((s) => s[i]!).filter(Boolean);
    return {
      rate,
      fraction: fractions[i]!,
      achieved: spread(xs.map((x) => x.achievedRate)),
      p50: spread(xs.map((x) => x.latency.p50)),
      p95: spread(xs.map((x) => x.latency.p95)),
      p99: spread(xs.map((x) => x.latency.p99)),
      max: spread(xs.map((x) => x.latency.max)),
      toStartP50: spread(xs.map((x) => x.toStart.p50)),
      toStartP99: spread(xs.map((x) => x.toStart.p99)),
      lag: spread(xs.map((x) => x.maxSubmitLagMs)),
    };
  });
}

function rateTable(title: string, perRate: PerRate[], durationMs: number): Table {
  return {
    title,
    columns: [
      'load',
      'offered/s',
      'achieved/s',
      'p50',
      'p95',
      'p99',
      'max',
      'sent→started p50',
      'sent→started p99',
      'max submit lag',
    ],
    rows: perRate.map((x) => [
      `${Math.round(x.fraction * 100)}%`,
      num(x.rate),
      cell(x.achieved),
      cell(x.p50),
      cell(x.p95),
      cell(x.p99),
      cell(x.max),
      cell(x.toStartP50),
      cell(x.toStartP99),
      cell(x.lag),
    ]),
    notes: [
      `Each rate held ${sig(durationMs / 1000)} s; every task of it counts. Latency = status znode ctime − client send time.`,
    ],
  };
}

// ---------------------------------------------------------------------------------------------------
// In the measurement process
// ---------------------------------------------------------------------------------------------------

/** Round trips to ZooKeeper on an idle task's path before its status is recorded (see the idle table's note). */
const IDLE_PATH_ROUND_TRIPS = 5;

/**
 * One request (`call`) timed after each of `idleTasks` gaps of `idleGapMs`, as the idle series waits
 * between tasks: ZooKeeper's `exists` here, Redis' PING for BullMQ's series (latency-bullmq.ts).
 */
export async function idleRoundTrips(
  call: () => Promise<unknown>,
  job: Pick<LatencyJob, 'idleTasks' | 'idleGapMs'>,
  io: BenchIo,
): Promise<Percentiles> {
  const times: number[] = [];
  for (let i = 0; i < job.idleTasks; i++) {
    throwIfAborted(io.signal);
    await sleep(job.idleGapMs, io.signal);
    const t0 = performance.now();
    await call();
    times.push(performance.now() - t0);
  }
  return percentiles(times);
}

export async function measureLatency(job: LatencyJob, io: BenchIo): Promise<LatencyResult> {
  const farm = await startFarm(job.zk, job.shape, io);
  const ids: string[] = [];
  try {
    const sub = farm.submitter;
    const oneTask = async (): Promise<{ latency: number; toStart: number }> => {
      const sentAt = Date.now();
      const id = await sub.submit({ handler: 'noop' });
      ids.push(id);
      const status = await sub.waitFor(id, { timeoutMs: 30_000 });
      const stat = await farm.admin.exists(statusPath(id));
      if (!stat) throw new Error(`the status of ${id} vanished`);
      return { latency: ctimeOf(stat) - sentAt, toStart: (status.startedAt ?? Number.NaN) - sentAt };
    };
    await sleep(1000, io.signal);
    throwIfAborted(io.signal);
    const first = await oneTask();
    const idle: number[] = [];
    for (let i = 0; i < job.idleTasks; i++) {
      throwIfAborted(io.signal);
      await sleep(job.idleGapMs, io.signal);
      idle.push((await oneTask()).latency);
      io.progress(i + 1, job.idleTasks, 'idle tasks');
    }
    const idleRoundTrip = await idleRoundTrips(() => farm.admin.exists('/'), job, io);
    // The series twice: first as a farm just started meets it, then again once that series warmed it.
    const rates = await measureRates(farm, job, ids, io);
    const warmRates = await measureRates(farm, job, ids, io);
    const check = await checkFarm(farm.admin, ids, { workdir: farm.workdir });
    return {
      shape: job.shape,
      hostStartMs: farm.hostStartMs,
      firstTaskMs: first.latency,
      idle: percentiles(idle),
      idleRoundTrip,
      rates,
      warmRates,
      check: summaryOf(check),
    };
  } finally {
    await farm.close();
  }
}

/** Every rate of `job` in turn, each held `durationMs` and waited for to the last status. */
async function measureRates(
  farm: Awaited<ReturnType<typeof startFarm>>,
  job: LatencyJob,
  ids: string[],
  io: BenchIo,
): Promise<RateLatency[]> {
  const sub = farm.submitter;
  const rates: RateLatency[] = [];
  for (const rate of job.rates) {
    throwIfAborted(io.signal);
    await sleep(500, io.signal);
    const stream = new RateStream(noopTasks(sub), rate);
    const total = Math.max(1, Math.round((rate * job.durationMs) / 1000));
    await stream.run({ total, maxMs: job.durationMs * 3, signal: io.signal });
    for (const s of stream.sent) ids.push(s.id);
    await waitForStatusCount(farm.admin, ids.length, job.timeoutMs, io, `tasks done at ${rate}/s`);
    const { records } = await readStatuses(
      farm.admin,
      stream.sent.map((s) => s.id),
    );
    const lat: number[] = [];
    const toStart: number[] = [];
    for (const s of stream.sent) {
      const r = records.get(s.id);
      if (!r) continue;
      lat.push(r.ctime - s.sentAt);
      if (typeof r.status.startedAt === 'number') toStart.push(r.status.startedAt - s.sentAt);
    }
    rates.push({
      rate,
      achievedRate: stream.achievedRate,
      tasks: stream.sent.length,
      latency: percentiles(lat),
      toStart: percentiles(toStart),
      maxSubmitLagMs: stream.maxLagMs,
    });
  }
  return rates;
}
