/**
 * The faults the main chaos test does not reach: ZooKeeper gone altogether for longer than the session
 * timeout (a standalone server killed and started again with its data), and a worker cut off from
 * ZooKeeper by the network — briefly (its session survives: nothing may move), or silently for longer
 * than its session timeout (its tasks move on; when the network heals it rejoins). Every task ends with
 * exactly one status.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Master, Submitter, Worker } from '../src/farm/index.js';
import { PATHS } from '../src/farm/protocol.js';
import { countResults } from '../src/farm/status-store.js';
import { createLogger, Host } from '../src/host/index.js';
import { connect, type Logger, startZkServer, ZK_CODES, ZkClient, ZkError } from '../src/zk/index.js';
import { restartStandalone, runFaultPlan, until } from './helpers/chaos.js';
import { useCleanups } from './helpers/cleanups.js';
import { sourceThreads, startFaultProxy } from './helpers/faults.js';
import { checkInvariants, recordTaskHistory, waitForStatuses } from './helpers/invariants.js';
import { RunLog } from './helpers/run-log.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-outage-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** The execution log of the outage farm (its workers log each run they start at debug level). */
const runs = new RunLog();
/** The outage farm's warnings and errors (the last 100), printed if it fails. */
const farmWarnings: string[] = [];
const quiet = createLogger({
  level: 'debug',
  pretty: false,
  destination: new Writable({
    write(chunk, _e, cb) {
      for (const l of String(chunk).split('\n')) {
        if (l.includes('"task started"')) runs.record(JSON.parse(l));
        else if (/"level":(40|50|60)/.test(l)) {
          farmWarnings.push(l.slice(0, 400));
          if (farmWarnings.length > 100) farmWarnings.shift();
        }
      }
      cb();
    },
  }),
});

/** A logger for in-process roles that keeps warnings for diagnosis. */
function keep(into: string[]): Logger {
  const push = (level: string) => (obj: object, msg?: string) => {
    if (into.length < 200) into.push(`${level} ${msg ?? ''} ${JSON.stringify(obj).slice(0, 200)}`);
  };
  return { debug() {}, info() {}, warn: push('warn'), error: push('error') };
}

test('ZooKeeper down for longer than the session timeout (killed, started again with its data): the farm resumes, nothing lost', async () => {
  const server = await startZkServer({ tickTime: 500 });
  cleanups.push(() => server.stop());
  const root = `${server.connectString}/outage`;
  const workdir = join(tmp, 'outage');
  const host = await Host.start(
    {
      connect: root,
      sessionTimeout: 3000,
      workdir,
      taskDirs: 'always', // the invariant check finds extra runs by their directories
      roles: [
        { kind: 'master', name: 'm1' },
        { kind: 'master', name: 'm2' },
        ...['w1', 'w2', 'w3'].map((name) => ({ kind: 'worker' as const, name, capacity: 4 })),
      ],
    },
    { logger: quiet, restartDelayMs: 500, spawn: sourceThreads },
  );
  cleanups.push(() => host.stop({ drain: false, deadlineMs: 2000 }));
  const sub = await Submitter.open({ connect: root, sessionTimeout: 30_000 });
  cleanups.push(() => sub.close());
  // ~12 s of work for 12 slots: the outage lands in the middle of it.
  const ids = await sub.submitMany(
    Array.from({ length: 300 }, (_, i) => ({ handler: 'sleep', input: 300 + (i % 5) * 100 })),
  );
  await until(async () => (await sub.result(ids[20]!)) !== undefined, 30_000, 'work under way');
  const doneBefore = await countResults(sub.supervisor.session!.client);
  assert.ok(
    doneBefore < ids.length / 2,
    `most of the work is still to do when ZooKeeper dies (${doneBefore} done)`,
  );

  // Down for more than twice every session timeout: every role's session is lost on its side.
  const faults = await runFaultPlan([{ at: 0, fault: restartStandalone(server, 8000) }], {
    recoveryTimeoutMs: 60_000,
  });
  assert.equal(faults.records[0]?.error, undefined);

  const sup = connect({ connect: root, sessionTimeout: 20_000 });
  cleanups.push(() => sup.stop());
  const admin = (await sup.ready).client;
  await waitForStatuses(admin, ids, 120_000).catch((err: Error) => {
    err.message += `\nthe farm's last warnings:\n${farmWarnings.join('\n')}`;
    throw err;
  });
  await until(
    async () => (await host.roles()).every((r) => r.state === 'running' && r.session === 'connected'),
    60_000,
    'every role back',
  );
  const report = await checkInvariants(admin, ids, { workdir, runs });
  assert.deepEqual(report.problems, []);
  assert.ok(runs.runs.length >= ids.length, 'the execution log saw every run');
  const roles = await host.roles();
  assert.ok(
    roles.every((r) => r.sessions >= 2 || r.state === 'running'),
    'roles carried on with new sessions',
  );
  console.log(
    `# outage: ZooKeeper down ${faults.records[0]?.recoveryMs} ms in all, ${doneBefore} of ${ids.length} tasks done before; ${report.reruns.length} ran again, ` +
      `sessions per role: ${roles.map((r) => `${r.name}=${r.sessions}`).join(' ')}`,
  );
});

