/**
 * The farm protocol against a real ZooKeeper: masters, workers and submitters in one process, each role
 * with its own session, each test in its own chroot.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  Master,
  type MasterOptions,
  type SubmitManyError,
  Submitter,
  Worker,
  type WorkerOptions,
} from '../src/farm/index.js';
import { AUTO_PREFETCH_MAX_FACTOR } from '../src/farm/prefetch.js';
import {
  assignDir,
  assignPath,
  encode,
  PATHS,
  parseStatus,
  statusPath,
  type TaskStatus,
  taskPath,
} from '../src/farm/protocol.js';
import { connect, type Supervisor } from '../src/zk/index.js';
import {
  expireSession,
  type FaultProxy,
  killSession,
  proxyConnectString,
  startFaultProxy,
} from './helpers/faults.js';
import { checkInvariants, waitForStatuses } from './helpers/invariants.js';
import { RunLog } from './helpers/run-log.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-farm-test-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));

async function master(connectString: string, name: string, extra: Partial<MasterOptions> = {}) {
  const m = new Master({ name, connect: connectString, sessionTimeout: 4000, ...extra });
  cleanups.push(() => m.stop());
  await m.start();
  return m;
}

/** The execution log of each chroot: every run its workers started. */
const runLogs = new Map<string, RunLog>();
function runs(root: string): RunLog {
  const log = runLogs.get(root) ?? new RunLog();
  runLogs.set(root, log);
  return log;
}

/** `logAs`: the chroot whose run log records this worker's runs (its own connect string by default). */
async function worker(
  connectString: string,
  name: string,
  extra: Partial<WorkerOptions> = {},
  logAs = connectString,
) {
  const w = new Worker({
    name,
    connect: connectString,
    sessionTimeout: 4000,
    workdir,
    capacity: 4,
    ...extra,
    logger: runs(logAs).logger(name, extra.logger),
  });
  cleanups.push(() => w.stop({ drain: false }));
  await w.start();
  return w;
}

/** `connectString` through a fault proxy of its own (to slow or cut one role's link). */
async function proxied(connectString: string): Promise<{ proxy: FaultProxy; connect: string }> {
  const proxy = await startFaultProxy({ target: connectString });
  cleanups.push(() => proxy.close());
  return { proxy, connect: proxyConnectString(proxy, connectString) };
}

async function submitter(connectString: string) {
  const s = await Submitter.open({ connect: connectString, sessionTimeout: 10_000 });
  cleanups.push(() => s.close());
  return s;
}

async function admin(connectString: string) {
  const sup: Supervisor = connect({ connect: connectString });
  cleanups.push(() => sup.stop());
  return (await sup.ready).client;
}

