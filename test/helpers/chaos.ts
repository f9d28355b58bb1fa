/**
 * Fault tools for tests and chaos runs, in the manner of Curator's TestingCluster / KillSession and
 * Kazoo's harness (`expire_session`, `lose_connection`): real processes, real sessions, real expiry.
 *
 * Single faults (each returns an `Injection`: what was hit, and a promise that settles once the farm has
 * recovered from it structurally):
 *   crashRole(farm, name)            a role thread dies without clean-up (FaultInjector.crash); recovered
 *                                    when the host has restarted it and it has a live session again
 *   crashLeadingMaster(farm)         the same for whichever master leads; recovered when a master leads
 *                                    again and the crashed one runs again
 *   expireRoleSession(farm, name)    the server expires the role's session (a second connection on the
 *                                    same session id and password, closed, as Kazoo's harness does);
 *                                    recovered when the role has a new session
 *   killZkLeader(ensemble)           SIGKILL the member that says `Mode: leader`; recovered when the
 *                                    surviving members have elected a leader
 *   killZkMember(ensemble, id)       SIGKILL any member
 *   restartZkMembers(ensemble)       start again every member that is down (data kept); recovered when
 *                                    they serve (which needs a quorum)
 *   sigkillProcess(child)            SIGKILL a whole process (a `runtime` host); recovered when it is gone
 *   restartStandalone(server)        SIGKILL a standalone server and start it again on the same port
 *                                    with its data kept; recovered when it serves
 *
 * A fault plan (`runFaultPlan`) runs faults at given times, one after another (a fault starts at its
 * time, or when the one before it has recovered, whichever is later), logs each with its injection
 * time and recovery time, and is bounded: a fault whose time comes after the plan's deadline is
 * skipped, and a recovery that takes longer than `recoveryTimeoutMs` is recorded as not recovered.
 *
 * `farm` is a host and the FaultInjector its role threads were made by (`{ host, faults }`).
 *
 * `watchRoles(host)` records which roles were disturbed during a run (thread exits, new sessions), which
 * is what the invariant checker needs to judge re-executions.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Host } from '../../src/host/index.js';
import type { RoleThreadInfo } from '../../src/host/types.js';
import type { FaultInjector } from '../../src/testing/index.js';
import type { ZkEnsemble, ZkServer } from '../../src/zk/index.js';
import { runtimeArgv } from './runtime-bin.js';

/** A host and the FaultInjector that made its role threads. */
export interface HostFarm {
  host: Host;
  faults: FaultInjector;
}

export type FaultKind =
  | 'crash-worker'
  | 'crash-master'
  | 'crash-leading-master'
  | 'expire-worker-session'
  | 'expire-master-session'
  | 'expire-leader-session'
  | 'kill-zk-leader'
  | 'kill-zk-member'
  | 'restart-zk-members'
  | 'sigkill-process'
  | 'restart-standalone';

/** What an injected fault hit, and when the farm is whole again. */
export interface Injection {
  /** A role name, `zk-<id>`, `pid <n>`, ... */
  target: string;
  detail?: string;
  /** Roles whose work this fault may have lost (for the invariant checker). */
  disturbed?: string[];
  /** Settles once the farm has recovered from this fault (structurally: see each fault). */
  recovered: Promise<void>;
}

export interface Fault {
  kind: FaultKind;
  /** Perform the fault now. */
  inject(): Promise<Injection>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `cond` until true; throws after `timeoutMs` naming `what`. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  pollMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // a probe that fails counts as "not yet"
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}

/** A role is whole: its thread runs and its session is connected. */
async function roleHealthy(host: Host, name: string, notSession?: string): Promise<boolean> {
  const i = await host.info(name);
  const connected = i.session === 'connected' || i.session === 'reconnected';
  return i.state === 'running' && connected && (notSession === undefined || i.sessionId !== notSession);
}

/** The name of the master that leads right now, if any. */
export async function leadingMaster(host: Host): Promise<string | undefined> {
  return (await host.roles()).find((r) => r.kind === 'master' && r.leader && r.state === 'running')?.name;
}

