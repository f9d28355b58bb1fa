/**
 * The chaos test: a host with 2 masters and 6 workers (each role a thread with its own session, made by
 * zkfarm/testing's FaultInjector) on a 3-member ZooKeeper ensemble runs a stream of tasks while a fault plan kills
 * worker threads, crashes the leading master, expires sessions, and kills the ZooKeeper leader and starts
 * it again. Afterwards the invariant checker must pass: every task has exactly one status, nothing is left
 * in /tasks or /assign, every succeeded task has its output, and every re-execution is traced to a role
 * that was disturbed.
 *
 *   node --import tsx --test test/chaos.test.ts                 short form (1,500 tasks, ~2 minutes)
 *   ZKFARM_LONG=1 node --import tsx --test test/chaos.test.ts   long form (5,000 tasks, ~5 minutes)
 *
 * It prints a summary: faults injected with their recovery times, tasks, re-executions.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { Task, TaskStatus } from '../src/farm/protocol.js';
import { PATHS } from '../src/farm/protocol.js';
import { countResults } from '../src/farm/status-store.js';
import { Submitter } from '../src/farm/submitter.js';
import { createLogger, Host } from '../src/host/index.js';
import type { RoleSpec } from '../src/host/types.js';
import { connect, isZkError, startZkEnsemble, type ZkEnsemble } from '../src/zk/index.js';
import {
  busyWorker,
  crashLeadingMaster,
  crashRole,
  expireLeaderSession,
  expireRoleSession,
  formatFaultTable,
  type HostFarm,
  killZkLeader,
  killZkMember,
  type PlannedFault,
  restartZkMembers,
  runFaultPlan,
  together,
  until,
  watchRoles,
} from './helpers/chaos.js';
import { useCleanups } from './helpers/cleanups.js';
import { FaultInjector } from './helpers/faults.js';
import { checkInvariants, recordTaskHistory, waitForStatuses } from './helpers/invariants.js';
import { RunLog } from './helpers/run-log.js';

const LONG = process.env['ZKFARM_LONG'] === '1';
const TASKS = LONG ? 5000 : 1500;
/** The stream of submissions is spread over this long, so that faults land mid-stream. */
const SUBMIT_SPREAD_MS = LONG ? 240_000 : 55_000;
const BATCH = 50;
const SESSION_TIMEOUT = 6000;

const cleanups = useCleanups();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Log lines are counted by level and kept (warnings and errors) for the summary. */
const logCounts = new Map<string, number>();
/** The execution log: every run a worker started (its debug line), for the invariant check. */
const runs = new RunLog();
const serious: string[] = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    for (const l of String(chunk).split('\n')) {
      if (!l.trim()) continue;
      try {
        const o = JSON.parse(l) as { level: number; msg: string; role?: string };
        if (o.level < 30) {
          runs.record(o);
          continue;
        }
        const key = `${o.level >= 50 ? 'error' : o.level >= 40 ? 'warn' : 'info'}: ${o.msg.replace(/task-\d+|\d+ ms|[0-9a-f]{16}/g, '…')}`;
        logCounts.set(key, (logCounts.get(key) ?? 0) + 1);
        if (o.level >= 50 && serious.length < 50) serious.push(`[${o.role}] ${o.msg}`);
      } catch {
        // not JSON
      }
    }
    cb();
  },
});

function taskFor(i: number): Task {
  switch (i % 3) {
    case 0:
      return { handler: 'sleep', input: 10 + (i % 40), n: i };
    case 1:
      return { handler: 'echo', input: { n: i } };
    default:
      return { handler: 'noop', n: i };
  }
}

function plan(farm: HostFarm, ensemble: ZkEnsemble): PlannedFault[] {
  const { host } = farm;
  const round = (t0: number): PlannedFault[] => [
    { at: t0 + 4_000, fault: crashRole(farm, () => busyWorker(host)) },
    { at: t0 + 12_000, fault: expireRoleSession(farm, () => busyWorker(host)) },
    { at: t0 + 22_000, fault: crashLeadingMaster(farm) },
    { at: t0 + 34_000, fault: killZkLeader(ensemble) },
    { at: t0 + 46_000, fault: restartZkMembers(ensemble) },
    { at: t0 + 54_000, fault: expireLeaderSession(farm) },
    { at: t0 + 62_000, fault: crashRole(farm, () => busyWorker(host)) },
  ];
  if (!LONG) return round(0);
  let picked = '';
  // Long form: three rounds, and between them a follower's death and two workers lost at once.
  const follower = async () => {
    const leader = await ensemble.leaderId();
    return ensemble.members.map((m) => m.id).find((id) => id !== leader)!;
  };
  return [
    ...round(0),
    { at: 75_000, fault: killZkMember(ensemble, follower) },
    { at: 80_000, fault: crashRole(farm, () => busyWorker(host)) },
    { at: 86_000, fault: restartZkMembers(ensemble) },
    ...round(95_000),
    {
      at: 170_000,
      fault: together(
        expireRoleSession(farm, async () => (picked = await busyWorker(host))),
        crashRole(farm, () => busyWorker(host, [picked])),
      ),
    },
    ...round(185_000),
  ];
}