test('1 master, 3 workers: 500 handler tasks and 20 shell tasks each end with exactly one status', async () => {
  const root = await zk.chroot('flow');
  await master(root, 'm1');
  await Promise.all(['w1', 'w2', 'w3'].map((n) => worker(root, n, { allowShell: true })));
  const sub = await submitter(root);
  const handlerTasks = Array.from({ length: 500 }, (_, i) => ({ handler: 'echo', input: { i } }));
  const shellTasks = Array.from({ length: 20 }, (_, i) => ({ cmd: `echo out-${i}; echo err-${i} >&2` }));
  const ids = await sub.submitMany(handlerTasks);
  const shellIds = await Promise.all(shellTasks.map((t) => sub.submit(t)));
  const results = await sub.waitForAll([...ids, ...shellIds], { timeoutMs: 60_000 });
  assert.ok(
    results.every((r) => r.state === 'succeeded'),
    'all succeeded',
  );
  // echo returns its input, in order of submission.
  results.slice(0, 500).forEach((r, i) => {
    assert.deepEqual(r.result, { i });
  });

  const c = await admin(root);
  const report = await checkInvariants(c, [...ids, ...shellIds], { workdir, runs: runs(root) });
  assert.deepEqual(report.problems, []);
  const workersUsed = new Set([...report.statuses.values()].map((s) => s.worker));
  assert.equal(workersUsed.size, 3, 'every worker got work');

  const s = report.statuses.get(shellIds[3]!)!;
  assert.equal(s.exitCode, 0);
  // The submit time travels with the task into its status.
  assert.ok(
    typeof s.submittedAt === 'number' && s.submittedAt <= (s.startedAt ?? 0),
    `submittedAt ${s.submittedAt}`,
  );
  assert.ok(s.submittedAt > Date.now() - 120_000);
  const dir = join(workdir, s.worker!, shellIds[3]!);
  assert.equal(readFileSync(join(dir, 'stdout.log'), 'utf8'), 'out-3\n');
  assert.equal(readFileSync(join(dir, 'stderr.log'), 'utf8'), 'err-3\n');
  assert.equal(JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')).state, 'succeeded');
  assert.equal(statSync(join(dir, 'result.json')).mode & 0o777, 0o600, 'output files are owner-only');
});

test('malformed tasks written with a raw client get a failed status with a reason; roles keep working', async () => {
  const root = await zk.chroot('malformed');
  await master(root, 'm1');
  await worker(root, 'w1'); // shell not allowed
  const c = await admin(root);
  const raw = async (data: string) =>
    (await c.createSequential('/tasks/task-', data)).slice('/tasks/'.length);
  const bad = {
    notJson: await raw('{"cmd": '),
    empty: await raw('{}'),
    array: await raw('[1,2,3]'),
    unknownHandler: await raw('{"handler":"no-such-handler"}'),
    shell: await raw('{"cmd":"touch /tmp/should-not-exist"}'),
  };
  const good = await raw('{"handler":"echo","input":"still alive"}');
  const sub = await submitter(root);
  const r = Object.fromEntries(
    await Promise.all(
      Object.entries(bad).map(async ([k, id]) => [k, await sub.waitFor(id, { timeoutMs: 20_000 })]),
    ),
  ) as Record<keyof typeof bad, TaskStatus>;
  assert.match(r.notJson.error ?? '', /not valid JSON/);
  assert.match(r.empty.error ?? '', /exactly one of "cmd".*"handler"/);
  assert.match(r.array.error ?? '', /must be a JSON object/);
  assert.match(r.unknownHandler.error ?? '', /no-such-handler/);
  assert.equal(r.unknownHandler.errorCode, 'ZKFARM_UNKNOWN_HANDLER');
  assert.equal(r.shell.errorCode, 'ZKFARM_SHELL_DISABLED');
  assert.match(r.shell.error ?? '', /allow-shell|allowShell/);
  for (const s of Object.values(r)) assert.equal(s.state, 'failed');
  assert.equal((await sub.waitFor(good, { timeoutMs: 20_000 })).result, 'still alive');
  const report = await checkInvariants(c, [...Object.values(bad), good]);
  assert.deepEqual(report.problems, []);
});

test('no workers at first: tasks wait; workers join and the queue runs', async () => {
  const root = await zk.chroot('late-workers');
  await master(root, 'm1');
  const sub = await submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 40 }, () => ({ handler: 'noop' })));
  await new Promise((r) => setTimeout(r, 500));
  const c = await admin(root);
  assert.equal((await c.getChildren(PATHS.tasks)).length, 40, 'tasks wait in /tasks');
  await worker(root, 'late1', { capacity: 2 });
  await worker(root, 'late2', { capacity: 2 });
  await sub.waitForAll(ids, { timeoutMs: 30_000 });
  assert.deepEqual((await checkInvariants(c, ids, { workdir, runs: runs(root) })).problems, []);
});

test('a worker of capacity 1 handed thousands of tasks that end at once runs each of them once', async () => {
  // Synchronous handlers end inside the worker's start loop: the loop must go on, not nest.
  const root = await zk.chroot('deep-sync');
  const sub = await submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 3000 }, (_, i) => ({ handler: 'echo', input: i })));
  await master(root, 'm1');
  await worker(root, 'deep1', { capacity: 1, prefetch: 4000 });
  const statuses = await sub.waitForAll(ids, { timeoutMs: 60_000 });
  assert.deepEqual(
    statuses.map((s) => s.result),
    ids.map((_, i) => i),
  );
  const c = await admin(root);
  assert.deepEqual((await checkInvariants(c, ids, { workdir, runs: runs(root) })).problems, []);
});

