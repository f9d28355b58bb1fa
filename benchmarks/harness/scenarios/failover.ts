/**
 * Scenario `failover`: faults during a steady stream of no-op tasks (an open-loop generator at half the
 * measured capacity), on a host that restarts crashed role threads as `runtime` does:
 *
 *   leader-crash   the leading master's thread dies without closing its session, so its /master node
 *                  stays until ZooKeeper expires the session (one session timeout): no assignments
 *                  until then. The thread restarts and stands by.
 *   leader-stop    the leading master is stopped gracefully (it deletes /master, closes its session): a
 *                  standby takes over at once.
 *   worker-crash   the worker holding the most tasks dies without closing its session; its tasks go back
 *                  to /tasks when its session expires and run again elsewhere (at least once).
 *
 * Per fault (client clock for the fault, status znode ctimes for results):
 *   gap            the longest interval without a new status, from the fault until it is recovered (see
 *                  below), next to the same figure over the steady stream just before the fault;
 *   recover        fault → the last status of every task submitted before the fault or delayed by it
 *                  (a latency over 1 s: tasks handed to a crashed worker wait for its session to expire);
 *   max latency    the largest submit-to-status latency of the tasks submitted around the fault;
 *   leader change  fault → /master held by another session (master faults);
 *   re-executions  tasks submitted before the fault whose status says attempts > 1.
 * At the end every task must have exactly one status (invariants.ts).
 */
import { PATHS, statusPath } from '../../../src/farm/protocol.js';
import type { Host } from '../../../src/host/index.js';
import type { ZkClient } from '../../../src/zk/index.js';
import { type BenchContext, someOrThrow, tolerant } from '../context.js';
import {
  type BenchIo,
  sleep,
  startFarm,
  throwIfAborted,
  waitForStatusCount,
  waitUntil,
} from '../farm-fixture.js';
import { checkFarm, summaryOf } from '../invariants.js';
import { noopTasks, RateStream } from '../load.js';
import { cell, num, spread } from '../stats.js';
import type { FailoverJob, FailoverResult, FaultKind, FaultResult, ScenarioReport, Table } from '../types.js';
import { farmProblems } from './throughput.js';

const FAULT_TITLES: Record<FaultKind, string> = {
  'leader-crash': 'leading master crashed (session left to expire)',
  'leader-stop': 'leading master stopped gracefully',
  'worker-crash': 'busiest worker crashed (session left to expire)',
};

