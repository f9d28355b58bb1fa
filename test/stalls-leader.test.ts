/**
 * Stalls of the leader's side, each against a real ZooKeeper: head-of-line blocking (1), a /tasks child
 * the leader cannot read or delete (3), two leaders on one session after a failed takeover (4), a
 * give-back lost to a dropped connection (5), a task whose worker vanished left idle (6), a `notBefore`
 * beyond the timer range (10), a worker a refused move made suspect (11), a give-back refused because the
 * worker queued the task first (14). Each failed on the code before its fix.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { readFarmState } from '../src/cli/farm-state.js';
import { renderStatus } from '../src/cli/status.js';
import { delayedPath } from '../src/farm/due-time.js';
import { GiveBacks } from '../src/farm/give-back.js';
import {
  assignDir,
  assignPath,
  encode,
  PATHS,
  statusBucket,
  statusBucketPath,
  statusPath,
  taskPath,
  workerPath,
} from '../src/farm/protocol.js';
import { WorkerRoster } from '../src/farm/worker-roster.js';
import { MultiBatcher } from '../src/recipes/multi-batcher.js';
import { FarmObserver } from '../src/web/farm-observer.js';
import { FarmMetrics } from '../src/web/metrics.js';
import { buildSnapshot } from '../src/web/snapshot.js';
import { CreateMode, connect, digestAcl, OPEN_ACL, PERMS, type Supervisor } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { captureLogger, useFarm } from './helpers/farm.js';
import { aroundNextCommit } from './helpers/interpose.js';
import { checkInvariants } from './helpers/invariants.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-stalls-leader-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

const DAY = 86_400_000;

/** A worker of our own making: an ephemeral /workers/<name> on a session the test controls. */
async function fakeWorker(root: string, name: string, info: Record<string, unknown>): Promise<Supervisor> {
  const sup = connect({ connect: root, sessionTimeout: 4000 });
  cleanups.push(() => sup.stop());
  const c = (await sup.ready).client;
  await c.ensurePath(assignDir(name));
  await c.createEphemeral(`${PATHS.workers}/${name}`, encode({ prefetch: 0, paused: false, ...info }));
  return sup;
}

test('stall 1: tasks no ready worker can take wait, visibly; the tasks behind them flow', async () => {
  const root = await zk.chroot('head-of-line');
  await farm.master(root, 'm1');
  const shelly = await farm.worker(root, 'shelly', { allowShell: true, capacity: 2 });
  await shelly.pause();
  await farm.worker(root, 'plain', { capacity: 2 });
  const sub = await farm.submitter(root);
  // The oldest tasks need shell, and the only worker that runs shell is paused.
  const shellIds = await sub.submitMany(Array.from({ length: 4 }, () => ({ cmd: 'true' })));
  const handlerIds = await sub.submitMany(
    Array.from({ length: 20 }, (_, i) => ({ handler: 'echo', input: i })),
  );
  const results = await sub.waitForAll(handlerIds, { timeoutMs: 20_000 });
  assert.ok(results.every((r) => r.state === 'succeeded' && r.worker === 'plain'));

  // The shell tasks still wait in /tasks, and the farm says why.
  const c = await farm.admin(root);
  assert.deepEqual((await c.getChildren(PATHS.tasks)).sort(), [...shellIds].sort());
  await until(
    async () => (await readFarmState(c)).leader?.queue?.blocked.some((b) => b.needs === 'shell') === true,
    10_000,
    'the leader to publish why the shell tasks wait',
  );
  const state = await readFarmState(c);
  const blocked = state.leader!.queue!.blocked.find((b) => b.needs === 'shell')!;
  assert.equal(blocked.tasks, 4);
  assert.match(blocked.reason, /paused/);
  assert.ok(
    renderStatus(root, state).some((l) => /4 tasks? .*shell.*paused/.test(l)),
    renderStatus(root, state).join('\n'),
  );
  // The dashboard's data source and its metrics say it too.
  const sup = connect({ connect: root });
  cleanups.push(() => sup.stop());
  const observer = new FarmObserver(sup);
  observer.start();
  cleanups.push(() => observer.stop());
  await observer.ready;
  const snap = buildSnapshot({ observer, zkState: sup.state, connect: root, controls: false });
  assert.equal(snap.waiting?.blocked[0]?.tasks, 4);
  const metrics = new FarmMetrics();
  metrics.update(snap, { totals: snap.totals, dashboardRequests: 0 });
  assert.match(await metrics.metrics(), /zkfarm_queue_blocked_tasks\{needs="shell"\} 4/);

  await shelly.resume();
  const shellResults = await sub.waitForAll(shellIds, { timeoutMs: 20_000 });
  assert.ok(shellResults.every((r) => r.state === 'succeeded' && r.worker === 'shelly'));
  assert.deepEqual(
    (await checkInvariants(c, [...shellIds, ...handlerIds], { runs: farm.runs(root) })).problems,
    [],
  );
});