test('a failing task is retried up to maxAttempts with backoff, then fails with its reason', async () => {
  const root = await zk.chroot('retry');
  await master(root, 'm1');
  await worker(root, 'w1', { retryDelayMs: 50 });
  await worker(root, 'w2', { retryDelayMs: 50 });
  const sub = await submitter(root);
  const id = await sub.submit({ handler: 'fail', input: 'boom', maxAttempts: 3 });
  const once = await sub.submit({ handler: 'fail', input: 'once' });
  const s = await sub.waitFor(id, { timeoutMs: 20_000 });
  assert.equal(s.state, 'failed');
  assert.equal(s.attempts, 3);
  assert.match(s.error!, /boom/);
  const s1 = await sub.waitFor(once, { timeoutMs: 20_000 });
  assert.equal(s1.attempts, 1, 'maxAttempts defaults to 1');
});

test('a worker whose session expires while it holds tasks: they run again elsewhere, one status each', async () => {
  const root = await zk.chroot('worker-expiry');
  await master(root, 'm1');
  // The victim is cut off while its session is expired, as in a partition. Left connected, it would
  // register again within milliseconds; a master that lists /workers after that sees no change and
  // rightly leaves the tasks with it, and nothing runs again.
  const link = await proxied(root);
  const victim = await worker(link.connect, 'victim', { capacity: 4 }, root);
  const sub = await submitter(root);
  const ids = await sub.submitMany(
    Array.from({ length: 8 }, (_, i) => ({ handler: 'sleep', input: 1500, i })),
  );
  await until(() => victim.stats().running > 0, 10_000, 'victim runs tasks');
  await worker(root, 'healthy', { capacity: 8 });
  const { sessionId, sessionPassword } = victim.sessionSupervisor!.session!.client.connection;
  link.proxy.blackhole(true);
  await killSession(root, sessionId, sessionPassword);
  const results = await sub.waitForAll(ids, { timeoutMs: 60_000 });
  link.proxy.restore();
  assert.ok(results.every((r) => r.state === 'succeeded' && r.worker === 'healthy'));
  // Back on a new session, the victim's runs that went on while it was cut off are fenced off.
  await until(() => victim.stats().fenced > 0, 30_000, 'the victim to find its completions fenced');
  const c = await admin(root);
  const report = await checkInvariants(c, ids, { workdir, runs: runs(root) });
  assert.deepEqual(report.problems, []);
  assert.equal(report.reruns.length, ids.length, 'every task the victim held ran again');
});

test('a worker that is stopped without drain (session closed) while busy: its tasks move on', async () => {
  const root = await zk.chroot('worker-close');
  await master(root, 'm1');
  const victim = await worker(root, 'victim2', { capacity: 2 });
  const sub = await submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 6 }, () => ({ handler: 'sleep', input: 800 })));
  await until(() => victim.stats().running > 0, 10_000, 'victim busy');
  const other = await worker(root, 'other', { capacity: 6 });
  await victim.stop({ drain: false });
  await sub.waitForAll(ids, { timeoutMs: 30_000 });
  const report = await checkInvariants(await admin(root), ids, { workdir, runs: runs(root) });
  assert.deepEqual(report.problems, []);
  // Counted once its completion multi is answered, a moment after the statuses exist.
  await until(() => other.stats().succeeded > 0, 10_000, 'the other worker to count what it ran');
});

test('the leading master dies mid-stream: a standby takes over and the stream completes', async () => {
  const root = await zk.chroot('master-failover');
  const m1 = await master(root, 'm1');
  await m1.waitForLeadership();
  const m2 = await master(root, 'm2');
  assert.equal(m2.isLeader, false);
  await worker(root, 'w1', { capacity: 4 });
  await worker(root, 'w2', { capacity: 4 });
  const sub = await submitter(root);
  const ids: string[] = [];
  for (let i = 0; i < 10; i++)
    ids.push(...(await sub.submitMany(Array.from({ length: 20 }, () => ({ handler: 'sleep', input: 5 })))));
  const expiry = expireSession(m1.sessionSupervisor!);
  for (let i = 0; i < 10; i++)
    ids.push(...(await sub.submitMany(Array.from({ length: 20 }, () => ({ handler: 'noop' })))));
  await until(() => m2.isLeader, 30_000, 'standby leads');
  await expiry;
  await sub.waitForAll(ids, { timeoutMs: 60_000 });
  assert.deepEqual(
    (await checkInvariants(await admin(root), ids, { workdir, runs: runs(root) })).problems,
    [],
  );
  assert.equal(m1.isLeader, false, 'the old leader stood down');
  // On its new session m1 stands by, and learns who leads.
  await until(
    () => m1.info().leaderName === 'm2',
    30_000,
    `m1 to see m2 lead (sees ${m1.info().leaderName})`,
  );
});

