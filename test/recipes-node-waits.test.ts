/**
 * NodeWaits against a real ZooKeeper: nodes that exist before their wait and nodes created after, each
 * delivered once with its data, in batched reads; other changes ignored; a removed wait never
 * delivered; nodes created while the connection was down, and while there was no session. And a
 * Submitter's shared watch on a bucket (farm/result-watches.ts), removed from the server once idle.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MANY_IN_BUCKET, ResultWatches } from '../src/farm/result-watches.js';
import { NodeWaits } from '../src/recipes/node-waits.js';
import { connect, type Supervisor } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { proxyConnectString, startFaultProxy } from './helpers/faults.js';
import { until } from './helpers/wait.js';
import { useZooKeeper, watchedPaths } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();

async function supervisor(connectString: string, sessionTimeout = 6000): Promise<Supervisor> {
  const sup = connect({ connect: connectString, sessionTimeout });
  cleanups.push(() => sup.stop());
  await sup.ready;
  return sup;
}

/** Waits whose deliveries are kept, name → data (and how often each came). */
function record(sup: Supervisor, parent: string) {
  const waits = new NodeWaits(sup, parent);
  cleanups.push(() => waits.close());
  const got = new Map<string, string>();
  const times = new Map<string, number>();
  const add = (name: string, key = name) =>
    waits.add(name, (data) => {
      got.set(key, data.toString());
      times.set(key, (times.get(key) ?? 0) + 1);
    });
  return { waits, got, times, add };
}

const names = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => `n${String(from + i).padStart(4, '0')}`);

test('nodes that exist and nodes created later: each delivered once, with its data, in far fewer requests than nodes', async () => {
  const root = await zk.chroot('waits-basic');
  const c = await zk.rawClient(root);
  await c.create('/b');
  for (const n of names(150)) await c.create(`/b/${n}`, `early ${n}`);
  const sup = await supervisor(root);
  const r = record(sup, '/b');
  const before = sup.requests;
  for (const n of names(300)) r.add(n);
  await until(() => r.got.size === 150, 10_000, 'the 150 nodes that existed');
  for (let i = 150; i < 300; i += 50) {
    const tx = c.transaction();
    for (const n of names(50, i)) tx.create(`/b/${n}`, `late ${n}`);
    await tx.commit();
  }
  await until(() => r.got.size === 300, 10_000, 'the 150 created later');
  assert.equal(r.got.get('n0007'), 'early n0007');
  assert.equal(r.got.get('n0200'), 'late n0200');
  assert.ok(
    [...r.times.values()].every((t) => t === 1),
    'each delivered once',
  );
  assert.equal(r.waits.size, 0);
  const used = sup.requests - before;
  assert.ok(used < 60, `${used} requests for 300 nodes`);
});

test('other changes are ignored; a removed wait is never delivered; the parent may come later', async () => {
  const root = await zk.chroot('waits-ignore');
  const c = await zk.rawClient(root);
  const sup = await supervisor(root);
  const r = record(sup, '/later');
  r.add('x');
  const stopGone = r.add('gone');
  r.add('deep');
  await sleep(200); // the watch and the first reads are answered: nothing exists yet
  stopGone();
  await c.create('/later');
  await c.create('/later/gone', 'no');
  await c.create('/later/other', 'not waited for');
  await c.create('/later/other/deep', 'a grandchild named like a wait');
  await c.setData('/later/other', 'changed');
  await c.remove('/later/gone');
  await c.create('/later/x', 'yes');
  await until(() => r.got.has('x'), 10_000, 'x');
  await sleep(200);
  assert.deepEqual([...r.got], [['x', 'yes']]);
  assert.equal(r.waits.size, 1, 'deep is still waited for');
  r.waits.close();
  await c.create('/later/deep', 'after close');
  await sleep(200);
  assert.equal(r.got.has('deep'), false, 'nothing after close');
});

