/**
 * ChildrenCache against a real ZooKeeper: the first listing, events in order, a delete and re-create
 * in one notification burst (and a create and delete), a reconnection, the node itself deleted, the
 * end of the session.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ChildEvent, ChildrenCache, type ChildrenUpdate } from '../src/recipes/children-cache.js';
import { connect, type Session } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { proxyConnectString, startFaultProxy } from './helpers/faults.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();

async function session(root: string): Promise<Session> {
  const sup = connect({ connect: root, sessionTimeout: 6000 });
  cleanups.push(() => sup.stop());
  return sup.ready;
}

/** A cache whose deliveries are kept. */
function record(s: Session, path: string) {
  const updates: Array<{ events: ChildEvent[]; children: string[]; listed: boolean }> = [];
  const cache = new ChildrenCache(s, path, (u: ChildrenUpdate) =>
    updates.push({ events: [...u.events], children: [...u.children].sort(), listed: u.listed }),
  );
  const events = () =>
    updates.flatMap((u) => u.events.map((e) => `${e.type === 'added' ? '+' : '-'}${e.name}`));
  return { cache, updates, events };
}

test('the first delivery is the listing; then every create and delete, in order', async () => {
  const root = await zk.chroot('cache-order');
  const c = await zk.rawClient(root);
  await c.create('/q');
  await c.create('/q/a');
  await c.create('/q/b');
  const s = await session(root);
  const r = record(s, '/q');
  await r.cache.ready;
  assert.deepEqual(r.updates[0], {
    events: [
      { type: 'added', name: 'a' },
      { type: 'added', name: 'b' },
    ],
    children: ['a', 'b'],
    listed: true,
  });
  await c.create('/q/c');
  await c.remove('/q/a');
  await c.create('/q/c/grandchild'); // not a child: ignored
  await c.setData('/q/b', 'changed'); // not a create or delete: ignored
  await until(() => r.events().length === 4, 10_000, 'two more events');
  assert.deepEqual(r.events(), ['+a', '+b', '+c', '-a']);
  assert.deepEqual([...r.cache.children].sort(), ['b', 'c']);
});

test('a child deleted and created again in one multi is reported removed, then added: nothing cancels out', async () => {
  const root = await zk.chroot('cache-recreate');
  const c = await zk.rawClient(root);
  await c.create('/q');
  await c.create('/q/x', 'first');
  const s = await session(root);
  const r = record(s, '/q');
  await r.cache.ready;
  await c.transaction().remove('/q/x').create('/q/x', 'second').commit();
  await c.transaction().create('/q/y').remove('/q/y').commit();
  await until(() => r.events().length === 5, 10_000, 'the four events of the two multis');
  // ZooKeeper sends a multi's notifications together (usually one read from the socket, so one
  // delivery): each is there, in order, whether they came in one delivery or two.
  assert.deepEqual(r.events(), ['+x', '-x', '+x', '+y', '-y']);
  assert.deepEqual([...r.cache.children], ['x']);
});

test('a burst of 200 creates in one multi: every one delivered, in order, in few deliveries', async () => {
  const root = await zk.chroot('cache-burst');
  const c = await zk.rawClient(root);
  await c.create('/q');
  const s = await session(root);
  const r = record(s, '/q');
  await r.cache.ready;
  const tx = c.transaction();
  for (let i = 0; i < 200; i++) tx.create(`/q/t${String(i).padStart(3, '0')}`);
  await tx.commit();
  await until(() => r.cache.size === 200, 10_000, '200 children');
  const names = Array.from({ length: 200 }, (_, i) => `+t${String(i).padStart(3, '0')}`);
  assert.deepEqual(r.events(), names);
  // Notifications read together are delivered together (how many reads a burst takes is TCP's business).
  assert.ok(r.updates.length - 1 < 200, `${r.updates.length - 1} deliveries for 200 events`);
});

test('after a reconnection the cache lists again and delivers what changed while it was away', async () => {
  const root = await zk.chroot('cache-reconnect');
  const c = await zk.rawClient(root);
  await c.create('/q');
  await c.create('/q/a');
  await c.create('/q/b');
  const proxy = await startFaultProxy({ target: root });
  cleanups.push(() => proxy.close());
  const s = await session(proxyConnectString(proxy, root));
  const r = record(s, '/q');
  await r.cache.ready;
  proxy.cut(1500);
  await s.supervisor.waitFor('suspended', 10_000);
  await c.remove('/q/a');
  await c.create('/q/z');
  await s.supervisor.waitFor('reconnected', 20_000);
  await until(() => r.cache.has('z') && !r.cache.has('a'), 10_000, 'the changes made while away');
  const last = r.updates.at(-1)!;
  assert.equal(last.listed, true);
  assert.deepEqual(last.children, ['b', 'z']);
  assert.equal(s.alive, true, 'the same session');
  // And the watch works again.
  await c.create('/q/after');
  await until(() => r.cache.has('after'), 10_000, 'an event after the reconnection');
});

test('the node itself deleted: every child is removed; the cache ends with its session', async () => {
  const root = await zk.chroot('cache-node-gone');
  const c = await zk.rawClient(root);
  await c.create('/q');
  await c.create('/q/a');
  const s = await session(root);
  const r = record(s, '/q');
  await r.cache.ready;
  await c.transaction().remove('/q/a').remove('/q').commit();
  await until(() => r.cache.size === 0, 10_000, 'no children');
  await c.create('/q');
  await c.create('/q/back');
  await until(() => r.cache.has('back'), 10_000, 'the node and a child back');
  await s.supervisor.stop();
  assert.equal(r.cache.closed, true);
  const n = r.updates.length;
  await c.create('/q/late');
  await sleep(300);
  assert.equal(r.updates.length, n, 'no delivery after the session ended');
});

test('a cache closed before its session leaves no listener on it; a dozen caches on one session raise no leak warning', async () => {
  const root = await zk.chroot('cache-listeners');
  const c = await zk.rawClient(root);
  const s = await session(root);
  const baseline = getEventListeners(s.signal, 'abort').length;
  const warnings: Error[] = [];
  const onWarning = (w: Error) => {
    if (w.name === 'MaxListenersExceededWarning') warnings.push(w);
  };
  process.on('warning', onWarning);
  try {
    // One per worker on the leader: a farm of twelve workers.
    const caches = [];
    for (let i = 0; i < 12; i++) {
      await c.create(`/w${i}`);
      caches.push(new ChildrenCache(s, `/w${i}`, () => {}));
    }
    await Promise.all(caches.map((cache) => cache.ready));
    assert.equal(getEventListeners(s.signal, 'abort').length, baseline + 12);
    for (const cache of caches) cache.close();
    assert.equal(getEventListeners(s.signal, 'abort').length, baseline);
    await sleep(50); // warnings are emitted on a later tick
    assert.deepEqual(
      warnings.map((w) => w.message),
      [],
    );
  } finally {
    process.off('warning', onWarning);
  }
});