test('masters started one after another lead in that order, even when the first has a slow link', async () => {
  const root = await zk.chroot('master-order');
  const link = await proxied(root);
  link.proxy.setDelay(200);
  // m1's start resolves only once it stands in line: m2, on a fast link, cannot get ahead of it.
  const m1 = await master(link.connect, 'm1');
  const m2 = await master(root, 'm2');
  await until(() => m1.isLeader || m2.isLeader, 30_000, 'a leader');
  assert.deepEqual([m1.isLeader, m2.isLeader], [true, false], 'the master started first leads');
});

test("a master that starts while a dead worker's assignments are stranded gives them back", async () => {
  const root = await zk.chroot('stranded');
  const c = await admin(root);
  await Promise.all(
    Object.values(PATHS)
      .filter((p) => p !== PATHS.master)
      .map((p) => c.ensurePath(p)),
  );
  // A worker died while no master ran: its assignments stay behind.
  await c.ensurePath(assignDir('ghost'));
  const ids = ['task-0000000001', 'task-0000000002', 'task-0000000003'];
  for (const id of ids) await c.create(assignPath('ghost', id), encode({ handler: 'echo', input: id }));
  await worker(root, 'alive', { capacity: 4 });
  await master(root, 'm1');
  await waitForStatuses(c, ids, 20_000);
  const report = await checkInvariants(c, ids, { workdir, runs: runs(root) });
  assert.deepEqual(report.problems, []);
  for (const id of ids) {
    assert.equal(report.statuses.get(id)?.worker, 'alive');
    assert.equal(report.statuses.get(id)?.result, id);
  }
  assert.equal(await c.exists(assignDir('ghost')), null, "the dead worker's assign dir is removed");
});

test('stop() drains: running tasks finish and record their status before the session closes', async () => {
  const root = await zk.chroot('drain');
  await master(root, 'm1');
  const w = await worker(root, 'drainer', { capacity: 2, prefetch: 0 });
  const sub = await submitter(root);
  const ids = await sub.submitMany([
    { handler: 'sleep', input: 600 },
    { handler: 'sleep', input: 600 },
  ]);
  await until(() => w.stats().running === 2, 10_000, 'running');
  await w.stop({ drain: true, deadlineMs: 10_000 });
  const c = await admin(root);
  for (const id of ids) {
    const s = parseStatus((await c.getData(statusPath(id))).data);
    assert.equal(s.worker, 'drainer');
    assert.equal(s.state, 'succeeded');
  }
  assert.equal(await c.exists('/workers/drainer'), null, 'its ephemeral node is gone');
});

test('stop() past its drain deadline stops the running task, records nothing, and the task runs again elsewhere', async () => {
  const root = await zk.chroot('drain-deadline');
  await master(root, 'm1');
  const reasons: unknown[] = [];
  const stuck = await worker(root, 'stuck', {
    capacity: 1,
    prefetch: 0,
    handlers: {
      // Runs until it is stopped, and keeps why.
      wait: (_input, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            reasons.push(ctx.signal.reason);
            reject(ctx.signal.reason);
          });
        }),
    },
  });
  const sub = await submitter(root);
  const [id] = await sub.submitMany([{ handler: 'wait', input: 1 }]);
  await until(() => stuck.stats().running === 1, 10_000, 'running on stuck');
  await stuck.stop({ drain: true, deadlineMs: 200 });
  assert.equal(reasons.length, 1, 'the running task was stopped');
  const why = reasons[0] as { code?: string; message?: string };
  assert.equal(why.code, 'ZKFARM_TASK_ABORTED');
  assert.match(
    why.message ?? '',
    /drain deadline passed/,
    'stopped by the drain deadline, not by the close after it',
  );
  const c = await admin(root);
  assert.equal(await c.exists(statusPath(id!)), null, 'the stopped run records no result');
  await worker(root, 'next', { handlers: { wait: (input) => ({ again: input }) } });
  await waitForStatuses(c, [id!], 20_000);
  const s = parseStatus((await c.getData(statusPath(id!))).data);
  assert.equal(s.worker, 'next');
  assert.equal(s.state, 'succeeded');
  assert.deepEqual(s.result, { again: 1 });
});

