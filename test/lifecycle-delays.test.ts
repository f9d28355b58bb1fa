/**
 * Delayed tasks (src/farm/due-time.ts, delayed-area.ts) against a real ZooKeeper: a task due in 2 s
 * starts after 2 s and within the stated tolerance; a task due in 40 days is accepted, waits in
 * /delayed (not /tasks) with its due time, and the leader neither spins nor holds anything else back;
 * a delayed task survives the leader's death and starts on time; a waiter finds a delayed task; bad
 * `runAt`/`delayMs` get a failed status.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes } from '../src/errors.js';
import { delayedSlotPath, slotOf } from '../src/farm/due-time.js';
import type { Master } from '../src/farm/master.js';
import { encode, PATHS, parseStatus, statusPath, type Task } from '../src/farm/protocol.js';
import { findDelayed, TaskLocator } from '../src/farm/task-locator.js';
import { taskDetails } from '../src/web/task-details.js';
import { CreateMode, type ZkClient } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { Cli } from './helpers/cli.js';
import { useFarm } from './helpers/farm.js';
import { expireSession } from './helpers/faults.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-delays-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir: join(tmp, 'work') });

/** How late a due task may start (docs/protocol.md says 1 s; a loaded shared machine gets twice that). */
const TOLERANCE_MS = 2000;
const DAY = 86_400_000;

/** A task's node in /delayed (the id's slot found by listing), or undefined. */
async function inDelayed(c: ZkClient, id: string): Promise<{ path: string; task: Task } | undefined> {
  for (const slot of await c.getChildren(PATHS.delayed).catch(() => [] as string[])) {
    const path = `${PATHS.delayed}/${slot}/${id}`;
    const s = await c.exists(path);
    if (s) return { path, task: JSON.parse(String((await c.getData(path)).data)) as Task };
  }
  return undefined;
}

async function ctimeOf(c: ZkClient, id: string): Promise<number> {
  const s = await c.exists(`${PATHS.tasks}/${id}`);
  if (s) return s.ctime;
  const d = await inDelayed(c, id);
  assert.ok(d, `${id} is queued or delayed`);
  return d.task._zkfarm!.submittedAt!;
}

test('a task due in 2 s (delayMs, and runAt as an ISO time) starts after 2 s and within the tolerance', async () => {
  const root = await zk.chroot('delays-2s');
  // A threshold of 1 s: a task due in 2 s goes through /delayed and back, as a far one does.
  await farm.master(root, 'm1', { delayThresholdMs: 1000 });
  await farm.worker(root, 'w1');
  const sub = await farm.submitter(root);
  const raw = await zk.rawClient(root);
  const events = sub.events();
  await events.ready;
  const a = await sub.submit({ handler: 'echo', input: 'a', delayMs: 2000 });
  const dueA = (await ctimeOf(raw, a)) + 2000;
  const dueB = Date.now() + 2000;
  const b = await sub.submit({ handler: 'echo', input: 'b', runAt: new Date(dueB).toISOString() });
  for (const [id, due] of [
    [a, dueA],
    [b, dueB],
  ] as const) {
    const s = await sub.waitFor(id, { timeoutMs: 20_000 });
    assert.equal(s.state, 'succeeded', `${id}: ${s.error}`);
    assert.ok(s.startedAt! >= due, `${id} started ${due - s.startedAt!} ms before it was due`);
    assert.ok(
      s.startedAt! - due <= TOLERANCE_MS,
      `${id} started ${s.startedAt! - due} ms after it was due (tolerance ${TOLERANCE_MS} ms)`,
    );
  }
  // The event stream tells the way through the due-time area: delayed until its due time, then queued.
  const seen: string[] = [];
  for await (const ev of events) {
    if (ev.id !== a) continue;
    seen.push(ev.type);
    if (ev.type === 'delayed') assert.equal(ev.until, dueA);
    if (ev.type === 'succeeded') break;
  }
  assert.equal(seen.join(' '), 'queued delayed queued started succeeded');
  await events.close();
});