test(`chaos: 2 masters and 6 workers on a 3-member ensemble run ${TASKS} tasks through a fault plan; every task has exactly one result`, async () => {
  const t0 = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-chaos-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const workdir = join(tmp, 'work');

  const ensemble = await startZkEnsemble({ size: 3, tickTime: 1000 });
  cleanups.push(() => ensemble.stop());
  const root = `${ensemble.connectString}/chaos`;

  const roles: RoleSpec[] = [
    { kind: 'master', name: 'm1' },
    { kind: 'master', name: 'm2' },
    ...Array.from({ length: 6 }, (_, i) => ({ kind: 'worker' as const, name: `w${i + 1}`, capacity: 4 })),
  ];
  const injector = new FaultInjector();
  const host = await Host.start(
    {
      connect: root,
      sessionTimeout: SESSION_TIMEOUT,
      workdir,
      // The invariant check finds extra runs by their output directories.
      taskDirs: 'always',
      roles,
    },
    {
      logger: createLogger({ level: 'debug', pretty: false, destination: sink }),
      restartDelayMs: 500,
      spawn: injector.spawn,
    },
  );
  cleanups.push(() => host.stop({ drain: false, deadlineMs: 5000 }));
  await until(async () => (await host.roles()).some((r) => r.leader), 30_000, 'a leading master');

  const adminSup = connect({ connect: root, sessionTimeout: 20_000 });
  cleanups.push(() => adminSup.stop());
  await adminSup.ready;
  const admin = () => {
    const s = adminSup.session;
    if (!s) throw new Error('admin has no session right now');
    return s.client;
  };
  const history = await recordTaskHistory({ connect: root });
  cleanups.push(() => history.stop());
  const roleWatch = watchRoles(host);
  cleanups.push(() => roleWatch.stop());
  const sub = await Submitter.open({ connect: root, sessionTimeout: 20_000 });
  cleanups.push(() => sub.close());

  // The stream: batches spread over SUBMIT_SPREAD_MS. A batch that fails with connection trouble may or
  // may not have been created (ZooKeeper cannot say): it is counted as ambiguous and sent again.
  const ids: string[] = [];
  let ambiguous = 0;
  const submitErrors = new Map<string, number>();
  const streamStart = Date.now();
  const stream = (async () => {
    const batches = Math.ceil(TASKS / BATCH);
    for (let b = 0; b < batches; b++) {
      const due = streamStart + (b * SUBMIT_SPREAD_MS) / batches;
      if (due > Date.now()) await sleep(due - Date.now());
      const tasks = Array.from({ length: Math.min(BATCH, TASKS - b * BATCH) }, (_, k) =>
        taskFor(b * BATCH + k),
      );
      for (let attempt = 1; ; attempt++) {
        try {
          ids.push(...(await sub.submitMany(tasks)));
          break;
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'unknown';
          submitErrors.set(code, (submitErrors.get(code) ?? 0) + 1);
          if (/may or may not be in \/tasks/.test((err as Error).message)) ambiguous++;
          if (attempt >= 60) throw err;
          await sleep(500);
        }
      }
    }
  })();

  const statusCount = () => countResults(admin());
  const faults = await runFaultPlan(plan({ host, faults: injector }, ensemble), {
    deadlineMs: LONG ? 360_000 : 120_000,
    recoveryTimeoutMs: 90_000,
    progress: statusCount,
    onRecord: (r) =>
      console.log(
        `# fault at +${(r.injectedAt / 1000).toFixed(1)} s: ${r.kind} ${r.target} → ${r.error ?? `recovered in ${r.recoveryMs} ms`}`,
      ),
  });
  await stream;
  const streamMs = Date.now() - streamStart;

  // Every task must end with a status (bounded), and nothing may stay behind.
  await waitForStatuses(admin(), ids, LONG ? 600_000 : 240_000);
  await until(
    async () => (await admin().getChildren(PATHS.tasks)).length === 0,
    60_000,
    'an empty /tasks (tasks from ambiguous submissions included)',
  );
  const doneMs = Date.now() - streamStart;
  await roleWatch.stop();
  await history.stop();
  const finalRoles = await host.roles();
  const workerStats = await host.allStats();

  const disturbed = new Set([...faults.disturbed, ...roleWatch.disturbed]);
  const report = await checkInvariants(admin(), ids, { workdir, disturbed, history, runs });
  const totalStatuses = await statusCount();

  // ---- summary ------------------------------------------------------------------------------------
  const byState = new Map<string, number>();
  for (const s of report.statuses.values() as Iterable<TaskStatus>) {
    const k = s.state === 'succeeded' ? 'succeeded' : `failed ${s.errorCode}`;
    byState.set(k, (byState.get(k) ?? 0) + 1);
  }
  const attempts = new Map<number, number>();
  for (const s of report.statuses.values()) attempts.set(s.attempts, (attempts.get(s.attempts) ?? 0) + 1);
  const recoveries = new Map<string, number[]>();
  for (const r of faults.records)
    if (r.recoveryMs !== undefined) recoveries.set(r.kind, [...(recoveries.get(r.kind) ?? []), r.recoveryMs]);
  const summary = [
    `chaos summary (${LONG ? 'long' : 'short'} form, ZKFARM_LONG=${LONG ? 1 : 0})`,
    `  farm: 2 masters + 6 workers (capacity 4) in one host, 3-member ZooKeeper ensemble, session timeout ${SESSION_TIMEOUT} ms`,
    `  tasks: ${ids.length} submitted over ${(streamMs / 1000).toFixed(1)} s; all had a status ${(doneMs / 1000).toFixed(1)} s after the first submit; ${totalStatuses} statuses in all (${totalStatuses - ids.length} from ambiguous submissions)`,
    `  results: ${[...byState].map(([k, n]) => `${n} ${k}`).join(', ')}`,
    `  attempts per task: ${[...attempts]
      .sort((a, b) => a[0] - b[0])
      .map(([a, n]) => `${a}: ${n}`)
      .join(', ')}`,
    `  re-executions: ${report.reruns.length} tasks ran more than once (${report.rerunsVerified} traced to a disturbed worker, ${report.rerunsUnverifiable} without evidence either way, ${report.unexplained.length} unexplained); ${report.extraRuns} extra output directories`,
    `  execution log: ${runs.runs.length} runs started for ${new Set(runs.runs.map((r) => r.task)).size} tasks; ${report.badRuns.length} against the protocol (an assignment run twice, or on a session that did not hold it)`,
    `  re-queues observed in /tasks: ${history.requeues.size} tasks; disturbed roles: ${[...disturbed].sort().join(', ') || 'none'}`,
    `  submissions: ${[...submitErrors].map(([c, n]) => `${n} ${c}`).join(', ') || 'no errors'}${ambiguous ? `, ${ambiguous} ambiguous (sent again)` : ''}`,
    `  completions fenced (a lost task finished on its old worker): ${workerStats.reduce((n, s) => n + (s.fenced ?? 0), 0)} (since each thread's last start)`,
    `  faults: ${faults.records.length} injected, ${faults.records.filter((r) => r.error).length} failed or not recovered, ${faults.skipped} skipped`,
    ...formatFaultTable(faults.records)
      .split('\n')
      .map((l) => `    ${l}`),
    `  recovery by kind: ${[...recoveries].map(([k, v]) => `${k} ${Math.min(...v)}–${Math.max(...v)} ms`).join('; ')}`,
    `  invariants: ${report.ok ? 'ok' : report.problems.join('; ')}`,
    `  log lines: ${[...logCounts]
      .filter(([k]) => !k.startsWith('info'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([k, n]) => `${n}× ${k}`)
      .join(' | ')}`,
    `  total time ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  ].join('\n');
  console.log(summary);
  if (serious.length) console.log(`first errors logged:\n  ${serious.slice(0, 10).join('\n  ')}`);

  assert.deepEqual(report.problems, [], 'invariants');
  assert.ok(runs.runs.length >= ids.length, 'the execution log saw every run');
  assert.equal(
    faults.records.filter((r) => r.error).length,
    0,
    'every fault was injected and recovered from',
  );
  assert.ok(faults.records.length >= 7, 'the plan ran');
  for (const [k] of byState)
    assert.ok(k === 'succeeded' || k === 'failed ZKFARM_WORKER_LOST', `unexpected result kind ${k}`);
  assert.ok(
    finalRoles.every((r) => r.state === 'running'),
    `every role runs again: ${JSON.stringify(finalRoles.map((r) => [r.name, r.state]))}`,
  );
  assert.equal(finalRoles.filter((r) => r.leader).length, 1, 'one leader');
  // A listing of /assign also proves the layout survived.
  const assign = await admin()
    .getChildren(PATHS.assign)
    .catch((e: unknown) => (isZkError(e) ? [] : Promise.reject(e)));
  assert.ok(Array.isArray(assign));
});
