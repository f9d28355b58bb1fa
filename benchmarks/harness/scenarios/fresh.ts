/**
 * Scenario `fresh` (run it by name: `runtime bench --scenario fresh`): the farm as a new user meets it,
 * against BullMQ as a new user meets it, alternating (farm 1, BullMQ 1, farm 2, ...).
 *
 * Farm, per run, nothing shared with the rest of the run:
 *   - `runtime --masters 2 --workers 8` in a new process with its own workdir, so it starts its own
 *     embedded ZooKeeper exactly as it does for a user (no warm-up but what `runtime` does itself);
 *   - once it prints `ready`, `runtime submit --file` in another process, with N no-op tasks, finding
 *     the farm as a user's does (the discovery file);
 *   - the statuses counted by a separate client of the harness.
 * BullMQ, per run: a new redis-server (AOF as the peer scenario's), a process with as many Workers as the
 * farm has workers (concurrency = the farm's capacity), and once they are ready a separate producer
 * process (Queue.addBulk in chunks of 1,000); completions counted from Redis by the harness.
 *
 * Figure: tasks/s = N ÷ (the submitting process started → the last result written: the last status
 * znode's ctime, or the last completed job's finishedOn), both on this machine's clock. Also: how long
 * each side took from its start to `ready`, and how long its submitting process ran. Checks: every
 * submitted task has exactly one status and succeeded; every job completed, none failed.
 */
import { countResults } from '../../../src/farm/status-store.js';
import { embeddedJavaPid } from '../../../src/host/discovery.js';
import { type BenchContext, someOrThrow, tolerant } from '../context.js';
import { openSession, stopSession, waitUntil } from '../farm-fixture.js';
import { readStatuses } from '../invariants.js';
import { processCpuMs } from '../proc.js';
import { harnessScriptArgs, runtimeArgs, startNode } from '../processes.js';
import { redisCommand, startRedis } from '../redis.js';
import { runtimePlace } from '../runtime-place.js';
import { num, ratio, sig, spread } from '../stats.js';
import type { FreshRun, FreshSide, ScenarioReport } from '../types.js';

const READY_MS = 120_000;
const NEWEST_SCORE = "return redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]";

export async function runFresh(ctx: BenchContext): Promise<Omit<ScenarioReport, 'startedAt' | 'durationMs'>> {
  const p = ctx.opts.preset.fresh;
  const shape = ctx.defaultShape;
  const runs: FreshRun[] = [];
  const failures: string[] = [];
  for (let r = 1; r <= p.repeats; r++) {
    const farm = await tolerant(ctx.signal, failures, `farm #${r}`, () =>
      step(ctx, `fresh farm #${r}/${p.repeats}`, () => farmRun(ctx, p.tasks)),
    );
    const bull = await tolerant(ctx.signal, failures, `BullMQ #${r}`, () =>
      step(ctx, `fresh BullMQ #${r}/${p.repeats}`, () => bullRun(ctx, p.tasks)),
    );
    if (farm && bull) runs.push({ farm, bull, ratio: farm.perSecond / bull.perSecond });
  }
  someOrThrow(runs, failures);
  const problems = runs.flatMap((x, i) =>
    [...x.farm.problems, ...x.bull.problems].map((m) => `#${i + 1}: ${m}`),
  );
  const farmRate = spread(runs.map((x) => x.farm.perSecond));
  const bullRate = spread(runs.map((x) => x.bull.perSecond));
  return {
    scenario: 'fresh',
    title: `Fresh: a new runtime and a new BullMQ, the first ${num(p.tasks)} tasks after ready`,
    params: { ...p, shape, redisPersistence: ctx.opts.redisPersistence },
    summary: {
      ratio: spread(runs.map((x) => x.ratio)),
      ratioOfMedians: ratio(farmRate.median, bullRate.median),
      farmPerSecond: farmRate,
      bullPerSecond: bullRate,
      farmReadyMs: spread(runs.map((x) => x.farm.readyMs)),
      bullReadyMs: spread(runs.map((x) => x.bull.readyMs)),
    },
    runs,
    tables: [
      {
        title: 'fresh: per alternating pair (the first N tasks after each side said ready)',
        columns: [
          'pair',
          'zkfarm tasks/s',
          'BullMQ jobs/s',
          'zkfarm ÷ BullMQ',
          'ready ms (farm / BullMQ)',
          'submitting process ms (farm / BullMQ)',
          'CPU ms, app + server (farm / BullMQ)',
        ],
        rows: runs.map((x, i) => [
          i + 1,
          num(x.farm.perSecond),
          num(x.bull.perSecond),
          `${sig(x.ratio)}x`,
          `${num(x.farm.readyMs)} / ${num(x.bull.readyMs)}`,
          `${num(x.farm.submitMs)} / ${num(x.bull.submitMs)}`,
          `${cpuCell(x.farm.cpu)} / ${cpuCell(x.bull.cpu)}`,
        ]),
        notes: [
          'CPU: from the submit to the last result counted; app: the runtime process (every role thread) or the BullMQ workers process; server: the embedded ZooKeeper JVM or redis-server.',
          `zkfarm: runtime --masters ${shape.masters} --workers ${shape.workers} (capacity ${shape.capacity}) on the embedded ZooKeeper it starts; BullMQ: ${shape.workers} Workers × concurrency ${shape.capacity} on a new redis-server (${ctx.opts.redisPersistence}).`,
          ...failures,
        ],
      },
    ],
    invariants: { ok: problems.length === 0, problems },
    notes: [],
  };
}

