/**
 * The host's rehearsal: before its roles start for real, each role thread runs its role in a throwaway
 * farm under a root of its own, and tens of thousands of no-op tasks go through that farm. A role thread
 * is its own V8 isolate, and a new isolate runs the farm's hot path interpreted until it has compiled it;
 * a new ZooKeeper server does the same with its request path. Without a rehearsal a new user's first
 * tens of thousands of tasks pay for both (benchmarks/README.md, the fresh scenario).
 *
 * What it guarantees:
 * - Nothing of the real farm is touched: the throwaway farm lives under `root` on the same servers
 *   (removed afterwards, also after a failure), its workers write under `<workdir>/.rehearsal`
 *   (removed too), and its roles run without handler modules, output retention or result retention.
 * - The real roles are new objects in the same threads: no task, session or count carries over, only
 *   the threads' compiled code (and the server's).
 * - Bounded: at most `tasks` tasks, and the task phase ends after `budgetMs`.
 * - It gives way to real work: once `interrupt` aborts (runtime's: a task waits in the real /tasks), no
 *   more rehearsal roles start, and the task phase ends at once, its tasks in flight not waited for.
 * - Never fatal: a rehearsal that fails is reported and the farm starts as it would have without one;
 *   a thread that does not stop its rehearsal role in time is ended, and the host makes it again.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../errors.js';
import { statusBucket, statusBucketPath } from '../farm/protocol.js';
import { Submitter } from '../farm/submitter.js';
import { splitConnectString } from '../zk/connect-string.js';
import { connect as zkConnect } from '../zk/supervisor.js';
import { removeTree } from '../zk/warm-up.js';
import type { LaunchContext, RoleThread } from './role-handle.js';
import type { FarmSettings, RoleSpec } from './types.js';

export interface RehearsalOptions {
  /** Tasks through the throwaway farm, at most (0: no rehearsal). */
  tasks: number;
  /** The task phase ends after this long (ms). @defaultValue 8000 */
  budgetMs?: number;
  /** The throwaway farm's root on the farm's servers. @defaultValue '/zkfarm-rehearsal' */
  root?: string;
  /** Real work waits: aborted, the rehearsal ends as soon as it can (see above). */
  interrupt?: AbortSignal;
}

export interface RehearsalReport {
  /** Tasks that went through and have a status. */
  tasks: number;
  ms: number;
  /** The master that led the rehearsal: starting it first makes it the real farm's leader too. */
  leader: string | undefined;
  /** Why the rehearsal ended early, if it failed. */
  error?: string;
  /** It was cut short by `interrupt`. */
  interrupted?: boolean;
}

/** The task phase's bound when none is given (ms): 30,000 tasks take ~5 s of it on two cores. */
const DEFAULT_BUDGET_MS = 8000;
/** Tasks per submitted chunk: each chunk is waited for, so the budget is checked between chunks. */
const CHUNK = 2500;
/** How long a rehearsal role may take to stop before its thread is ended (ms). */
const STOP_BOUND_MS = 5000;
const POLL_MS = 20;

/**
 * Rehearse in `threads` (made with spawn(), no role in them yet); resolves, never rejects, once every
 * thread is empty again: each ready for start(), or exited (state `exited`) for the host to make again.
 */
export async function rehearse(
  threads: readonly RoleThread[],
  host: LaunchContext,
  options: RehearsalOptions,
): Promise<RehearsalReport> {
  const t0 = Date.now();
  const root = options.root ?? '/zkfarm-rehearsal';
  const servers = splitConnectString(host.settings.connect).hosts.join(',');
  const settings = rehearsalSettings(host.settings, `${servers}${root}`);
  const report: RehearsalReport = { tasks: 0, ms: 0, leader: undefined };
  const interrupt = options.interrupt;
  if (interrupt?.aborted) return { ...report, interrupted: true };
  // From now on a thread that dies is the rehearsal's loss: the host leaves it for the real start to
  // make again, instead of restarting it as a real role (which the real start would then start twice).
  for (const rt of threads) rt.state = 'rehearsing';
  try {
    const started: RoleThread[] = [];
    for (const kind of ['master', 'worker'] as const) {
      if (interrupt?.aborted) break; // a thread with no role stops at once, and starts as any
      started.push(...(await startKind(threads, kind, host, settings)));
    }
    for (const rt of started.filter((t) => t.spec.kind === 'master')) {
      const info = await rt.call(rt.api.info()).catch(() => undefined); // it may have died since
      if (info?.leader) report.leader = rt.spec.name;
    }
    const deadline = t0 + (options.budgetMs ?? DEFAULT_BUDGET_MS);
    await runTasks(settings, { max: options.tasks, deadline, interrupt }, report);
  } catch (err) {
    report.error = describeError(err);
  } finally {
    await Promise.all(threads.map((rt) => endRehearsal(rt)));
    await removeThrowaway(servers, root, host.settings).catch((err) => {
      report.error ??= `removing ${root}: ${describeError(err)}`;
    });
    rmSync(settings.workdir, { recursive: true, force: true });
  }
  report.ms = Date.now() - t0;
  if (interrupt?.aborted) report.interrupted = true;
  return report;
}

