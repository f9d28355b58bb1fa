/**
 * Task ids are never reused (src/farm/task-ids.ts): when /tasks is deleted and made again, ZooKeeper's
 * sequence numbers start over, and without a check new tasks would get the ids of kept results. A zkfarm
 * submitter checks before it submits; a leading master checks when it takes the lead and whenever /tasks
 * is made again, so foreign clients that `create -s /tasks/task-` get fresh ids too. Real ZooKeeper.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Master } from '../src/farm/master.js';
import { PATHS, statusPath } from '../src/farm/protocol.js';
import { countResults } from '../src/farm/status-store.js';
import { Submitter } from '../src/farm/submitter.js';
import { ensureFreshTaskIds, taskNumber } from '../src/farm/task-ids.js';
import { Worker } from '../src/farm/worker.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-task-ids-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));

async function farm(root: string) {
  const m = new Master({ name: 'm1', connect: root, sessionTimeout: 6000 });
  const w = new Worker({ name: 'w1', connect: root, sessionTimeout: 6000, workdir, capacity: 4 });
  cleanups.push(
    () => m.stop(),
    () => w.stop({ drain: false }),
  );
  await Promise.all([m.start(), w.start()]);
  await m.waitForLeadership();
  return { m, w };
}

async function runSome(root: string, label: string, n: number): Promise<string[]> {
  const sub = await Submitter.open({ connect: root });
  try {
    const ids = await sub.submitMany(
      Array.from({ length: n }, (_, i) => ({ handler: 'echo', input: `${label}-${i}` })),
    );
    const results = await sub.waitForAll(ids, { timeoutMs: 30_000 });
    for (const [i, s] of results.entries())
      assert.equal(s.result, `${label}-${i}`, `${ids[i]} holds the result of ${label}-${i}`);
    return ids;
  } finally {
    await sub.close();
  }
}

test('after /tasks is deleted and made again, a submitter gets new ids and its own results, not kept ones', async () => {
  const root = await zk.chroot('ids-submitter');
  await farm(root);
  const before = await runSome(root, 'before', 5);
  const raw = await zk.rawClient(root);
  await raw.remove(PATHS.tasks); // empty: every task finished
  const afterIds = await runSome(root, 'after', 3);
  for (const id of afterIds) assert.ok(!before.includes(id), `${id} was already used by a kept result`);
  assert.equal(await countResults(raw), 8, 'every result is kept, none overwritten or lost');
});

test('a master taking the lead checks the counter first: a foreign sequential create after the takeover gets a fresh id', async () => {
  const root = await zk.chroot('ids-takeover');
  const { m } = await farm(root);
  const before = await runSome(root, 'before', 4);
  await m.stop();
  const raw = await zk.rawClient(root);
  await raw.remove(PATHS.tasks);
  await raw.create(PATHS.tasks);
  const m2 = new Master({ name: 'm2', connect: root, sessionTimeout: 6000 });
  cleanups.push(() => m2.stop());
  await m2.start();
  await m2.waitForLeadership();
  const path = await raw.createSequential(`${PATHS.tasks}/task-`, '{"handler":"echo","input":"foreign"}');
  const id = path.slice(PATHS.tasks.length + 1);
  assert.ok(taskNumber(id) > Math.max(...before.map(taskNumber)), `${id} must be past ${before.at(-1)}`);
  await until(async () => (await raw.exists(statusPath(id))) !== null, 30_000, `a result for ${id}`);
  assert.equal(JSON.parse((await raw.getData(statusPath(id))).data.toString()).result, 'foreign');
});

test('a foreign client that makes /tasks again and creates sequential tasks gets fresh ids once the leader checked', async () => {
  const root = await zk.chroot('ids-foreign');
  await farm(root);
  const before = await runSome(root, 'before', 4);
  const raw = await zk.rawClient(root);
  await raw.remove(PATHS.tasks);
  await raw.create(PATHS.tasks); // as zkCli's `create /tasks` would
  // The leader notices the new /tasks (a data watch) and marks it once its counter is past every id.
  await until(
    async () => ((await raw.exists(PATHS.tasks))?.dataLength ?? 0) > 0,
    30_000,
    'the leader to check /tasks',
  );
  const path = await raw.createSequential(`${PATHS.tasks}/task-`, '{"handler":"echo","input":"foreign"}');
  const id = path.slice(PATHS.tasks.length + 1);
  assert.ok(taskNumber(id) > Math.max(...before.map(taskNumber)), `${id} must be past ${before.at(-1)}`);
  await until(async () => (await raw.exists(statusPath(id))) !== null, 30_000, `a result for ${id}`);
  const { data } = await raw.getData(statusPath(id));
  assert.equal(JSON.parse(data.toString()).result, 'foreign');
});

test('the counter is advanced past a far-away kept id, in multis, and the mark makes the next check one read', async () => {
  const root = await zk.chroot('ids-far');
  const raw = await zk.rawClient(root);
  await raw.create(PATHS.status);
  await raw.ensurePath(statusPath('task-0000004321'), '{"state":"succeeded"}');
  await raw.create(PATHS.tasks);
  const requests = raw.requests;
  const check = await ensureFreshTaskIds(raw);
  assert.ok(check && check.advanced >= 4322 && check.highest === 4321, JSON.stringify(check));
  assert.ok(raw.requests - requests < 60, `advancing by 4322 took ${raw.requests - requests} requests`);
  const id = (await raw.createSequential(`${PATHS.tasks}/task-`, '{}')).slice(PATHS.tasks.length + 1);
  assert.ok(taskNumber(id) > 4321, id);
  const again = raw.requests;
  assert.equal(await ensureFreshTaskIds(raw), undefined);
  assert.equal(raw.requests - again, 1, 'a checked /tasks costs one exists');
});