/** Role names of one kind. */
export async function roleNames(host: Host, kind: 'master' | 'worker'): Promise<string[]> {
  return (await host.roles()).filter((r) => r.kind === kind).map((r) => r.name);
}

/** A worker that runs tasks right now (else any running worker), chosen at random. */
export async function busyWorker(host: Host, exclude: readonly string[] = []): Promise<string> {
  const stats = await host.allStats();
  const workers = stats.filter((s) => s.kind === 'worker' && !exclude.includes(s.name));
  const busy = workers.filter((s) => (s.running ?? 0) > 0);
  const pool = busy.length ? busy : workers;
  if (!pool.length) throw new Error('no running worker to hit');
  return pool[Math.floor(Math.random() * pool.length)]!.name;
}

type NameOrPick = string | (() => Promise<string>);
const pick = (n: NameOrPick) => (typeof n === 'string' ? Promise.resolve(n) : n());

/** Kill a role's thread at once (no session close, no drain); recovered when it runs again with a session. */
export function crashRole(
  { host, faults }: HostFarm,
  name: NameOrPick,
  kind: FaultKind = 'crash-worker',
): Fault {
  return {
    kind,
    async inject() {
      const target = await pick(name);
      const before = (await host.info(target)).sessionId;
      await faults.crash(target);
      return {
        target,
        disturbed: [target],
        recovered: until(() => roleHealthy(host, target, before), 90_000, `${target} to run again`),
      };
    },
  };
}

/** Crash whichever master leads; recovered when some master leads again and the crashed one runs again. */
export function crashLeadingMaster({ host, faults }: HostFarm): Fault {
  return {
    kind: 'crash-leading-master',
    async inject() {
      const target = await leadingMaster(host);
      if (!target) throw new Error('no master leads right now');
      const before = (await host.info(target)).sessionId;
      await faults.crash(target);
      const recovered = (async () => {
        await until(async () => (await leadingMaster(host)) !== undefined, 90_000, 'a master to lead');
        await until(() => roleHealthy(host, target, before), 90_000, `${target} to run again`);
      })();
      return { target, disturbed: [target], recovered };
    },
  };
}

/**
 * The server expires a role's session (FaultInjector.expireSession: a second connection on its session id
 * and password, closed); recovered when the role has its new session.
 */
export function expireRoleSession(
  { faults }: HostFarm,
  name: NameOrPick,
  kind: FaultKind = 'expire-worker-session',
): Fault {
  return {
    kind,
    async inject() {
      const target = await pick(name);
      const recovered = faults.expireSession(target);
      recovered.catch(() => {});
      return { target, disturbed: [target], recovered };
    },
  };
}

/** Expire the session of whichever master leads. */
export function expireLeaderSession(farm: HostFarm): Fault {
  return expireRoleSession(
    farm,
    async () => {
      const l = await leadingMaster(farm.host);
      if (!l) throw new Error('no master leads right now');
      return l;
    },
    'expire-leader-session',
  );
}

/** Members this module killed and has not restarted yet, per ensemble. */
const downMembers = new WeakMap<ZkEnsemble, Set<number>>();

function markDown(ensemble: ZkEnsemble, id: number): void {
  const s = downMembers.get(ensemble) ?? new Set<number>();
  downMembers.set(ensemble, s);
  s.add(id);
}

/** SIGKILL one ensemble member; recovered when the others have a leader. */
export function killZkMember(
  ensemble: ZkEnsemble,
  id: number | (() => Promise<number>),
  kind: FaultKind = 'kill-zk-member',
): Fault {
  return {
    kind,
    async inject() {
      const target = typeof id === 'number' ? id : await id();
      await ensemble.killMember(target);
      markDown(ensemble, target);
      const recovered = until(
        async () => {
          const l = await ensemble.leaderId();
          return l !== undefined && l !== target;
        },
        90_000,
        `a ZooKeeper leader among the members other than ${target}`,
        200,
      );
      return { target: `zk-${target}`, recovered };
    },
  };
}