/** The real farm's settings, on the throwaway root, with nothing that outlives the rehearsal. */
function rehearsalSettings(real: FarmSettings, connect: string): FarmSettings {
  const { handlerModules: _h, retention: _r, ...rest } = real;
  return { ...rest, connect, workdir: join(real.workdir, '.rehearsal'), outputRetention: false };
}

/**
 * Start the rehearsal roles of one kind, all at once. A thread that dies or fails to start is left out
 * (the host makes a dead one again for the real start); the rehearsal goes on with the others, and
 * fails only when none of the kind started.
 */
async function startKind(
  threads: readonly RoleThread[],
  kind: RoleSpec['kind'],
  host: LaunchContext,
  settings: FarmSettings,
): Promise<RoleThread[]> {
  const ofKind = threads.filter((rt) => rt.spec.kind === kind);
  const results = await Promise.allSettled(ofKind.map((rt) => startRehearsal(rt, host, settings)));
  const started = ofKind.filter((_, i) => results[i]!.status === 'fulfilled');
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (ofKind.length > 0 && started.length === 0) throw failed!.reason;
  return started;
}

async function startRehearsal(rt: RoleThread, host: LaunchContext, settings: FarmSettings): Promise<void> {
  const { handlerModules: _h, ...spec } = rt.spec;
  // A thread that already exited rejects at once (start() races its exit).
  await rt.start(host, { spec: spec as RoleSpec, settings, logLevel: host.logLevel });
  rt.state = 'rehearsing'; // start() says running; the real role is not
}

/** Stop the thread's rehearsal role; a thread that does not stop in time is ended (and made again later). */
async function endRehearsal(rt: RoleThread): Promise<void> {
  if (rt.state !== 'rehearsing') return;
  const stopped = await Promise.race([
    rt.call(rt.api.stop({ drain: false, deadlineMs: 1000 })).then(
      () => true,
      () => false,
    ),
    sleep(STOP_BOUND_MS, false, { ref: false }),
  ]);
  if (stopped) {
    rt.state = 'starting';
    return;
  }
  await rt.thread.terminate().catch(() => {});
  rt.state = 'exited';
}

/**
 * Submit no-op tasks in chunks until `max` or the deadline. One chunk is submitted ahead of the one
 * waited for, so the farm is never idle between chunks; the deadline is checked between chunks. An
 * `interrupt` ends it at once, also while a chunk is waited for.
 * `report.tasks` counts the statuses seen as they come, so a rehearsal that stalls (a worker died with
 * tasks in hand, and its session has not expired yet) still says how far it got.
 */
async function runTasks(
  settings: FarmSettings,
  bounds: { max: number; deadline: number; interrupt: AbortSignal | undefined },
  report: RehearsalReport,
): Promise<void> {
  const { max, deadline, interrupt } = bounds;
  if (interrupt?.aborted) return;
  const submitter = await Submitter.open({
    connect: settings.connect,
    ...(settings.auth !== undefined ? { auth: settings.auth } : {}),
    ...(settings.tls !== undefined ? { tls: settings.tls } : {}),
    connectTimeout: 10_000,
  });
  try {
    const client = () => submitter.supervisor.session!.client;
    const pending: Array<Map<string, number>> = [];
    const total = new Map<string, number>();
    let sent = 0;
    const more = () => sent < max && Date.now() < deadline && !interrupt?.aborted;
    while (more() || (pending.length > 0 && !interrupt?.aborted)) {
      if (more()) {
        const n = Math.min(CHUNK, max - sent);
        const ids = await submitter.submitMany(
          Array.from({ length: n }, (_, i) => (i % 2 ? { handler: 'noop' } : { handler: 'echo', input: i })),
        );
        for (const id of ids) total.set(statusBucket(id), (total.get(statusBucket(id)) ?? 0) + 1);
        pending.push(new Map(total));
        sent += n;
        if (pending.length < 2 && sent < max) continue;
      }
      const want = pending.shift()!;
      const wanted = [...want.values()].reduce((a, b) => a + b, 0);
      for (;;) {
        report.tasks = await countThere(client(), want);
        if (report.tasks >= wanted || interrupt?.aborted) break;
        if (Date.now() > deadline + STOP_BOUND_MS)
          throw new Error('the rehearsal farm stopped finishing tasks');
        await sleep(POLL_MS);
      }
    }
  } finally {
    await submitter.close();
  }
}

/** Statuses present, counting at most `want` in each bucket (the throwaway /status holds nothing else). */
async function countThere(
  client: { exists(path: string): Promise<{ numChildren: number } | null> },
  perBucket: Map<string, number>,
): Promise<number> {
  const stats = await Promise.all(
    [...perBucket.keys()].map((bucket) => client.exists(statusBucketPath(bucket))),
  );
  return [...perBucket.values()].reduce((n, want, i) => n + Math.min(want, stats[i]?.numChildren ?? 0), 0);
}

async function removeThrowaway(servers: string, root: string, real: FarmSettings): Promise<void> {
  const sup = zkConnect({
    connect: servers,
    connectTimeout: 10_000,
    ...(real.auth !== undefined ? { auth: real.auth } : {}),
    ...(real.tls !== undefined ? { tls: real.tls } : {}),
  });
  try {
    await Promise.race([sup.ready, sup.done.then(() => Promise.reject(new Error('ZooKeeper unreachable')))]);
    await removeTree(sup.session!.client, root);
  } finally {
    await sup.stop();
  }
}