test('stall 3: a /tasks child the leader may not read gets a failed status saying so; the queue flows past it', async () => {
  const root = await zk.chroot('unreadable');
  await farm.master(root, 'm1');
  // One slot: the bad task, oldest of all, would be the whole of every round.
  await farm.worker(root, 'w1', { capacity: 1, prefetch: 0 });
  const c = await farm.admin(root);
  // An ACL that lets nobody but another identity read it (create needs only the parent's permission).
  const bad = (
    await c.create(
      `${PATHS.tasks}/task-`,
      encode({ handler: 'noop' }),
      CreateMode.PERSISTENT_SEQUENTIAL,
      digestAcl('someone-else:secret'),
    )
  ).slice(PATHS.tasks.length + 1);
  const sub = await farm.submitter(root);
  const good = await sub.submitMany(Array.from({ length: 5 }, (_, i) => ({ handler: 'echo', input: i })));
  await sub.waitForAll(good, { timeoutMs: 20_000 });
  const s = await sub.waitFor(bad, { timeoutMs: 20_000 });
  assert.equal(s.state, 'failed');
  assert.equal(s.errorCode, 'ZKFARM_TASK_UNREADABLE');
  assert.match(s.error ?? '', /NO_AUTH/);
  assert.match(s.error ?? '', /ACL/);
  assert.deepEqual(await c.getChildren(PATHS.tasks), []);
});

test('stall 3: a /tasks child that cannot be deleted (it has a child) is set aside with a reason; the queue flows past it', async () => {
  const root = await zk.chroot('undeletable');
  const log = captureLogger();
  await farm.master(root, 'm1', { logger: log });
  await farm.worker(root, 'w1', { capacity: 1, prefetch: 0 });
  const c = await farm.admin(root);
  const bad = (
    await c.createSequential(`${PATHS.tasks}/task-`, encode({ handler: 'echo', input: 'late' }))
  ).slice(PATHS.tasks.length + 1);
  await c.create(`${taskPath(bad)}/note`, 'someone put a node here');
  const sub = await farm.submitter(root);
  const good = await sub.submitMany(Array.from({ length: 5 }, (_, i) => ({ handler: 'echo', input: i })));
  await sub.waitForAll(good, { timeoutMs: 20_000 });

  // Set aside, visibly, and warned about once; not retried every round.
  await until(
    async () => (await readFarmState(c)).leader?.queue?.setAside.some((t) => t.id === bad) === true,
    10_000,
    'the leader to publish the task it set aside',
  );
  const aside = (await readFarmState(c)).leader!.queue!.setAside.find((t) => t.id === bad)!;
  assert.match(aside.reason, /NOT_EMPTY|child/);
  assert.equal(log.count('warn', new RegExp(bad)), 1, 'one warning for the task set aside');
  assert.ok(await c.exists(taskPath(bad)), 'the task is still in /tasks');

  // Once the obstacle is gone, the task runs.
  await c.remove(`${taskPath(bad)}/note`);
  const s = await sub.waitFor(bad, { timeoutMs: 60_000 });
  assert.equal(s.result, 'late');
});

