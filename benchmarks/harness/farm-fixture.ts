/**
 * A farm for one measurement, inside a measurement process: a host with the masters and workers of the
 * shape (each a worker thread with its own session, as `runtime` runs them), a submitter with its own
 * session, and an admin session the harness uses to watch progress and check the result. Everything
 * lives under the measurement's own chroot, and is removed afterwards.
 *
 * The admin session is the instrument, not part of the farm: its requests are not counted as the farm's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PATHS } from '../../src/farm/protocol.js';
import { countResults } from '../../src/farm/status-store.js';
import { Submitter } from '../../src/farm/submitter.js';
import { createLogger, Host } from '../../src/host/index.js';
import type { RoleSpec } from '../../src/host/types.js';
import { FaultInjector, sourceThreads } from '../../src/testing/index.js';
import { connect, type Supervisor, splitConnectString, type ZkClient } from '../../src/zk/index.js';
import { removeTree } from '../../src/zk/warm-up.js';
import type { FarmShape, ZkTarget } from './types.js';

export { removeTree };

export interface BenchIo {
  signal: AbortSignal;
  progress(done: number, total: number, label?: string): void;
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new Error('interrupted');
}

/** Open a session (no action) and return its client and a stop function. */
export async function openSession(
  connectString: string,
  sessionTimeout = 10_000,
): Promise<{ client: ZkClient; sup: Supervisor }> {
  const sup = connect({ connect: connectString, sessionTimeout, connectTimeout: 15_000 });
  try {
    const session = await sup.ready;
    return { client: session.client, sup };
  } catch (err) {
    await sup.stop();
    throw err;
  }
}

export function roleSpecs(shape: FarmShape): RoleSpec[] {
  return [
    ...Array.from({ length: shape.masters }, (_, i) => ({ kind: 'master' as const, name: `m${i + 1}` })),
    ...Array.from({ length: shape.workers }, (_, i) => ({
      kind: 'worker' as const,
      name: `w${i + 1}`,
      capacity: shape.capacity,
    })),
  ];
}

export interface Farm {
  host: Host;
  /** Crashes the host's roles (zkfarm/testing), when the farm was started with `faults`. */
  faults: FaultInjector | undefined;
  submitter: Submitter;
  admin: ZkClient;
  workdir: string;
  /** Host.start() until a leader and every worker are registered. */
  hostStartMs: number;
  /** Requests sent so far by the submitter's client. */
  submitterRequests(): number;
  /** Requests sent so far by the role threads, and the CPU time (ms) of those threads, summed by kind. */
  roleCounters(): Promise<RoleCounters>;
  /** Stop everything and remove the chroot's nodes and the workdir. Safe to call twice. */
  close(): Promise<void>;
}

export interface RoleCounters {
  /** ZooKeeper requests sent by the master threads, and by the worker threads. */
  masters: number;
  workers: number;
  /** CPU time (ms) of the master threads, and of the worker threads (NaN without /proc). */
  mastersCpuMs: number;
  workersCpuMs: number;
}

export interface StartFarmOptions {
  /** Role threads a scenario can crash (zkfarm/testing's FaultInjector). @defaultValue false */
  faults?: boolean;
  /** Restart crashed role threads (as `runtime` does). @defaultValue true */
  restart?: boolean;
}

/** Stop a supervisor, waiting at most 300 ms (its close request is sent at once; a measurement must not hang on it). */
export function stopSession(sup: Supervisor): Promise<void> {
  return Promise.race([sup.stop(), sleep(300)]);
}