/** A master, a worker behind a fault proxy (the one we partition), and a healthy worker. */
async function partitionFarm(name: string, sessionTimeout: number) {
  const root = await zk.chroot(name);
  const chroot = root.slice(root.indexOf('/'));
  const workdir = join(tmp, name);
  const logs: string[] = [];
  const runs = new RunLog();
  const proxy = await startFaultProxy({ target: zk.server.connectString });
  cleanups.push(() => proxy.close());
  const master = new Master({ name: 'm1', connect: root, sessionTimeout });
  cleanups.push(() => master.stop());
  await master.start();
  const victim = new Worker({
    name: 'cutoff',
    connect: `${proxy.address}${chroot}`,
    sessionTimeout,
    workdir,
    taskDirs: 'always',
    capacity: 4,
    logger: runs.logger('cutoff', keep(logs)),
  });
  cleanups.push(() => victim.stop({ drain: false }));
  await victim.start();
  const sub = await Submitter.open({ connect: root });
  cleanups.push(() => sub.close());
  const sup = connect({ connect: root });
  cleanups.push(() => sup.stop());
  const admin = (await sup.ready).client;
  /** A second worker with room for every task, connected directly (the partition does not reach it). */
  const startHealthyWorker = async () => {
    const healthy = new Worker({
      name: 'healthy',
      connect: root,
      sessionTimeout,
      workdir,
      taskDirs: 'always',
      capacity: 8,
      logger: runs.logger('healthy'),
    });
    cleanups.push(() => healthy.stop({ drain: false }));
    await healthy.start();
    return healthy;
  };
  return { root, workdir, proxy, master, victim, sub, admin, logs, runs, startHealthyWorker };
}

test('a worker cut off from ZooKeeper for less than its session timeout keeps its tasks: nothing moves, nothing runs twice', async () => {
  const f = await partitionFarm('short-cut', 8000);
  const ids = await f.sub.submitMany(Array.from({ length: 8 }, () => ({ handler: 'sleep', input: 2500 })));
  await until(() => f.victim.stats().running === 4, 20_000, 'the worker busy');
  await f.startHealthyWorker();
  const sessionBefore = f.victim.info().sessionId;
  f.proxy.cut(2000);
  await sleep(2500);
  await f.sub.waitForAll(ids, { timeoutMs: 60_000 });
  const report = await checkInvariants(f.admin, ids, {
    workdir: f.workdir,
    disturbed: new Set(),
    runs: f.runs,
  });
  assert.deepEqual(report.problems, []);
  assert.equal(report.reruns.length, 0, 'no task ran twice');
  assert.equal(f.victim.info().sessionId, sessionBefore, 'the same session');
  assert.equal(f.victim.stats().fenced, 0);
});

