/**
 * Stalls of the worker's side, each against a real ZooKeeper: batched writes past ZooKeeper's request
 * limit (2), a delete and re-create of an assignment in one tick (7), prefetched tasks that outlive
 * their session (8), a new assignment heard while the old one's move was on its way (12, 13, 15). Each
 * failed on the code before its fix.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from '../src/farm/index.js';
import {
  assignDir,
  assignPath,
  encode,
  PATHS,
  parseStatus,
  statusPath,
  taskPath,
} from '../src/farm/protocol.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { expireSession } from './helpers/faults.js';
import { aroundNextCommit } from './helpers/interpose.js';
import { checkInvariants } from './helpers/invariants.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-stalls-worker-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

test('stall 2: a paused worker hands back 120 prefetched 11 KiB tasks (1.3 MB together, over the request limit)', async () => {
  const root = await zk.chroot('byte-limit');
  await farm.master(root, 'm1');
  const w = await farm.worker(root, 'big', { capacity: 1, prefetch: 120 });
  const sub = await farm.submitter(root);
  const blocker = await sub.submit({ handler: 'sleep', input: 30_000 });
  await until(() => w.stats().running === 1, 10_000, 'the blocker to run');
  const payload = 'x'.repeat(11 * 1024);
  const ids = await sub.submitMany(
    Array.from({ length: 120 }, (_, i) => ({ handler: 'echo', input: payload, i })),
  );
  await until(() => w.stats().queued === 120, 20_000, 'the worker to hold 120 tasks');
  // Pausing hands every held task back at once: one batch of requeues whose data alone passes 1 MiB.
  await w.pause();
  const c = await farm.admin(root);
  await until(
    async () => (await c.getChildren(PATHS.tasks)).length === 120,
    20_000,
    'every held task back in /tasks',
  );
  assert.deepEqual(await c.getChildren(assignDir('big')), [blocker]);
  assert.deepEqual((await c.getChildren(PATHS.tasks)).sort(), [...ids].sort());
});

test('stall 7: an assignment deleted and re-created in one tick is seen again: the new one runs', async () => {
  const root = await zk.chroot('re-create');
  // No master: the test hands out the tasks itself.
  const w = await farm.worker(root, 'w1', { capacity: 1, prefetch: 0 });
  const c = await farm.admin(root);
  const first = 'task-0000000001';
  const second = 'task-0000000002';
  await c.create(assignPath('w1', first), encode({ handler: 'sleep', input: 1500 }));
  await until(() => w.stats().running === 1, 10_000, 'the first task to run');
  await c.create(assignPath('w1', second), encode({ handler: 'echo', input: 'old' }));
  await until(() => w.stats().queued === 1, 10_000, 'the second task to be held');
  // Replace the held assignment in one multi: ZooKeeper reports the delete and the create together.
  await c
    .transaction()
    .remove(assignPath('w1', second))
    .create(assignPath('w1', second), encode({ handler: 'echo', input: 'new' }))
    .commit();
  await until(
    async () => (await c.exists(statusPath(second))) !== null,
    20_000,
    'a status for the second task',
  );
  const s = parseStatus((await c.getData(statusPath(second))).data);
  assert.equal(s.result, 'new', 'the assignment that exists now ran, not the one that was replaced');
  assert.deepEqual((await checkInvariants(c, [first, second], { runs: farm.runs(root) })).problems, []);
});

test('stall 8: tasks a worker held but had not started when its session was lost do not start on the next session', async () => {
  const root = await zk.chroot('prefetch-outlives');
  await farm.master(root, 'm1');
  /** Every run: which task, which attempt, on which session of the worker. */
  const probes: Array<{ task: string; attempt: number; session: string | undefined }> = [];
  let w: Worker;
  w = await farm.worker(root, 'w1', {
    capacity: 1,
    prefetch: 6,
    handlers: {
      probe: async (input, ctx) => {
        probes.push({ task: ctx.taskId, attempt: ctx.attempt, session: w.info().sessionId });
        const ms = (input as { ms?: number } | undefined)?.ms ?? 0;
        if (ms > 0) await sleep(ms, undefined, { signal: ctx.signal }).catch(() => {});
        return ctx.taskId;
      },
    },
  });
  const sub = await farm.submitter(root);
  // The long one outlives the expiry below, so the held ones would start on the new session.
  const long = await sub.submit({ handler: 'probe', input: { ms: 20_000 } });
  await until(() => w.stats().running === 1, 10_000, 'the long task to run');
  const held = await sub.submitMany(Array.from({ length: 6 }, () => ({ handler: 'probe' })));
  await until(() => w.stats().queued === 6, 10_000, 'six tasks held');
  const before = w.info().sessionId;
  await expireSession(w.sessionSupervisor!);
  assert.notEqual(w.info().sessionId, before);
  const results = await sub.waitForAll([long, ...held], { timeoutMs: 90_000 });
  assert.ok(results.every((r) => r.state === 'succeeded'));
  // A task held on the lost session was given back by the master: it may run again, but only as a
  // new assignment (attempt 2, its loss counted), never as the stale copy the worker still held.
  const stale = probes.filter((r) => held.includes(r.task) && r.session !== before && r.attempt === 1);
  assert.deepEqual(stale, [], 'no held task started on the new session from its old assignment');
  const c = await farm.admin(root);
  assert.deepEqual((await checkInvariants(c, [long, ...held], { runs: farm.runs(root) })).problems, []);
});