test('stall 4: a takeover whose recovery fails is stopped before it is retried: one leader object acts', async () => {
  const root = await zk.chroot('failed-takeover');
  const admin = await farm.admin(root, { auth: 'admin:secret' });
  for (const p of [PATHS.tasks, PATHS.status, PATHS.masters, PATHS.workers])
    await admin.create(p, null, CreateMode.PERSISTENT, OPEN_ACL);
  // /assign that anyone may add to but not list: the leader's recovery fails (NO_AUTH) until it is fixed.
  await admin.create(PATHS.assign, null, CreateMode.PERSISTENT, [
    { perms: PERMS.create | PERMS.delete | PERMS.write, id: { scheme: 'world', id: 'anyone' } },
    ...digestAcl('admin:secret'),
  ]);
  const log = captureLogger();
  const m = await farm.master(root, 'm1', { logger: log });
  await farm.worker(root, 'w1', { capacity: 2 });
  await farm.worker(root, 'w2', { capacity: 2 });
  await until(
    () => log.count('warn', /NO_AUTH/) + log.count('error', /NO_AUTH/) >= 3,
    30_000,
    'failed takeovers',
  );
  await admin.setAcl(PATHS.assign, OPEN_ACL);
  await m.waitForLeadership();
  const sub = await farm.submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 40 }, (_, i) => ({ handler: 'sleep', input: 5, i })));
  await sub.waitForAll(ids, { timeoutMs: 30_000 });
  assert.equal(m.stats().assigned, 40, 'the one leader object made every assignment');
  assert.equal(log.count('error', /already assigned/), 0);
  assert.deepEqual((await checkInvariants(admin, ids, { runs: farm.runs(root) })).problems, []);
});

test("stall 5: a dead worker's give-back that fails with a dropped connection is retried until its tasks are back", async () => {
  const root = await zk.chroot('give-back-retry');
  let cut = false;
  // The moment the leader starts giving the ghost's tasks back, its connection drops (briefly: the
  // session lives on). The give-back's first requests fail with CONNECTION_LOSS.
  const log = captureLogger((l) => {
    if (!cut && /worker gone/.test(l.msg)) {
      cut = true;
      link.proxy.cut(1500);
    }
  });
  const link = await farm.proxied(root);
  const m = await farm.master(link.connect, 'm1', { logger: log });
  await m.waitForLeadership();
  const ghost = await fakeWorker(root, 'ghost', { capacity: 4 });
  const sub = await farm.submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 3 }, (_, i) => ({ handler: 'echo', input: i })));
  const c = await farm.admin(root);
  await until(
    async () => (await c.getChildren(assignDir('ghost'))).length === 3,
    10_000,
    'tasks on the ghost',
  );
  const sessionsBefore = m.info().sessions;
  await farm.worker(root, 'real', { capacity: 4 });
  await ghost.stop();
  const results = await sub.waitForAll(ids, { timeoutMs: 20_000 });
  assert.ok(cut, 'the connection was cut during the give-back');
  assert.ok(results.every((r) => r.worker === 'real'));
  assert.equal(m.info().sessions, sessionsBefore, 'the leader kept its session: no leader change helped');
  assert.deepEqual((await checkInvariants(c, ids, { runs: farm.runs(root) })).problems, []);
});