const cpuCell = (c: FreshSide['cpu']) => `${num(c.appMs)} + ${num(c.serverMs)}`;

/** One measurement, shown as the others are (begin, then a line with what it found). */
async function step(ctx: BenchContext, label: string, run: () => Promise<FreshSide>): Promise<FreshSide> {
  ctx.progress.begin(label);
  const r = await run();
  const ready = `ready after ${num(r.readyMs)} ms`;
  ctx.progress.end(
    `${num(r.perSecond)}/s, ${ready}${r.problems.length ? `, CHECK FAILED: ${r.problems.join('; ')}` : ''}`,
  );
  return r;
}

/** One run of a new `runtime`; its own directory for the workdir, the embedded ZooKeeper and discovery. */
async function farmRun(ctx: BenchContext, tasks: number): Promise<FreshSide> {
  // Every result kept (the check reads them all): see runtime-place.ts.
  const place = runtimePlace('fresh', tasks, { keepResults: 1_000_000 });
  const { env, tasksFile: file, config } = place;
  const shape = ctx.defaultShape;
  const started = Date.now();
  const host = startNode(
    [
      ...runtimeArgs(),
      '--config',
      config,
      '--masters',
      String(shape.masters),
      '--workers',
      String(shape.workers),
    ].concat(['--capacity', String(shape.capacity), '--workdir', place.workdir, '--log-level', 'warn']),
    env,
  );
  let session: Awaited<ReturnType<typeof openSession>> | undefined;
  try {
    const ready = await host.waitFor(/runtime: ready: .* on (\S+) /, READY_MS, 'runtime ready', ctx.signal);
    const readyMs = Date.now() - started;
    session = await openSession(ready[1]!);
    const client = session.client;
    const javaPid = embeddedJavaPid(place.workdir);
    const cpu = cpuMeter(host.child.pid, javaPid);
    const t0 = Date.now();
    const submit = startNode([...runtimeArgs(), 'submit', '--file', file], env, 64 * tasks + 10_000);
    await waitUntil(
      async () => (await countResults(client)) >= tasks,
      60_000 + tasks * 20,
      'every result',
      ctx.signal,
      50,
    );
    const used = cpu();
    const code = await submit.gone;
    const submitMs = Date.now() - t0;
    if (code !== 0) throw new Error(`runtime submit --file exited ${code}: ${submit.output().slice(-2000)}`);
    const ids = submit
      .output()
      .split('\n')
      .filter((l) => /^task-\d{10}$/.test(l));
    const { records, missing, unreadable } = await readStatuses(client, ids);
    const last = Math.max(...[...records.values()].map((x) => x.ctime));
    const problems: string[] = [];
    if (ids.length !== tasks) problems.push(`runtime submit printed ${ids.length} ids for ${tasks} tasks`);
    if (missing.length + unreadable.length)
      problems.push(`${missing.length + unreadable.length} tasks without a readable status`);
    const failed = [...records.values()].filter((x) => x.status.state !== 'succeeded').length;
    if (failed) problems.push(`${failed} tasks did not succeed`);
    const total = await countResults(client);
    if (total !== tasks) problems.push(`${total} statuses for ${tasks} tasks`);
    return { readyMs, submitMs, perSecond: (tasks / (last - t0)) * 1000, cpu: used, problems };
  } finally {
    if (session) await stopSession(session.sup);
    await host.stop('SIGINT', 30_000);
    place.remove();
  }
}