test('a task due in 40 days is accepted, waits in /delayed with its due time, and neither spins nor blocks', async () => {
  const root = await zk.chroot('delays-40d');
  const m = await farm.master(root, 'm1');
  await farm.worker(root, 'w1');
  const sub = await farm.submitter(root);
  const raw = await zk.rawClient(root);
  const far = await sub.submit({ handler: 'echo', input: 'later', delayMs: 40 * DAY });
  const ctime = (await raw.exists(`${PATHS.tasks}/${far}`))!.ctime;
  await until(async () => (await inDelayed(raw, far)) !== undefined, 10_000, 'the task moved into /delayed');
  const d = (await inDelayed(raw, far))!;
  assert.equal(d.task._zkfarm?.notBefore, ctime + 40 * DAY, 'its due time: 40 days after its creation');
  assert.equal(d.task._zkfarm?.submittedAt, ctime);
  assert.equal(
    d.path,
    `${delayedSlotPath(slotOf(ctime + 40 * DAY))}/${far}`,
    "the slot is the due time's hour",
  );
  assert.deepEqual(await raw.getChildren(PATHS.tasks), [], 'not in /tasks');
  assert.equal(await findDelayed(raw, far), d.path, 'the locator reports its place');
  const details = await taskDetails(raw, far);
  assert.equal(details.where, 'queued');
  assert.equal(details.delayed, true, "the dashboard's task view says it is delayed");

  // Others flow as ever, and the leader does not spin on the far task: over 3 s of nothing to do, a
  // handful of requests (a leader that woke for it at once would make thousands).
  const now = await sub.submit({ handler: 'echo', input: 'now' });
  assert.equal((await sub.waitFor(now, { timeoutMs: 10_000 })).state, 'succeeded');
  await sleep(1500); // the summary's publication after the last round
  const before = m.sessionSupervisor!.requests;
  const passes = m.stats().delayPasses!;
  await sleep(3000);
  const spent = m.sessionSupervisor!.requests - before;
  assert.ok(spent < 30, `the leader sent ${spent} requests in 3 s while only a 40-day task waited`);
  const more = m.stats().delayPasses! - passes;
  assert.ok(more <= 1, `${more} passes over /delayed in 3 s while only a 40-day task waited`);
  assert.ok(await inDelayed(raw, far), 'still delayed');
  const master = JSON.parse(String((await raw.getData(PATHS.master)).data)) as {
    queue?: { delayed: number; delayedArea?: number };
  };
  assert.equal(master.queue?.delayedArea, 1, "the leader's summary counts the task in /delayed");
  assert.ok((master.queue?.delayed ?? 0) >= 1);

  // A waiter is not told the task is nowhere: the locator looks in /delayed.
  let nowhere: string[] = [];
  const locator = new TaskLocator(
    () => raw,
    (id) => nowhere.push(id),
    { firstMs: 10, everyMs: 50 },
  );
  locator.add(far);
  locator.add('task-0999999999');
  await until(async () => nowhere.includes('task-0999999999'), 10_000, 'the missing task declared nowhere');
  locator.close();
  assert.deepEqual(nowhere, ['task-0999999999'], 'the delayed task is found, the missing one is not');
  nowhere = [];
});

function leaderOf(masters: Master[]): Master | undefined {
  return masters.find((x) => x.isLeader);
}

test('a delayed task survives the death of the leader and starts on time', async () => {
  const root = await zk.chroot('delays-failover');
  const masters = [
    await farm.master(root, 'm1', { delayThresholdMs: 1000 }),
    await farm.master(root, 'm2', { delayThresholdMs: 1000 }),
  ];
  await until(async () => leaderOf(masters) !== undefined, 15_000, 'a leader');
  await farm.worker(root, 'w1');
  const sub = await farm.submitter(root);
  const raw = await zk.rawClient(root);
  const id = await sub.submit({ handler: 'echo', input: 'x', delayMs: 8000 });
  const due = (await ctimeOf(raw, id)) + 8000;
  await until(async () => (await inDelayed(raw, id)) !== undefined, 5000, 'the task moved into /delayed');
  const first = leaderOf(masters)!;
  await expireSession(first.sessionSupervisor!);
  await until(async () => leaderOf(masters) !== undefined, 15_000, 'a leader after the kill');
  assert.ok(
    Date.now() < due - 1000,
    'the new leader leads before the task is due (else the test proves less)',
  );
  const s = await sub.waitFor(id, { timeoutMs: 30_000 });
  assert.equal(s.state, 'succeeded', s.error);
  assert.ok(s.startedAt! >= due, `started ${due - s.startedAt!} ms early`);
  assert.ok(s.startedAt! - due <= TOLERANCE_MS, `started ${s.startedAt! - due} ms late`);
  assert.equal(s.attempts, 1, 'run once');
  const slot = delayedSlotPath(slotOf(due));
  assert.deepEqual(await raw.getChildren(slot).catch(() => []), [], 'nothing left in /delayed');
});