export async function runFailover(
  ctx: BenchContext,
): Promise<Omit<ScenarioReport, 'startedAt' | 'durationMs'>> {
  const p = ctx.opts.preset.failover;
  const repeats = ctx.opts.preset.repeats.failover;
  const capacity = await ctx.capacity();
  const rate = Math.max(20, Math.min(2000, Math.round(capacity * p.rateFraction)));
  const shape = { ...ctx.defaultShape, sessionTimeout: p.sessionTimeout };
  const groups: FaultKind[][] = p.together ? [p.faults] : p.faults.map((f) => [f]);
  const recoveryTimeoutMs = p.sessionTimeout * 3 + 30_000;
  const runs: FailoverResult[] = [];
  const failures: string[] = [];
  for (let r = 0; r < repeats; r++) {
    for (const faults of groups) {
      const timeoutMs = 2 * p.steadyMs + faults.length * (recoveryTimeoutMs + p.steadyMs) + 60_000;
      const job: FailoverJob = {
        kind: 'failover',
        zk: ctx.target('failover'),
        shape,
        rate,
        faults,
        steadyMs: p.steadyMs,
        recoveryTimeoutMs,
        timeoutMs,
      };
      const label = `failover ${faults.join(' + ')} #${r + 1}/${repeats}`;
      const run = await tolerant(ctx.signal, failures, label, () =>
        ctx.measure<FailoverResult>(job, label, timeoutMs + 120_000, (res) =>
          res.faults
            .map((f) => `${f.fault}: gap ${num(f.gapMs)} ms, recovered in ${num(f.recoverMs)} ms`)
            .join('; '),
        ),
      );
      if (run) runs.push(run);
    }
  }
  someOrThrow(runs, failures);
  const byFault = p.faults.map((fault) => {
    const fs = runs.flatMap((r) => r.faults.filter((f) => f.fault === fault));
    return {
      fault,
      gapMs: spread(fs.map((f) => f.gapMs)),
      baselineGapMs: spread(fs.map((f) => f.baselineGapMs)),
      recoverMs: spread(fs.map((f) => f.recoverMs)),
      maxLatencyMs: spread(fs.map((f) => f.maxLatencyMs)),
      delayedTasks: spread(fs.map((f) => f.delayedTasks)),
      leaderChangeMs: spread(fs.map((f) => f.leaderChangeMs ?? Number.NaN)),
      reruns: spread(fs.map((f) => f.reruns)),
    };
  });
  const problems = [...failures, ...farmProblems(runs)];
  const table: Table = {
    title: `failover: ${shape.masters} masters, ${shape.workers} workers, stream of ${num(rate)} tasks/s, session timeout ${num(p.sessionTimeout)} ms — median (min–max)`,
    columns: [
      'fault',
      'gap ms',
      'gap before ms',
      'recover ms',
      'max latency ms',
      'tasks > 1 s',
      'leader change ms',
      're-executions',
    ],
    rows: byFault.map((f) => [
      FAULT_TITLES[f.fault],
      cell(f.gapMs),
      cell(f.baselineGapMs),
      cell(f.recoverMs),
      cell(f.maxLatencyMs),
      cell(f.delayedTasks),
      f.leaderChangeMs.n ? cell(f.leaderChangeMs) : '–',
      cell(f.reruns),
    ]),
    notes: [
      `${repeats} repeat(s); ${p.together ? 'all faults in turn in one process' : 'each fault in its own fresh process'}. ` +
        (problems.length
          ? `PROBLEMS: ${problems.join('; ')}`
          : 'Invariants: every task has exactly one status.'),
      'gap: longest time without a new status after the fault (before: the same over the steady stream just before it); ' +
        'recover: until every task submitted before the fault, and every task delayed by it (> 1 s), has its status; max latency and tasks > 1 s: tasks submitted around the fault.',
      'A crashed role is noticed when its session expires: gap, recovery and latency follow the session timeout. ' +
        'A crashed worker restarts under the same name; its tasks go back to the queue with the loss counted (re-executions).',
    ],
  };
  return {
    scenario: 'failover',
    title: 'Failover during a steady stream',
    params: {
      shape,
      rate,
      rateFraction: p.rateFraction,
      capacity,
      faults: p.faults,
      together: p.together,
      steadyMs: p.steadyMs,
      repeats,
    },
    summary: { faults: byFault },
    runs,
    tables: [table],
    invariants: { ok: problems.length === 0, problems },
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------------
// In the measurement process
// ---------------------------------------------------------------------------------------------------

async function leaderName(host: Host): Promise<string | undefined> {
  return (await host.roles()).find((r) => r.kind === 'master' && r.leader && r.state === 'running')?.name;
}

async function busiestWorker(host: Host): Promise<string> {
  const stats = await host.allStats();
  const workers = stats.filter((s) => s.kind === 'worker');
  workers.sort((a, b) => (b.running ?? 0) + (b.queued ?? 0) - ((a.running ?? 0) + (a.queued ?? 0)));
  const top = workers[0];
  if (!top) throw new Error('no running worker to crash');
  return top.name;
}

/**
 * Longest interval between consecutive instants of `times` (sorted) within [from, to], counting from
 * `from`; the stretch after the last instant counts only with `tail` (or when there is no instant at all).
 */
function longestGap(times: number[], from: number, to: number, tail = true): number {
  let prev = from;
  let gap = 0;
  let any = false;
  for (const t of times) {
    if (t <= from) continue;
    if (t > to) break;
    gap = Math.max(gap, t - prev);
    prev = t;
    any = true;
  }
  return tail || !any ? Math.max(gap, to - prev) : gap;
}

interface Mark {
  fault: FaultKind;
  role: string;
  at: number;
  leaderChangeMs?: number;
  /** When the recovery wait ended (client clock). */
  recoveredAt?: number;
}

/**
 * A recovery wait that timed out, with where its first unfinished tasks are (queued, which worker holds
 * them and whether that worker is registered), so that a failed run says what stalled.
 */
async function withWhereabouts(err: unknown, admin: ZkClient, ids: string[]): Promise<unknown> {
  if (ids.length === 0 || !(err instanceof Error) || !err.message.startsWith('timed out')) return err;
  const workers = await admin.getChildren(PATHS.workers).catch(() => [] as string[]);
  const dirs = await admin.getChildren(PATHS.assign).catch(() => [] as string[]);
  const where: string[] = [];
  for (const id of ids.slice(0, 5)) {
    const queued = (await admin.exists(`${PATHS.tasks}/${id}`)) !== null;
    const holders: string[] = [];
    for (const w of dirs)
      if (await admin.exists(`${PATHS.assign}/${w}/${id}`))
        holders.push(`${w}${workers.includes(w) ? '' : ' (not registered)'}`);
    where.push(
      `${id}: ${queued ? 'queued' : holders.length ? `assigned to ${holders.join(', ')}` : 'nowhere'}`,
    );
  }
  err.message += `; ${ids.length} unfinished, e.g. ${where.join('; ')}; registered workers: ${workers.join(', ') || 'none'}`;
  return err;
}

export async function measureFailover(job: FailoverJob, io: BenchIo): Promise<FailoverResult> {
  const farm = await startFarm(job.zk, job.shape, io, { restart: true, faults: true });
  try {
    const { host, admin } = farm;
    const stream = new RateStream(noopTasks(farm.submitter), job.rate);
    const streaming = stream.run({
      total: Number.POSITIVE_INFINITY,
      maxMs: job.timeoutMs,
      signal: io.signal,
    });
    streaming.catch(() => {});
    const marks: Mark[] = [];
    try {
      await sleep(job.steadyMs, io.signal);
      for (const [i, fault] of job.faults.entries()) {
        throwIfAborted(io.signal);
        io.progress(i, job.faults.length, `faults (${fault})`);
        let role: string | undefined;
        if (fault === 'worker-crash') role = await busiestWorker(host);
        else {
          await waitUntil(
            async () => {
              role = await leaderName(host);
              return role !== undefined;
            },
            job.recoveryTimeoutMs,
            'a leader',
            io.signal,
          );
        }
        const owner = (await admin.exists(PATHS.master))?.ephemeralOwner;
        const at = Date.now();
        const injecting =
          fault === 'leader-stop'
            ? host.removeRole(role!, { drain: false, deadlineMs: 1000 })
            : farm.faults!.crash(role!);
        const mark: Mark = { fault, role: role!, at };
        if (fault !== 'worker-crash') {
          await waitUntil(
            async () => {
              const s = await admin.exists(PATHS.master);
              return s !== null && s.ephemeralOwner !== owner;
            },
            job.recoveryTimeoutMs,
            'a new leader',
            io.signal,
            10,
          );
          mark.leaderChangeMs = Date.now() - at;
        }
        await injecting;
        // Recovered: every task submitted before the fault, and every task older than 1 s, has its status
        // (tasks handed to a crashed worker after the fault wait for its session to expire).
        await sleep(200, io.signal);
        const pending = new Set<string>();
        let cursor = 0;
        try {
          await waitUntil(
            async () => {
              const horizon = Math.max(at, Date.now() - 1000);
              while (cursor < stream.sent.length && stream.sent[cursor]!.sentAt < horizon)
                pending.add(stream.sent[cursor++]!.id);
              const ids = [...pending];
              const have = await Promise.all(ids.map((id) => admin.exists(statusPath(id))));
              ids.forEach((id, k) => {
                if (have[k] !== null) pending.delete(id);
              });
              return pending.size === 0;
            },
            job.recoveryTimeoutMs,
            `every task submitted before the ${fault} to finish`,
            io.signal,
            100,
          );
        } catch (err) {
          throw await withWhereabouts(err, admin, [...pending]);
        }
        mark.recoveredAt = Date.now();
        marks.push(mark);
        await sleep(job.steadyMs, io.signal);
      }
    } finally {
      stream.stop();
      await streaming.catch(() => {});
    }
    const stoppedAt = Date.now();
    const ids = stream.sent.map((s) => s.id);
    io.progress(job.faults.length, job.faults.length, 'faults');
    await waitForStatusCount(admin, ids.length, job.recoveryTimeoutMs, io, 'tasks done');
    const check = await checkFarm(admin, ids, { workdir: farm.workdir });
    const times = [...check.records.values()].map((r) => r.ctime).sort((a, b) => a - b);
    const sends = [...new Set(stream.sent.map((s) => s.sentAt))].sort((a, b) => a - b);
    const faults: FaultResult[] = marks.map((m, i) => {
      // The fault's window: from the previous fault's recovery (or the start) to this fault's recovery.
      // A task submitted after that belongs to the steady stream before the next fault.
      const from = marks[i - 1]?.recoveredAt ?? stream.startedAt;
      const next = Math.min(m.recoveredAt ?? stoppedAt, marks[i + 1]?.at ?? stoppedAt);
      // The last status of a task the fault affected: submitted before it, or delayed by it (> 1 s).
      let lastAffected = m.at;
      let reruns = 0;
      let maxLatency = 0;
      let delayed = 0;
      let slowest: FaultResult['slowest'];
      for (const s of stream.sent) {
        const r = check.records.get(s.id);
        if (!r || s.sentAt < from || s.sentAt >= next) continue;
        if (s.sentAt < m.at) {
          lastAffected = Math.max(lastAffected, r.ctime);
          if (r.status.attempts > 1) reruns++;
        }
        const latency = r.ctime - s.sentAt;
        if (latency > 1000) {
          delayed++;
          lastAffected = Math.max(lastAffected, r.ctime);
        }
        if (latency > maxLatency) {
          maxLatency = latency;
          const rel = (t: number | null | undefined) => (typeof t === 'number' ? t - m.at : null);
          slowest = {
            id: s.id,
            worker: r.status.worker,
            attempts: r.status.attempts,
            sentMs: s.sentAt - m.at,
            startedMs: rel(r.status.startedAt),
            finishedMs: rel(r.status.finishedAt),
            recordedMs: r.ctime - m.at,
          };
        }
      }
      return {
        fault: m.fault,
        role: m.role,
        at: m.at,
        // Without the tail: the window ends when the harness noticed the recovery, not at a status.
        gapMs: longestGap(times, m.at, next, false),
        submitGapMs: longestGap(sends, m.at, next, false),
        baselineGapMs: longestGap(times, Math.max(from, m.at - job.steadyMs + 200), m.at),
        recoverMs: lastAffected - m.at,
        maxLatencyMs: maxLatency,
        delayedTasks: delayed,
        ...(m.leaderChangeMs !== undefined ? { leaderChangeMs: m.leaderChangeMs } : {}),
        reruns,
        ...(slowest ? { slowest } : {}),
      };
    });
    return { shape: job.shape, rate: job.rate, tasks: ids.length, faults, check: summaryOf(check) };
  } finally {
    await farm.close();
  }
}