test('stall 12: an assignment made again to the same worker while its first run was being fenced is run, not stranded', async () => {
  const root = await zk.chroot('fenced-again');
  // No master: the test moves the task itself, as a leader giving it back and assigning it again would.
  let release!: () => void;
  const running = new Promise<void>((r) => {
    release = r;
  });
  let runs = 0;
  const w = await farm.worker(root, 'w1', {
    capacity: 1,
    prefetch: 0,
    handlers: {
      hold: async () => {
        runs++;
        if (runs === 1) await running;
        return `run ${runs}`;
      },
    },
  });
  const c = await farm.admin(root);
  const id = 'task-0000000001';
  await c.create(assignPath('w1', id), encode({ handler: 'hold' }));
  await until(() => w.stats().running === 1, 10_000, 'the first run to start');
  // Given back while it runs (the worker's session was lost, say): its completion will find no assignment.
  await c.remove(assignPath('w1', id));
  // The assignment is made again between ZooKeeper's refusal of that completion and the worker handling
  // the refusal: the worker hears of the new assignment while it still holds the task.
  const session = w.sessionSupervisor?.session;
  assert.ok(session, 'the worker has a session');
  aroundNextCommit(session.client, {
    after: async () => {
      await c.create(assignPath('w1', id), encode({ handler: 'hold' }));
      await sleep(300); // the worker's notification of it arrives and is handled meanwhile
    },
  });
  release();
  await until(async () => (await c.exists(statusPath(id))) !== null, 20_000, 'a status for the task');
  assert.equal(parseStatus((await c.getData(statusPath(id))).data).result, 'run 2');
  assert.deepEqual(await c.getChildren(assignDir('w1')), []);
});

/** A worker of one slot (prefetch 1) running a task that never ends: the next task it gets waits, queued. */
async function busyWorker(root: string) {
  const w = await farm.worker(root, 'w1', {
    capacity: 1,
    prefetch: 1,
    handlers: { hold: () => new Promise<string>(() => {}) },
  });
  const c = await farm.admin(root);
  const [running, id] = ['task-0000000001', 'task-0000000002'];
  await c.create(assignPath('w1', running), encode({ handler: 'hold' }));
  await until(() => w.stats().running === 1, 10_000, 'the first task to run');
  return { w, c, running, id };
}