test('a worker silently partitioned for longer than its session timeout: its tasks run elsewhere; healed, it rejoins; one status each', async () => {
  const f = await partitionFarm('long-partition', 3000);
  const history = await recordTaskHistory({ connect: f.root });
  cleanups.push(() => history.stop());
  const ids = await f.sub.submitMany(
    Array.from({ length: 8 }, (_, i) => ({ handler: 'sleep', input: 4000, i })),
  );
  await until(() => f.victim.stats().running === 4, 20_000, 'the worker busy');
  await f.startHealthyWorker();
  const sessionBefore = f.victim.info().sessionId;
  // A silent partition: the connection stays open, nothing gets through (no reset, no FIN).
  f.proxy.blackhole(true);
  // The server expires the session; the master gives the victim's tasks to the healthy worker.
  await until(
    async () => (await f.admin.exists(`${PATHS.workers}/cutoff`)) === null,
    30_000,
    'the server to expire the cut-off worker',
  );
  const results = await f.sub.waitForAll(ids, { timeoutMs: 90_000 });
  assert.ok(results.every((r) => r.state === 'succeeded'));
  f.proxy.blackhole(false);
  f.proxy.restore();
  // Healed: the victim finds out its session is gone, starts a new one and registers again.
  await until(
    () => f.victim.info().sessionId !== sessionBefore && f.victim.info().session === 'connected',
    60_000,
    'the worker to rejoin',
  );
  await until(
    async () => (await f.admin.exists(`${PATHS.workers}/cutoff`)) !== null,
    30_000,
    'the worker registered again',
  );
  await history.stop();
  const report = await checkInvariants(f.admin, ids, {
    workdir: f.workdir,
    disturbed: new Set(['cutoff']),
    history,
    runs: f.runs,
  });
  assert.deepEqual(report.problems, [], f.logs.join('\n'));
  assert.ok(report.reruns.length >= 4, `the victim's tasks ran again elsewhere (${report.reruns.length})`);
  for (const id of report.reruns) assert.equal(report.statuses.get(id)?.worker, 'healthy');
  // It works again after rejoining.
  const more = await f.sub.submitMany(Array.from({ length: 16 }, () => ({ handler: 'noop' })));
  await f.sub.waitForAll(more, { timeoutMs: 30_000 });
});

test('a transient ZooKeeper error while a worker checks a re-run task for a status does not strand the task', async () => {
  // A task that ran before (given back after its worker was lost) is checked for an existing status
  // before it runs again. If that check meets connection trouble, the task must be read again later,
  // not dropped: otherwise it stays in /assign/<w> for as long as the worker lives.
  const root = await zk.chroot('transient-check');
  const workdir = join(tmp, 'transient-check');
  const master = new Master({ name: 'm1', connect: root, sessionTimeout: 6000 });
  cleanups.push(() => master.stop());
  await master.start();
  const worker = new Worker({
    name: 'w1',
    connect: root,
    sessionTimeout: 6000,
    workdir,
    taskDirs: 'always',
    capacity: 2,
  });
  cleanups.push(() => worker.stop({ drain: false }));
  await worker.start();
  const sup = connect({ connect: root });
  cleanups.push(() => sup.stop());
  const admin = (await sup.ready).client;

  // The next `exists` on a /status path, from any client of this process, fails as if the connection dropped.
  const original = ZkClient.prototype.exists;
  let injected = 0;
  ZkClient.prototype.exists = function (
    this: ZkClient,
    path: string,
    watcher?: Parameters<typeof original>[1],
  ) {
    if (path.startsWith(`${PATHS.status}/`) && injected === 0) {
      injected++;
      return Promise.reject(new ZkError(ZK_CODES.CONNECTION_LOSS, 'exists', path));
    }
    return original.call(this, path, watcher);
  };
  cleanups.push(() => {
    ZkClient.prototype.exists = original;
  });
  const id = 'task-0000000077';
  await admin.create(
    `${PATHS.tasks}/${id}`,
    JSON.stringify({ handler: 'echo', input: 'again', _zkfarm: { attempts: 1, lostOn: ['ghost'] } }),
  );
  await until(() => injected > 0, 20_000, 'the status check to be made');
  ZkClient.prototype.exists = original;
  await waitForStatuses(admin, [id], 30_000);
  const report = await checkInvariants(admin, [id], { workdir });
  assert.deepEqual(report.problems, []);
  assert.equal(report.statuses.get(id)?.result, 'again');
});