/** Start a host with `shape` under the chroot of `zk.connect`; resolves once a leader and every worker are up. */
export async function startFarm(
  zk: ZkTarget,
  shape: FarmShape,
  io: BenchIo,
  options: StartFarmOptions = {},
): Promise<Farm> {
  const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-bench-work-'));
  let host: Host | undefined;
  let submitter: Submitter | undefined;
  let admin: { client: ZkClient; sup: Supervisor } | undefined;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      // Bounded: a stop that hangs must not hold the measurement process forever.
      await Promise.all([
        host ? Promise.race([host.stop({ drain: false, deadlineMs: 1000 }), sleep(8000)]) : undefined,
        submitter ? stopSession(submitter.supervisor) : undefined,
      ]);
      await removeChroot(zk.connect).catch(() => {});
      if (admin) await stopSession(admin.sup);
      rmSync(workdir, { recursive: true, force: true });
    })();
    return closed;
  };
  try {
    await makeChroot(zk.connect);
    admin = await openSession(zk.connect);
    const adminClient = admin.client;
    const t0 = Date.now();
    const faults = options.faults ? new FaultInjector() : undefined;
    host = await Host.start(
      {
        connect: zk.connect,
        sessionTimeout: shape.sessionTimeout,
        workdir,
        // No status is swept away during a run: the checker reads them all afterwards.
        retention: { maxCount: 1_000_000, intervalMs: 86_400_000 },
        roles: roleSpecs(shape),
      },
      {
        logger: createLogger({ level: 'warn', pretty: false }),
        restart: options.restart ?? true,
        spawn: faults?.spawn ?? sourceThreads,
      },
    );
    await waitUntil(
      async () => {
        const [master, workers] = await Promise.all([
          adminClient.exists(PATHS.master),
          adminClient.exists(PATHS.workers),
        ]);
        return master !== null && (workers?.numChildren ?? 0) >= shape.workers;
      },
      30_000,
      'a leader and every worker registered',
      io.signal,
    );
    const hostStartMs = Date.now() - t0;
    submitter = await Submitter.open({ connect: zk.connect, sessionTimeout: 10_000 });
    const sub = submitter;
    const h = host;
    return {
      host: h,
      faults,
      submitter: sub,
      admin: adminClient,
      workdir,
      hostStartMs,
      submitterRequests: () => sub.supervisor.requests,
      async roleCounters() {
        const out: RoleCounters = { masters: 0, workers: 0, mastersCpuMs: 0, workersCpuMs: 0 };
        for (const s of await h.allStats()) {
          if (s.kind === 'master') {
            out.masters += s.zkRequests;
            out.mastersCpuMs += s.cpuMs;
          } else {
            out.workers += s.zkRequests;
            out.workersCpuMs += s.cpuMs;
          }
        }
        return out;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Poll `cond` every 20 ms until true; throws after `timeoutMs` naming `what`. */
export async function waitUntil(
  cond: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  signal: AbortSignal,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    throwIfAborted(signal);
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs, signal);
  }
}

/**
 * Wait until /status holds `count` nodes (cheap: one `exists` per poll, never a listing), reporting progress.
 * Fails after `timeoutMs`, or sooner when no new status appeared for `stallMs` (a stuck farm should not
 * hold the run for its whole budget). Returns the client time at which the count was seen.
 */
export async function waitForStatusCount(
  admin: ZkClient,
  count: number,
  timeoutMs: number,
  io: BenchIo,
  label = 'tasks done',
  stallMs = 60_000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let lastReport = 0;
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    throwIfAborted(io.signal);
    const n = await countResults(admin);
    const now = Date.now();
    if (n !== last) {
      last = n;
      lastChange = now;
    }
    if (now - lastReport > 250) {
      io.progress(n, count, label);
      lastReport = now;
    }
    if (n >= count) return now;
    if (now > deadline) {
      throw new Error(
        `only ${n} of ${count} tasks have a status after ${Math.round(timeoutMs / 1000)} s (the farm is far slower than expected)`,
      );
    }
    if (now - lastChange > stallMs) {
      throw new Error(
        `the farm is stuck: no new status for ${Math.round(stallMs / 1000)} s, ${n} of ${count} tasks have a status`,
      );
    }
    await sleep(20, io.signal);
  }
}

/** What the farm looks like (for an error message when it is stuck): queue, assignments, roles. */
export async function describeFarmState(farm: Farm): Promise<string> {
  const c = farm.admin;
  const parts: string[] = [];
  try {
    parts.push(`/tasks ${(await c.exists(PATHS.tasks))?.numChildren ?? 0}`);
    parts.push(`/status ${await countResults(c)}`);
    const assign: string[] = [];
    for (const w of await c.getChildren(PATHS.assign)) {
      const n = (await c.exists(`${PATHS.assign}/${w}`))?.numChildren ?? 0;
      if (n) assign.push(`${w}:${n}`);
    }
    parts.push(`/assign ${assign.join(' ') || 'empty'}`);
    parts.push(`/workers ${(await c.getChildren(PATHS.workers)).join(',')}`);
    const master = await c.getData(PATHS.master).then(
      (r) => r.data.toString('utf8'),
      () => 'none',
    );
    parts.push(`/master ${master}`);
    const stats = await Promise.race([farm.host.allStats(), sleep(5000).then(() => [])]);
    for (const st of stats) {
      parts.push(
        st.kind === 'master'
          ? `${st.name}: assigned ${st.assigned}, queued ${st.queuedTasks}, leader changes ${st.leaderChanges}`
          : `${st.name}: running ${st.running}, queued ${st.queued}, succeeded ${st.succeeded}, fenced ${st.fenced}`,
      );
    }
  } catch (err) {
    parts.push(`(could not read everything: ${(err as Error).message})`);
  }
  return parts.join('; ');
}

/** Create the chroot of a connect string (like ensureChroot, without waiting out the session's close). */
export async function makeChroot(connectString: string): Promise<void> {
  const { hosts, chroot } = splitConnectString(connectString);
  if (!chroot) return;
  const { client, sup } = await openSession(hosts.join(','));
  try {
    await client.ensurePath(chroot);
  } finally {
    await stopSession(sup);
  }
}

/** Remove a chroot and everything under it (see removeTree). */
export async function removeChroot(connectString: string): Promise<void> {
  const { hosts, chroot } = splitConnectString(connectString);
  if (!chroot) return;
  const { client, sup } = await openSession(hosts.join(','));
  try {
    await removeTree(client, chroot);
  } finally {
    await stopSession(sup);
  }
}