test('a name waited for twice is delivered to both waits; a stopped one is not', async () => {
  const root = await zk.chroot('waits-twice');
  const c = await zk.rawClient(root);
  await c.create('/b');
  const sup = await supervisor(root);
  const r = record(sup, '/b');
  r.add('t', 'first');
  r.add('t', 'second');
  const stop = r.add('t', 'stopped');
  r.add('u', 'u1');
  const stopU = r.add('u', 'u2');
  stopU();
  stop();
  // One function given twice is two waits: stopping one leaves the other.
  let sameCalls = 0;
  const same = () => sameCalls++;
  r.waits.add('v', same);
  const stopOneSame = r.waits.add('v', same);
  stopOneSame();
  await c.create('/b/t', 'data of t');
  await c.create('/b/u', 'data of u');
  await c.create('/b/v', 'data of v');
  await until(() => r.got.size === 3 && sameCalls === 1, 10_000, 'four deliveries');
  await sleep(200);
  assert.deepEqual([...r.got].sort(), [
    ['first', 'data of t'],
    ['second', 'data of t'],
    ['u1', 'data of u'],
  ]);
  assert.equal(sameCalls, 1);
  assert.equal(r.waits.size, 0);
});

test('nodes created while the connection was down are delivered after the reconnection', async () => {
  const root = await zk.chroot('waits-reconnect');
  const c = await zk.rawClient(root);
  await c.create('/b');
  const proxy = await startFaultProxy({ target: root });
  cleanups.push(() => proxy.close());
  const sup = await supervisor(proxyConnectString(proxy, root));
  const r = record(sup, '/b');
  for (const n of names(20)) r.add(n);
  await sleep(200);
  proxy.cut(1500);
  await sup.waitFor('suspended', 10_000);
  for (const n of names(10)) await c.create(`/b/${n}`, 'while away');
  await sup.waitFor('reconnected', 20_000);
  await until(() => r.got.size === 10, 10_000, 'the ten created while away');
  for (const n of names(10, 10)) await c.create(`/b/${n}`, 'after');
  await until(() => r.got.size === 20, 10_000, 'the ten created after: the watch is back');
  assert.equal(sup.sessionCount, 1, 'the same session');
});

test('nodes created while there was no session are delivered on the next session', async () => {
  const root = await zk.chroot('waits-lost');
  const c = await zk.rawClient(root);
  await c.create('/b');
  const proxy = await startFaultProxy({ target: root });
  cleanups.push(() => proxy.close());
  const sup = await supervisor(proxyConnectString(proxy, root), 4000);
  const r = record(sup, '/b');
  for (const n of names(20)) r.add(n);
  await sleep(200);
  proxy.cut();
  await sup.waitFor('lost', 20_000);
  for (const n of names(10)) await c.create(`/b/${n}`, 'between sessions');
  proxy.restore();
  await sup.waitFor('connected', 20_000);
  await until(() => r.got.size === 10, 20_000, 'the ten created between sessions');
  assert.equal(sup.sessionCount, 2, 'a new session');
  for (const n of names(10, 10)) await c.create(`/b/${n}`, 'after');
  await until(() => r.got.size === 20, 10_000, 'the ten created after: the watch is on the new session');
});

test("a Submitter's shared watch on a bucket leaves the server once its waits are done and it sat idle", async () => {
  const root = await zk.chroot('waits-idle');
  const c = await zk.rawClient(root);
  await c.ensurePath('/status/000000');
  const sup = await supervisor(root);
  const idleMs = 300;
  const results = new ResultWatches(sup, idleMs);
  cleanups.push(() => results.close());
  const ids = Array.from({ length: MANY_IN_BUCKET + 4 }, (_, i) => `task-${String(i).padStart(10, '0')}`);
  const got = new Set<string>();
  const wait = (id: string) => {
    const w = results.watch(id, () => {
      got.add(id);
      w.close();
    });
  };
  for (const id of ids) wait(id);
  assert.equal(results.bucketsWatched, 1, 'enough waits in one bucket share its watch');
  const session = () => sup.session!.client.connection.sessionId;
  await until(async () => (await watchedPaths(root, session())).includes('/status/000000'), 5000, 'armed');
  for (const id of ids) await c.create(`/status/000000/${id}`, '{"state":"succeeded"}');
  await until(() => got.size === ids.length, 10_000, 'every result');

  // A wait within the pause keeps the same watch.
  await sleep(idleMs / 3);
  const late = 'task-0000000099';
  wait(late);
  await c.create(`/status/000000/${late}`, '{"state":"succeeded"}');
  await until(() => got.has(late), 10_000, 'the later result');
  assert.equal(results.bucketsWatched, 1);

  await until(() => results.bucketsWatched === 0, 5000, 'the idle bucket closed');
  await until(
    async () => !(await watchedPaths(root, session())).includes('/status/000000'),
    5000,
    "the bucket's watch removed from the server",
  );
});