/** CPU used by the app's process and the server's since this call (ms); 0 for a pid not known. */
function cpuMeter(appPid: number | undefined, serverPid: number | undefined): () => FreshSide['cpu'] {
  const read = (pid: number | undefined) => (pid === undefined ? 0 : processCpuMs(pid));
  const app0 = read(appPid);
  const server0 = read(serverPid);
  return () => ({ appMs: read(appPid) - app0, serverMs: read(serverPid) - server0 });
}

/** One run of BullMQ from nothing: a new redis-server, a workers process, a producer process. */
async function bullRun(ctx: BenchContext, jobs: number): Promise<FreshSide> {
  const shape = ctx.defaultShape;
  const started = Date.now();
  const redis = await startRedis(ctx.opts.redisPersistence);
  const queue = 'fresh';
  const workers = startNode(
    [...harnessScriptArgs('fresh-bullmq'), 'workers', String(redis.port), queue].concat([
      String(shape.workers),
      String(shape.capacity),
    ]),
    {},
  );
  try {
    await workers.waitFor(/^ready$/m, READY_MS, 'BullMQ workers ready', ctx.signal);
    const readyMs = Date.now() - started;
    const cpu = cpuMeter(workers.child.pid, redis.pid);
    const t0 = Date.now();
    const add = startNode(
      [...harnessScriptArgs('fresh-bullmq'), 'add', String(redis.port), queue, String(jobs), '1000'],
      {},
    );
    const completed = async () =>
      Number(await redisCommand(redis.port, ['ZCARD', `bull:${queue}:completed`]));
    await waitUntil(
      async () => (await completed()) >= jobs,
      60_000 + jobs * 20,
      'every job completed',
      ctx.signal,
      50,
    );
    const used = cpu();
    const code = await add.gone;
    const submitMs = Date.now() - t0;
    if (code !== 0) throw new Error(`the BullMQ producer exited ${code}: ${add.output().slice(-2000)}`);
    // The completed set is scored by each job's finishedOn (ms); the newest score is the last finish.
    const newest = await redisCommand(redis.port, ['EVAL', NEWEST_SCORE, '1', `bull:${queue}:completed`]);
    const last = Number(newest);
    const problems: string[] = [];
    const done = await completed();
    if (done !== jobs) problems.push(`${done} completed jobs for ${jobs}`);
    const failed = Number(await redisCommand(redis.port, ['ZCARD', `bull:${queue}:failed`]));
    if (failed) problems.push(`${failed} jobs failed`);
    if (!Number.isFinite(last)) problems.push(`no finish time of the last job: ${newest.slice(0, 200)}`);
    return { readyMs, submitMs, perSecond: (jobs / (last - t0)) * 1000, cpu: used, problems };
  } finally {
    await workers.stop('SIGTERM', 10_000);
    await redis.stop();
  }
}