/** SIGKILL the member that leads. */
export function killZkLeader(ensemble: ZkEnsemble): Fault {
  return killZkMember(
    ensemble,
    async () => {
      let leader: number | undefined;
      await until(
        async () => {
          leader = await ensemble.leaderId();
          return leader !== undefined;
        },
        60_000,
        'a ZooKeeper leader',
        200,
      );
      return leader!;
    },
    'kill-zk-leader',
  );
}

/** Start every member this module killed (data kept); recovered when they serve and a leader is known. */
export function restartZkMembers(ensemble: ZkEnsemble): Fault {
  return {
    kind: 'restart-zk-members',
    async inject() {
      const ids = [...(downMembers.get(ensemble) ?? [])];
      downMembers.get(ensemble)?.clear();
      const recovered = (async () => {
        await Promise.all(ids.map((id) => ensemble.restartMember(id)));
        await until(async () => (await ensemble.leaderId()) !== undefined, 60_000, 'a ZooKeeper leader', 200);
      })();
      return { target: ids.length ? ids.map((i) => `zk-${i}`).join(',') : '(none down)', recovered };
    },
  };
}

/** SIGKILL a child process (a whole `runtime` host); recovered when it has exited. */
export function sigkillProcess(child: ChildProcess, label = 'process'): Fault {
  return {
    kind: 'sigkill-process',
    async inject() {
      const gone = new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once('exit', () => resolve());
      });
      child.kill('SIGKILL');
      return { target: `${label} (pid ${child.pid})`, recovered: gone };
    },
  };
}

/** SIGKILL a standalone server and start it again on its port with its data; recovered when it serves. */
export function restartStandalone(server: ZkServer, downMs = 0): Fault {
  return {
    kind: 'restart-standalone',
    async inject() {
      await server.kill();
      const recovered = (async () => {
        if (downMs > 0) await sleep(downMs);
        await server.restart();
      })();
      return { target: server.connectString, recovered };
    },
  };
}

/**
 * Several faults at the same instant (e.g. two workers lost at once); recovered when all have recovered.
 * Targets are picked one after another, so a picker that excludes earlier picks can avoid doubles.
 */