test('stall 6: tasks whose worker vanished while the leader placed them are queued again at once', async () => {
  const root = await zk.chroot('vanished-idle');
  const link = await farm.proxied(root);
  const m = await farm.master(link.connect, 'm1');
  await m.waitForLeadership();
  // Shell tasks go only to the ghost (the one live worker that runs shell); once it is gone they go to
  // any worker, which fails them with a reason.
  await farm.worker(root, 'plain', { capacity: 4 });
  const ghost = await fakeWorker(root, 'ghost', { capacity: 1000, shell: true });
  const c = await farm.admin(root);
  const sub = await farm.submitter(root);
  // Probes until one lands on the ghost (until the leader knows the ghost, they go to plain and fail):
  // then the leader places shell tasks on the ghost. The test finishes that probe by hand.
  const probes: string[] = [];
  let onGhost: string | undefined;
  await until(
    async () => {
      const [p] = await sub.submitMany([{ cmd: 'true' }]);
      probes.push(p!);
      await until(
        async () =>
          (await c.exists(statusPath(p!))) !== null || (await c.exists(assignPath('ghost', p!))) !== null,
        10_000,
        `probe ${p} placed`,
      );
      if (await c.exists(assignPath('ghost', p!))) onGhost = p;
      return onGhost !== undefined;
    },
    20_000,
    'a probe on the ghost',
  );
  await c.ensurePath(statusBucketPath(statusBucket(onGhost!))); // the first result may be this one
  await c
    .transaction()
    .create(
      statusPath(onGhost!),
      encode({ state: 'succeeded', worker: 'ghost', attempts: 1, startedAt: 1, finishedAt: 2 }),
    )
    .remove(assignPath('ghost', onGhost!))
    .commit();
  // A slow link (500 ms each way): the leader plans the next task for the ghost, which is gone before
  // the multi lands (the multi's check of /workers/ghost fails). Its give-back of the ghost, which
  // finds nothing, ends before the failed multi has been sorted out.
  link.proxy.setDelay(500);
  const [id] = await sub.submitMany([{ cmd: 'true' }]);
  await sleep(500);
  await ghost.stop();
  await sleep(6000);
  link.proxy.restore();
  // Nothing else happens from here on: the task must not wait for an unrelated event.
  const result = await sub.waitFor(id!, { timeoutMs: 15_000 });
  assert.equal(result.worker, 'plain');
  assert.equal(result.errorCode, 'ZKFARM_SHELL_DISABLED');
  assert.equal((await c.getChildren(assignDir('ghost')).catch(() => [])).length, 0);
  assert.deepEqual((await checkInvariants(c, [...probes, id!], { runs: farm.runs(root) })).problems, []);
});

test('stall 10: a notBefore beyond the timer range waits without spinning; bad scheduling data is refused', async () => {
  const root = await zk.chroot('not-before');
  const m = await farm.master(root, 'm1');
  await m.waitForLeadership();
  await farm.worker(root, 'w1');
  const sub = await farm.submitter(root);
  const c = await farm.admin(root);
  const raw = async (task: object) =>
    (await c.createSequential(`${PATHS.tasks}/task-`, encode(task))).slice(PATHS.tasks.length + 1);
  const farAt = Date.now() + 30 * DAY;
  const far = await raw({ handler: 'noop', _zkfarm: { attempts: 0, notBefore: farAt } });
  const bad = await raw({ handler: 'noop', _zkfarm: { attempts: 0, notBefore: 1e300 } });
  const nearAt = Date.now() + 1500;
  const near = await raw({ handler: 'echo', input: 'on time', _zkfarm: { attempts: 0, notBefore: nearAt } });

  const refused = await sub.waitFor(bad, { timeoutMs: 20_000 });
  assert.equal(refused.state, 'failed');
  assert.equal(refused.errorCode, 'ZKFARM_INVALID_TASK');
  assert.match(refused.error ?? '', /notBefore/);
  const ran = await sub.waitFor(near, { timeoutMs: 20_000 });
  assert.equal(ran.result, 'on time');
  assert.ok((ran.startedAt ?? 0) >= nearAt, 'not before its time');

  // The far task waits in the due-time area /delayed (not /tasks), and the leader is idle meanwhile
  // (a spinning leader re-reads it thousands of times a second).
  const client = m.sessionSupervisor!.session!.client;
  const before = client.requests;
  await sleep(2000);
  const spent = client.requests - before;
  assert.ok(spent < 50, `the leader sent ${spent} requests in 2 s while idle`);
  assert.ok(await c.exists(delayedPath(farAt, far)), 'the far task waits in /delayed');
  assert.equal(await c.exists(taskPath(far)), null, 'not in /tasks');
  await until(
    async () => (await readFarmState(c)).leader?.queue?.delayed === 1,
    10_000,
    'the leader to publish the waiting task',
  );
});