test('a second worker with a live name is refused; a task that already has a status is not run again', async () => {
  const root = await zk.chroot('names');
  await master(root, 'm1');
  await worker(root, 'same');
  const dup = new Worker({ name: 'same', connect: root, sessionTimeout: 2000, workdir });
  cleanups.push(() => dup.stop({ drain: false }));
  await assert.rejects(dup.start(), (e: unknown) => (e as { code?: string }).code === 'ZKFARM_NAME_TAKEN');

  // A re-queued task whose status exists (recorded by an earlier run) is dropped, not run twice.
  const c = await admin(root);
  await c.ensurePath(
    statusPath('task-0000009999'),
    encode({ state: 'succeeded', worker: 'x', attempts: 1, startedAt: 1, finishedAt: 2 }),
  );
  await c.create(
    taskPath('task-0000009999'),
    encode({ handler: 'echo', input: 'again', _zkfarm: { attempts: 1 } }),
  );
  await until(async () => (await c.getChildren(PATHS.tasks)).length === 0, 10_000, 'queue empty');
  await until(
    async () => (await c.getChildren(assignDir('same'))).length === 0,
    10_000,
    'assignment dropped',
  );
  const s = parseStatus((await c.getData(statusPath('task-0000009999'))).data);
  assert.equal(s.worker, 'x', 'the first result stands');
  assert.equal(existsSync(join(workdir, 'same', 'task-0000009999')), false, 'it did not run again');
});

test('in a mixed farm, shell tasks go to the workers that allow shell', async () => {
  const root = await zk.chroot('mixed-shell');
  await master(root, 'm1');
  await worker(root, 'plain1');
  await worker(root, 'plain2');
  await worker(root, 'shelly', { allowShell: true });
  const sub = await submitter(root);
  const ids = await sub.submitMany(
    Array.from({ length: 12 }, (_, i) => (i % 2 ? { cmd: 'true' } : { handler: 'noop' })),
  );
  const results = await sub.waitForAll(ids, { timeoutMs: 30_000 });
  results.forEach((r, i) => {
    assert.equal(r.state, 'succeeded', `task ${i}: ${r.error}`);
    if (i % 2) assert.equal(r.worker, 'shelly');
  });
});

test("a task assigned and completed between two of the leader's listings frees its slot (no stall)", async () => {
  // With one slot, a leaked slot stalls the farm at once: the leader must learn that the slot is free
  // even when its next listing of /assign/<w> looks exactly like the last one.
  const root = await zk.chroot('no-stall');
  const link = await proxied(root);
  await master(link.connect, 'm1');
  await worker(root, 'single', { capacity: 1, prefetch: 0 });
  // A slow link to the leader: the worker runs and completes each task before the leader's next
  // listing of /assign/single arrives, so every listing looks like the one before (empty).
  link.proxy.setDelay(40);
  const sub = await submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 40 }, () => ({ handler: 'noop' })));
  await sub.waitForAll(ids, { timeoutMs: 60_000 });
  assert.deepEqual(
    (await checkInvariants(await admin(root), ids, { workdir, runs: runs(root) })).problems,
    [],
  );
});