export function together(...faults: Fault[]): Fault {
  return {
    kind: faults[0]?.kind ?? 'crash-worker',
    async inject() {
      const injections: Injection[] = [];
      for (const f of faults) injections.push(await f.inject());
      return {
        target: injections.map((i, k) => `${faults[k]!.kind}:${i.target}`).join(' + '),
        disturbed: injections.flatMap((i) => i.disturbed ?? []),
        recovered: Promise.all(injections.map((i) => i.recovered)).then(() => {}),
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Fault plans
// ---------------------------------------------------------------------------------------------------

export interface PlannedFault {
  /** Not before this many ms after the plan starts. */
  at: number;
  fault: Fault;
}

export interface FaultRecord {
  kind: FaultKind;
  target: string;
  detail?: string;
  /** ms after the plan started. */
  injectedAt: number;
  /** ms from injection to recovery; undefined when it did not recover in time or failed. */
  recoveryMs?: number;
  /** Why the fault could not be injected, or did not recover. */
  error?: string;
  /** With `progress`: ms from injection until the progress counter first moved (how long the farm stalled). */
  progressGapMs?: number;
}

export interface FaultPlanOptions {
  /** Faults whose time is after this (ms after the start) are skipped. @defaultValue Infinity */
  deadlineMs?: number;
  /** Longest wait for one fault's recovery. @defaultValue 120000 */
  recoveryTimeoutMs?: number;
  /** Stop early (faults not yet started are skipped). */
  signal?: AbortSignal;
  /** Called with each record as soon as it is complete. */
  onRecord?: (r: FaultRecord) => void;
  /**
   * A counter of finished work (e.g. the number of statuses). When given, each record also says how long
   * after the injection the counter first moved (`progressGapMs`): how long the farm stalled.
   */
  progress?: () => Promise<number>;
}

export interface FaultPlanResult {
  records: FaultRecord[];
  /** Faults not run (their time was past the deadline, or the plan was stopped). */
  skipped: number;
  /** Every role a fault named as possibly losing work. */
  disturbed: Set<string>;
}

/** Run faults at their times, one after another, each logged with its time and recovery time. */
export async function runFaultPlan(
  plan: readonly PlannedFault[],
  options: FaultPlanOptions = {},
): Promise<FaultPlanResult> {
  const start = Date.now();
  const deadline = options.deadlineMs ?? Number.POSITIVE_INFINITY;
  const recoveryTimeout = options.recoveryTimeoutMs ?? 120_000;
  const records: FaultRecord[] = [];
  const disturbed = new Set<string>();
  let skipped = 0;
  let finished = false;
  const gapWatches: Promise<void>[] = [];
  const sorted = [...plan].sort((a, b) => a.at - b.at);
  for (const { at, fault } of sorted) {
    if (options.signal?.aborted || at > deadline) {
      skipped++;
      continue;
    }
    const wait = at - (Date.now() - start);
    if (wait > 0) await sleep(wait);
    if (options.signal?.aborted || Date.now() - start > deadline) {
      skipped++;
      continue;
    }
    const injectedAt = Date.now() - start;
    const record: FaultRecord = { kind: fault.kind, target: '?', injectedAt };
    const progressBefore = options.progress ? await options.progress().catch(() => undefined) : undefined;
    let gapWatch: Promise<void> | undefined;
    try {
      const injection = await fault.inject();
      const t0 = Date.now();
      record.target = injection.target;
      if (injection.detail) record.detail = injection.detail;
      for (const r of injection.disturbed ?? []) disturbed.add(r);
      if (options.progress && progressBefore !== undefined) {
        const progress = options.progress;
        gapWatch = (async () => {
          const limit = t0 + recoveryTimeout;
          while (Date.now() < limit && !finished) {
            const n = await progress().catch(() => progressBefore);
            if (n > progressBefore) {
              record.progressGapMs = Date.now() - t0;
              return;
            }
            await sleep(100);
          }
        })();
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), recoveryTimeout);
      });
      const outcome = await Promise.race([injection.recovered.then(() => 'ok' as const), timedOut]).finally(
        () => clearTimeout(timer),
      );
      if (outcome === 'ok') record.recoveryMs = Date.now() - t0;
      else record.error = `not recovered within ${recoveryTimeout} ms`;
    } catch (err) {
      record.error = err instanceof Error ? err.message : String(err);
    }
    // The stall measure runs alongside the next faults; it is bounded by the recovery timeout.
    if (gapWatch) gapWatches.push(gapWatch);
    records.push(record);
    options.onRecord?.(record);
  }
  // Give the last stall measures a little while, then stop them all.
  await Promise.race([Promise.all(gapWatches), sleep(10_000)]);
  finished = true;
  await Promise.all(gapWatches);
  return { records, skipped, disturbed };
}

// ---------------------------------------------------------------------------------------------------
// Watching roles
// ---------------------------------------------------------------------------------------------------

export interface RoleDisturbance {
  name: string;
  /** ms since epoch */
  at: number;
  what: 'thread-exit' | 'new-session';
}

export interface RoleWatch {
  /** Roles whose thread exited or whose session changed while watched. */
  readonly disturbed: Set<string>;
  readonly events: RoleDisturbance[];
  /** Poll once more and stop. */
  stop(): Promise<void>;
}

/**
 * Record every role whose thread exits (host 'role-exit') or whose session id changes (polled), so that a
 * re-execution can be traced to something that happened to the worker that lost it — including session
 * losses no fault named, such as those a ZooKeeper leader's death may cause.
 */
export function watchRoles(host: Host, pollMs = 250): RoleWatch {
  const disturbed = new Set<string>();
  const events: RoleDisturbance[] = [];
  const sessions = new Map<string, string>();
  const note = (name: string, what: RoleDisturbance['what']) => {
    disturbed.add(name);
    events.push({ name, at: Date.now(), what });
  };
  const onExit = (e: { name: string }) => note(e.name, 'thread-exit');
  host.on('role-exit', onExit);
  const poll = async () => {
    let infos: RoleThreadInfo[];
    try {
      infos = await host.roles();
    } catch {
      return;
    }
    for (const i of infos) {
      if (!i.sessionId || i.state !== 'running') continue;
      const prev = sessions.get(i.name);
      if (prev !== undefined && prev !== i.sessionId) note(i.name, 'new-session');
      sessions.set(i.name, i.sessionId);
    }
  };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await poll();
      await sleep(pollMs);
    }
  })();
  return {
    disturbed,
    events,
    async stop() {
      stopped = true;
      await loop;
      await poll();
      host.off('role-exit', onExit);
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Summaries
// ---------------------------------------------------------------------------------------------------

function fmtMs(ms: number | undefined): string {
  if (ms === undefined) return '-';
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

/** A fixed-width table of fault records, for test output and docs. */
export function formatFaultTable(records: readonly FaultRecord[]): string {
  const rows = [['t+', 'fault', 'target', 'recovered in', 'next status after', 'note']];
  for (const r of records) {
    rows.push([
      `${(r.injectedAt / 1000).toFixed(1)} s`,
      r.kind,
      r.target,
      fmtMs(r.recoveryMs),
      fmtMs(r.progressGapMs),
      r.error ?? r.detail ?? '',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

// ---------------------------------------------------------------------------------------------------
// `runtime` processes
// ---------------------------------------------------------------------------------------------------

/** The repository root (test/helpers/../..). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface RuntimeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written so far. */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  readonly exited: Promise<number | NodeJS.Signals>;
  /** Wait until stderr (or stdout) matches; rejects if the process exits first or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs?: number, stream?: 'stderr' | 'stdout'): Promise<string>;
  /** Send `signal` and wait for the exit; SIGKILL after `timeoutMs`. Safe to call when already gone. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | NodeJS.Signals>;
}

/**
 * Start `runtime <args>` (compiled, or from source: runtime-bin.ts) in the repository root. The
 * discovery file goes to a private XDG_RUNTIME_DIR unless `env` says otherwise, so a test never finds
 * (or is found by) someone else's farm.
 */
export function spawnRuntime(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; xdgDir?: string } = {},
): RuntimeProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  delete env['ZKFARM_ZK'];
  if (options.env?.['ZKFARM_ZK'] !== undefined) env['ZKFARM_ZK'] = options.env['ZKFARM_ZK'];
  if (options.xdgDir) env['XDG_RUNTIME_DIR'] = options.xdgDir;
  env['NO_COLOR'] = '1';
  const child = spawn(process.execPath, [...runtimeArgv(), ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const l of listeners) l();
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    err += s;
    for (const l of listeners) l();
  });
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.once('error', () => resolve(-1));
    child.once('close', (code, signal) => {
      resolve(code ?? signal ?? -1);
      for (const l of listeners) l();
    });
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    pid: child.pid ?? -1,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForOutput(pattern, timeoutMs = 60_000, stream = 'stderr') {
      return new Promise((resolve, reject) => {
        const check = () => {
          const text = stream === 'stderr' ? err : out;
          const m = pattern.exec(text);
          if (m) return finish(undefined, m[0]);
          if (gone()) {
            finish(
              new Error(
                `runtime exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}; stderr:\n${err.slice(-3000)}`,
              ),
            );
          }
        };
        const timer = setTimeout(
          () =>
            finish(
              new Error(
                `runtime did not print ${pattern} within ${timeoutMs} ms; stderr:\n${err.slice(-3000)}`,
              ),
            ),
          timeoutMs,
        );
        const finish = (e: Error | undefined, v?: string) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (e) reject(e);
          else resolve(v!);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM', timeoutMs = 30_000) {
      if (!gone()) {
        child.kill(signal);
        const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(t);
      }
      return exited;
    },
  };
}

/** Run `runtime <args>` to completion (bounded: SIGKILL after `timeoutMs`). */
export async function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; xdgDir?: string; timeoutMs?: number } = {},
): Promise<{ code: number | NodeJS.Signals; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  const p = spawnRuntime(args, options);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr(), ms: Date.now() - t0 };
}

/** Live (non-zombie) processes whose command line contains `needle`. */
export function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmd.includes(needle)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z') found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