test('stall 11: a worker a refused move made suspect is planned again when its registration is there', async () => {
  const root = await zk.chroot('suspect');
  const sup = connect({ connect: root, sessionTimeout: 10_000 });
  cleanups.push(() => sup.stop());
  const session = await sup.ready;
  await session.client.ensurePath(PATHS.workers);
  const term = new AbortController();
  cleanups.push(() => term.abort());
  let changes = 0;
  const roster = new WorkerRoster(
    session,
    term.signal,
    { changed: () => changes++, gone() {} },
    captureLogger(),
  );
  await roster.start();
  const worker = await zk.rawClient(root);
  await worker.create(workerPath('w'), Buffer.from(JSON.stringify({ capacity: 2 })), CreateMode.EPHEMERAL);
  await until(() => roster.loads().some((l) => l.name === 'w'), 10_000, 'w assignable');
  // A refusal of a multi sent during the worker's re-registration, handled after the data watch said it
  // was back: the registration is there, so the worker must not stay out of the plans.
  const before = changes;
  roster.suspect('w');
  assert.equal(roster.isLive('w'), false, 'out of the plans at once');
  await until(() => roster.isLive('w'), 10_000, 'w live again');
  assert.ok(roster.loads().some((l) => l.name === 'w'));
  assert.ok(changes > before, 'the leader is told it may plan again');
  // A worker that is really gone stays out.
  await worker.remove(workerPath('w'));
  await until(() => !roster.isLive('w'), 10_000, 'w gone');
  roster.suspect('w');
  await sleep(500);
  assert.equal(roster.isLive('w'), false);
});

test('stall 14: a give-back that finds the task queued already is not set aside: lost again in the term, the task comes back', async () => {
  const root = await zk.chroot('queued-by-worker');
  const sup = connect({ connect: root, sessionTimeout: 10_000 });
  cleanups.push(() => sup.stop());
  const session = await sup.ready;
  const c = await farm.admin(root);
  await Promise.all([c.ensurePath(PATHS.tasks), c.ensurePath(assignDir('w'))]);
  const [id, copy] = ['task-0000000001', 'task-0000000002'];
  const task = encode({ handler: 'echo', input: 1 });
  await c.create(assignPath('w', id), task);
  const term = new AbortController();
  cleanups.push(() => term.abort());
  const log = captureLogger();
  const batcher = new MultiBatcher(session.client, { signal: term.signal });
  const giveBacks = new GiveBacks(session, term.signal, batcher, { isLive: () => false, moved() {}, log });
  // The worker's restarted run gives the task back between the leader's read and the leader's move.
  const race = aroundNextCommit(session.client, {
    before: () => c.transaction().create(taskPath(id), task).remove(assignPath('w', id)).commit(),
  });
  await giveBacks.start('w');
  assert.ok(race.fired, 'the race was staged');
  assert.equal(giveBacks.stuck, 0);
  // Assigned to the worker again and lost again within the term: it must come back to /tasks.
  await c.ensurePath(assignDir('w'));
  await c.transaction().remove(taskPath(id)).create(assignPath('w', id), task).commit();
  await giveBacks.start('w');
  assert.ok(await c.exists(taskPath(id)), 'given back');
  assert.equal(await c.exists(assignPath('w', id)), null);
  // An assignment still there beside a queued copy of its task is set aside, reported once.
  await c.ensurePath(assignDir('w'));
  await c.create(taskPath(copy), task);
  await c.create(assignPath('w', copy), task);
  await giveBacks.start('w');
  assert.equal(giveBacks.stuck, 1);
  assert.equal(log.lines.filter((l) => /cannot give back/.test(l.msg)).length, 1);
  assert.ok(await c.exists(assignPath('w', copy)));
});