test("prefetch 'auto': a worker of short tasks publishes a deeper prefetch and the leader fills it, no further", async () => {
  const root = await zk.chroot('auto-prefetch');
  await master(root, 'm1');
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const w = await worker(root, 'quick', {
    capacity: 2,
    handlers: { hold: () => gate.then(() => 'held') },
  });
  assert.equal(w.prefetch, 2, 'starts at capacity');
  const sub = await submitter(root);
  const c = await admin(root);
  const published = async () => JSON.parse(String((await c.getData('/workers/quick')).data)).prefetch;
  assert.equal(await published(), 2);

  // Short tasks: the worker publishes the most, AUTO_PREFETCH_MAX_FACTOR × capacity.
  const most = 2 * AUTO_PREFETCH_MAX_FACTOR;
  const quick = await sub.submitMany(Array.from({ length: 20 }, () => ({ handler: 'noop' })));
  await sub.waitForAll(quick, { timeoutMs: 30_000 });
  await until(async () => (await published()) === most, 10_000, `prefetch ${most} in /workers/quick`);
  assert.equal(w.prefetch, most);

  // Tasks that block: the leader hands over capacity + prefetch of them and keeps the rest queued.
  const limit = 2 + most;
  const held = await sub.submitMany(Array.from({ length: limit + 12 }, () => ({ handler: 'hold' })));
  await until(
    async () => (await c.exists(assignDir('quick')))?.numChildren === limit,
    10_000,
    `${limit} tasks assigned to quick`,
  );
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await c.exists(assignDir('quick')))?.numChildren, limit, 'no more than capacity + prefetch');
  assert.equal((await c.exists(PATHS.tasks))?.numChildren, 12, 'the rest wait in /tasks');

  release();
  await sub.waitForAll(held, { timeoutMs: 30_000 });
  assert.deepEqual(
    (await checkInvariants(c, [...quick, ...held], { workdir, runs: runs(root) })).problems,
    [],
  );
});

test('a worker restarted under its name gives back what its earlier run held, the loss counted; too many losses fail the task', async () => {
  // The state a crash leaves: assignments made to an earlier run of w1 (before this run registered),
  // and no master to give them back. A task that keeps crashing its worker must not keep it in a loop.
  const root = await zk.chroot('inherited');
  const c = await admin(root);
  for (const p of [PATHS.tasks, PATHS.status, assignDir('w1')]) await c.ensurePath(p);
  const once = 'task-0000000001';
  const thrice = 'task-0000000002';
  await c.create(assignPath('w1', once), encode({ handler: 'noop', _zkfarm: { attempts: 0 } }));
  await c.create(
    assignPath('w1', thrice),
    encode({ handler: 'noop', _zkfarm: { attempts: 2, lostOn: ['w1', 'w1'] } }),
  );
  const w = await worker(root, 'w1');

  await until(async () => (await c.exists(taskPath(once))) !== null, 10_000, `${once} back in /tasks`);
  const requeued = JSON.parse(String((await c.getData(taskPath(once))).data));
  assert.deepEqual(requeued._zkfarm, { attempts: 1, lostOn: ['w1'] });
  await until(async () => (await c.exists(statusPath(thrice))) !== null, 10_000, `a status for ${thrice}`);
  const status = parseStatus((await c.getData(statusPath(thrice))).data)!;
  assert.equal(status.state, 'failed');
  assert.equal(status.errorCode, 'ZKFARM_WORKER_LOST');
  assert.equal(status.attempts, 3);
  assert.match(status.error ?? '', /lost 3 times \(w1, w1, w1\)/);
  assert.deepEqual(await c.getChildren(assignDir('w1')), []);

  // An assignment made after it registered is its own: it runs, no loss counted.
  const fresh = 'task-0000000003';
  await c.create(assignPath('w1', fresh), encode({ handler: 'noop' }));
  await until(async () => (await c.exists(statusPath(fresh))) !== null, 10_000, `a status for ${fresh}`);
  const ran = parseStatus((await c.getData(statusPath(fresh))).data)!;
  assert.equal(ran.state, 'succeeded');
  assert.equal(ran.attempts, 1);
  assert.equal(w.stats().retried, 1);
});