test('bad runAt or delayMs: refused by the submitter, a failed status for a foreign create', async () => {
  const root = await zk.chroot('delays-bad');
  await farm.master(root, 'm1');
  const sub = await farm.submitter(root);
  const raw = await zk.rawClient(root);
  await assert.rejects(sub.submit({ handler: 'echo', runAt: 'tomorrow' }), { code: ErrorCodes.INVALID_TASK });
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ handler: 'echo', runAt: 'tomorrow' }, /"runAt": must be a time/],
    [{ handler: 'echo', runAt: '2026-12-24T18:00:00' }, /"runAt": must be a time/], // no zone
    [{ handler: 'echo', delayMs: -5 }, /"delayMs": must be a whole number of ms from 0/],
    [{ handler: 'echo', delayMs: 400 * DAY }, /"delayMs": must be a whole number of ms from 0/],
    [{ handler: 'echo', runAt: Date.now() + 400 * DAY }, /"runAt": .* days after the task was submitted/],
  ];
  const ids: string[] = [];
  for (const [task] of bad)
    ids.push(
      (await raw.create(`${PATHS.tasks}/task-`, encode(task), CreateMode.PERSISTENT_SEQUENTIAL))
        .split('/')
        .pop()!,
    );
  for (let i = 0; i < bad.length; i++) {
    const path = statusPath(ids[i]!);
    await until(
      async () => (await raw.exists(path)) !== null,
      10_000,
      `a status for ${JSON.stringify(bad[i]![0])}`,
    );
    const s = parseStatus((await raw.getData(path)).data);
    assert.equal(s.state, 'failed');
    assert.equal(s.errorCode, ErrorCodes.INVALID_TASK);
    assert.match(s.error!, bad[i]![1]);
  }
});

test('runtime submit --delay and --at; runtime status says where and when; a bad --at is a usage error', async () => {
  const root = await zk.chroot('delays-cli');
  await farm.master(root, 'm1');
  const raw = await zk.rawClient(root);
  const env = { ...process.env };
  delete env['ZKFARM_ZK'];
  const cli = (...args: string[]) => new Cli(args, { env }).exit(60_000);
  const later = await cli('submit', '--zk', root, '--delay', '40d', '{"handler":"echo","input":1}');
  assert.equal(later.code, 0, later.stderr);
  const id = later.stdout.trim();
  const at = '2027-06-01T12:00:00Z';
  const atRun = await cli('submit', '--zk', root, '--at', at, '{"handler":"echo","input":2}');
  assert.equal(atRun.code, 0, atRun.stderr);
  const atId = atRun.stdout.trim();
  await until(async () => (await inDelayed(raw, id)) !== undefined, 10_000, 'the --delay task in /delayed');
  await until(async () => (await inDelayed(raw, atId)) !== undefined, 10_000, 'the --at task in /delayed');
  const d = (await inDelayed(raw, id))!;
  assert.equal(d.task.delayMs, 40 * DAY);
  assert.equal((await inDelayed(raw, atId))!.task._zkfarm?.notBefore, Date.parse(at));
  const status = await cli('status', '--zk', root, atId);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`${atId}  queued .*, due 2027-06-01T12:00:00.000Z`));
  const bad = await cli('submit', '--zk', root, '--at', 'next tuesday', '{"handler":"echo"}');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--at: expected an ISO-8601 time with its zone/);
  const both = await cli('submit', '--zk', root, '--at', at, '--delay', '5m', '{"handler":"echo"}');
  assert.match(both.stderr, /either --delay or --at/);
});

test('a due task that cannot go back (a node with its id is in /tasks) stays in /delayed, tried again later, without spinning', async () => {
  const root = await zk.chroot('delays-refused');
  const m = await farm.master(root, 'm1', { delayThresholdMs: 1000 }); // no worker: /tasks keeps what it holds
  const sub = await farm.submitter(root);
  const raw = await zk.rawClient(root);
  const id = await sub.submit({ handler: 'echo', input: 'x', delayMs: 2500 });
  await until(async () => (await inDelayed(raw, id)) !== undefined, 5000, 'the task moved into /delayed');
  await raw.create(`${PATHS.tasks}/${id}`, encode({ handler: 'echo', input: 'a squatter' }));
  await sleep(3000); // past its time
  const passes = m.stats().delayPasses!;
  await sleep(2000);
  const more = m.stats().delayPasses! - passes;
  assert.ok(more <= 1, `${more} passes in 2 s over a task ZooKeeper refuses to move`);
  assert.ok(await inDelayed(raw, id), 'the task stays in /delayed, not lost');
});