test('stall 13: a hand-back refused because the master queued the task first, then assigned here again: the new assignment is read', async () => {
  const root = await zk.chroot('queued-first');
  // No master: the test moves the task itself, as a leader giving back an earlier run's assignments
  // (while the restarted worker gives them back too) and assigning one here again would.
  const { w, c, running, id } = await busyWorker(root);
  await c.create(assignPath('w1', id), encode({ handler: 'echo', input: 'x' }));
  await until(() => w.stats().queued === 1, 10_000, 'the second task held, queued');
  const session = w.sessionSupervisor?.session;
  assert.ok(session, 'the worker has a session');
  aroundNextCommit(session.client, {
    // The master gives the task back just before the worker's own hand-back arrives ...
    before: () =>
      c
        .transaction()
        .create(taskPath(id), encode({ handler: 'echo', input: 'x' }))
        .remove(assignPath('w1', id))
        .commit(),
    // ... and assigns it here again before the worker handles the refusal.
    after: async () => {
      await c
        .transaction()
        .remove(taskPath(id))
        .create(assignPath('w1', id), encode({ handler: 'echo', input: 'y' }))
        .commit();
      await sleep(300); // the worker's notification of it arrives and is handled meanwhile
    },
  });
  // Paused, the worker hands its queued task back: that hand-back is the one ZooKeeper refuses.
  await w.pause();
  // The new assignment is read, and (the worker being paused) handed back in turn.
  await until(async () => (await c.exists(taskPath(id))) !== null, 20_000, 'the task back in /tasks');
  assert.deepEqual(await c.getChildren(assignDir('w1')), [running]);
  assert.equal(w.stats().queued, 0);
});

test('stall 13, the corner: a task both queued and assigned here is handed back once, then left alone, not in a loop', async () => {
  const root = await zk.chroot('queued-and-assigned');
  const { w, c, running, id } = await busyWorker(root);
  // A copy of the task in /tasks next to its assignment (a client re-submitted it under its id, say).
  await c.create(taskPath(id), encode({ handler: 'echo', input: 'x' }));
  await c.create(assignPath('w1', id), encode({ handler: 'echo', input: 'x' }));
  await until(() => w.stats().queued === 1, 10_000, 'the second task held, queued');
  await w.pause();
  await until(() => w.stats().fenced >= 1, 10_000, 'the hand-back refused');
  // Read again and found to be the same assignment, it is not handed back again and again.
  await sleep(1000);
  assert.equal(w.stats().fenced, 1);
  assert.equal(w.stats().queued, 0);
  assert.deepEqual((await c.getChildren(assignDir('w1'))).sort(), [running, id]);
  assert.ok(await c.exists(taskPath(id)));
});

test('stall 15: a task assigned here again before this worker has handled the answer to its requeue is read and run', async () => {
  const root = await zk.chroot('requeued-then-back');
  // No master: the test assigns the requeued task back here, as a leader with this worker's slot free would.
  let runs = 0;
  const w = await farm.worker(root, 'w1', {
    capacity: 1,
    prefetch: 0,
    retryDelayMs: 1,
    handlers: {
      flaky: () => {
        runs++;
        if (runs === 1) throw new Error('first run fails');
        return `run ${runs}`;
      },
    },
  });
  const c = await farm.admin(root);
  await c.ensurePath(PATHS.tasks);
  const id = 'task-0000000001';
  const session = w.sessionSupervisor?.session;
  assert.ok(session, 'the worker has a session');
  const race = aroundNextCommit(session.client, {
    // The requeue is written; the task comes back before the worker handles the answer (a busy event
    // loop reads both at once, or the answer was lost and the worker resends after a pause).
    after: async () => {
      const { data } = await c.getData(taskPath(id));
      await c.transaction().remove(taskPath(id)).create(assignPath('w1', id), data).commit();
      await sleep(300); // the worker's notification of it arrives and is handled meanwhile
    },
  });
  await c.create(assignPath('w1', id), encode({ handler: 'flaky', maxAttempts: 2 }));
  await until(async () => (await c.exists(statusPath(id))) !== null, 20_000, 'a status for the task');
  assert.ok(race.fired, 'the race was staged');
  const status = parseStatus((await c.getData(statusPath(id))).data);
  assert.equal(status.result, 'run 2');
  assert.equal(status.attempts, 2);
});