test('a worker that vanishes while the leader is placing a batch on it gets nothing: no task is stranded', async () => {
  // The leader plans a batch for "ghost", then reads the tasks over a slow link; ghost's session ends
  // meanwhile (and the leader's give-back of ghost's tasks finds nothing yet). The assign multi checks
  // /workers/ghost, so it fails instead of leaving tasks in /assign/ghost for nobody.
  const root = await zk.chroot('vanishing-worker');
  const link = await proxied(root);
  await master(link.connect, 'm1');
  const ghostSup: Supervisor = connect({ connect: root });
  const ghost = (await ghostSup.ready).client;
  await ghost.ensurePath(assignDir('ghost'));
  await ghost.createEphemeral('/workers/ghost', encode({ capacity: 1000, prefetch: 0, paused: false }));
  const c = await admin(root);
  // Let the leader take ghost on (it lists /assign/ghost once), then slow its link down.
  await new Promise((r) => setTimeout(r, 500));
  link.proxy.setDelay(500);
  const sub = await submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 10 }, () => ({ handler: 'noop' })));
  // With 500 ms each way, the leader plans at about +0.5 s (ghost has room), lists /tasks, reads the tasks,
  // and its multi reaches the server at about +3 s. Ghost leaves at +0.5 s: the leader hears of it after
  // its listing of /workers, at about +2 s, and its give-back lists /assign/ghost (still empty) at about
  // +2.5 s, before the multi lands, and would remove that directory only at about +3.5 s.
  await new Promise((r) => setTimeout(r, 500));
  await ghostSup.stop();
  await new Promise((r) => setTimeout(r, 3000));
  link.proxy.restore();
  await worker(root, 'real');
  await sub.waitForAll(ids, { timeoutMs: 20_000 });
  assert.deepEqual((await c.getChildren(assignDir('ghost')).catch(() => [])).length, 0);
  assert.deepEqual((await checkInvariants(c, ids, { workdir, runs: runs(root) })).problems, []);
});

test('submitMany with several multis in flight: 1,250 tasks, ids in the order of the tasks, each in /tasks once', async () => {
  const root = await zk.chroot('submit-window');
  const sub = await submitter(root); // batches of 100: 13 multis, up to SUBMIT_WINDOW at once
  const tasks = Array.from({ length: 1250 }, (_, i) => ({ handler: 'echo', input: { i } }));
  const ids = await sub.submitMany(tasks);
  assert.equal(ids.length, 1250);
  const seq = ids.map((id) => Number(id.slice(-10)));
  for (let k = 1; k < seq.length; k++) assert.ok(seq[k]! > seq[k - 1]!, `ids in order at #${k}`);
  const c = await admin(root);
  assert.deepEqual((await c.getChildren(PATHS.tasks)).sort(), [...ids].sort(), '/tasks holds exactly these');
  // Each id names its own task, not another batch's.
  const read = await c.getDataMany(ids.map(taskPath));
  read.forEach((r, k) => {
    assert.ok(!(r instanceof Error), `read ${ids[k]}`);
    assert.deepEqual(JSON.parse(r.data.toString()).input, { i: k }, `${ids[k]} holds task #${k}`);
  });
});

test('backpressure: submitMany into a full /tasks fails with ZKFARM_QUEUE_FULL, names the ids it did submit, loses none', async () => {
  const root = await zk.chroot('queue-full');
  const sub = await Submitter.open({ connect: root, maxQueue: 250, queueWaitMs: 300, batchSize: 100 });
  cleanups.push(() => sub.close());
  const tasks = Array.from({ length: 600 }, (_, i) => ({ handler: 'echo', input: { i } }));
  const err = await sub.submitMany(tasks).then(
    () => assert.fail('a queue of 250 cannot take 600 tasks with no master'),
    (e: unknown) => e as SubmitManyError & { code?: string },
  );
  assert.equal(err.code, 'ZKFARM_QUEUE_FULL');
  assert.match(err.message, /limit 250/);
  assert.match(err.message, /add workers, or wait and submit again/);
  const submitted = err.submitted;
  assert.ok(submitted.length > 0 && submitted.length <= 250, `some were submitted (${submitted.length})`);
  assert.match(err.message, new RegExp(`the first ${submitted.length} tasks of this call were submitted`));
  const c = await admin(root);
  assert.deepEqual(
    (await c.getChildren(PATHS.tasks)).sort(),
    [...submitted].sort(),
    'submitted = what is in /tasks',
  );
  // A farm comes up: the submitted tasks run, and the rest goes in once there is room.
  await master(root, 'm1');
  await worker(root, 'w1');
  const rest = await sub.submitMany(tasks.slice(submitted.length));
  const all = [...submitted, ...rest];
  const statuses = await sub.waitForAll(all, { timeoutMs: 60_000 });
  assert.deepEqual(
    statuses.map((s) => (s.result as { i: number }).i),
    tasks.map((_, i) => i),
    'every task ran once, in the order it was given',
  );
  assert.deepEqual((await checkInvariants(c, all, { workdir, runs: runs(root) })).problems, []);
});
