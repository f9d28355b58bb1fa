/**
 * MultiBatcher against a real ZooKeeper: splitting by operation count and bytes, a fault in the middle
 * of a batch (the failing item set aside by the index ZooKeeper names, the rest sent again in one
 * request), guards, connection loss mid-write, a write stopped by the end of its session.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes, ZkfarmError } from '../src/errors.js';
import { type BatchItem, MultiBatcher } from '../src/recipes/multi-batcher.js';
import { isZkError } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { proxyConnectString, startFaultProxy } from './helpers/faults.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();

const create = (path: string, bytes = 0): BatchItem => ({
  ops: [{ op: 'create', path, data: Buffer.alloc(bytes, 120) }],
});

async function setup(name: string) {
  const root = await zk.chroot(name);
  const c = await zk.rawClient(root);
  await c.create('/b');
  return { root, c };
}

test('splits by operation count and by bytes: every multi within both limits', async () => {
  const { c } = await setup('split');
  const items = Array.from({ length: 450 }, (_, i) => create(`/b/n${i}`, i % 2 ? 10 : 8000));
  const batcher = new MultiBatcher(c, { maxOps: 100, maxBytes: 200_000 });
  const multis: BatchItem[][] = [];
  const r = await batcher.write(items, (chunk) => multis.push(chunk));
  assert.equal(r.written.length, 450);
  assert.deepEqual([r.refused.length, r.unsent.length], [0, 0]);
  for (const m of multis) {
    assert.ok(m.length <= 100, `${m.length} operations`);
    const bytes = m.reduce((n, i) => n + batcher.bytesOf(i), 0);
    assert.ok(bytes <= 200_000, `${bytes} bytes`);
  }
  const total = items.reduce((n, i) => n + batcher.bytesOf(i), 0);
  assert.ok(multis.length >= Math.ceil(total / 200_000) && multis.length < 12, `${multis.length} multis`);
  assert.equal((await c.getChildren('/b')).length, 450);
});

test('a batch whose data passes 1 MiB is written; the same operations in one multi cannot be sent', async () => {
  const { c } = await setup('over-limit');
  const items = Array.from({ length: 120 }, (_, i) => create(`/b/big${i}`, 11 * 1024));
  // The control: one request of 1.3 MB. ZooKeeper would drop the connection (and every resend); the
  // client refuses it before sending.
  const tx = c.transaction();
  for (const i of items) for (const o of i.ops) if (o.op === 'create') tx.create(o.path, o.data);
  await assert.rejects(tx.commit(), (e: unknown) => isZkError(e, 'CONNECTION_LOSS', 'BAD_ARGUMENTS'));
  const r = await new MultiBatcher(c).write(items);
  assert.equal(r.written.length, 120);
  assert.equal((await c.getChildren('/b')).length, 120);
});

test('a multi refused as a whole (no failing operation named) is split in two until its items go', async () => {
  const { c } = await setup('split-on-refusal');
  // Our estimate allows 2 MB; the client refuses what passes its jute.maxbuffer: the batcher halves.
  const items = Array.from({ length: 120 }, (_, i) => create(`/b/big${i}`, 11 * 1024));
  const r = await new MultiBatcher(c, { maxBytes: 2_000_000, hardLimitBytes: 2_000_000 }).write(items);
  assert.equal(r.written.length, 120);
  assert.deepEqual([r.refused.length, r.unsent.length], [0, 0]);
});

test('a fault in the middle of a batch: the failing item is set aside, the rest go again in one request', async () => {
  const { c } = await setup('fault-middle');
  await c.create('/b/n25');
  await c.create('/b/versioned', 'x');
  const items: BatchItem[] = Array.from({ length: 50 }, (_, i) => create(`/b/n${i}`));
  const badVersion: BatchItem = { ops: [{ op: 'delete', path: '/b/versioned', version: 7 }] };
  items.splice(10, 0, badVersion);
  const before = c.requests;
  const r = await new MultiBatcher(c).write(items);
  assert.equal(r.written.length, 49);
  assert.deepEqual(
    r.refused.map((x) => [x.item.ops[0]!.path, x.error.code, x.afterLoss]),
    [
      ['/b/versioned', 'BAD_VERSION', false],
      ['/b/n25', 'NODE_EXISTS', false],
    ],
  );
  // One multi failed at the bad version, the rest went again and failed at n25, the rest again.
  assert.equal(c.requests - before, 3);
  assert.equal((await c.getChildren('/b')).length, 51);
});

test('a failed guard refuses the items that name it, and only those', async () => {
  const { c } = await setup('guards');
  await c.create('/workers');
  await c.create('/workers/a');
  const items = Array.from({ length: 20 }, (_, i) => ({
    ...create(`/b/t${i}`),
    guards: [i % 2 ? '/workers/a' : '/workers/b'],
  }));
  const before = c.requests;
  const r = await new MultiBatcher(c).write(items);
  assert.equal(r.written.length, 10);
  assert.equal(r.refused.length, 10);
  assert.ok(r.refused.every((x) => x.guard === '/workers/b' && x.error.code === 'NO_NODE'));
  assert.equal(c.requests - before, 2);
  assert.deepEqual(
    (await c.getChildren('/b')).sort(),
    items
      .filter((_, i) => i % 2)
      .map((i) => i.ops[0]!.path.slice(3))
      .sort(),
  );
});

test('a connection lost mid-write: the multis go again after a backoff; nothing is applied twice', async () => {
  const root = await zk.chroot('loss');
  const proxy = await startFaultProxy({ target: zk.server.connectString });
  cleanups.push(() => proxy.close());
  const c = await zk.rawClient(proxyConnectString(proxy, root));
  await c.create('/b');
  const items = Array.from({ length: 400 }, (_, i) => create(`/b/n${i}`, 100));
  const writing = new MultiBatcher(c, { maxOps: 50 }).write(items);
  proxy.cut(300);
  const r = await writing;
  // A multi applied before the cut whose answer was lost is refused on its second try (NODE_EXISTS),
  // marked as after a loss; nothing else may be refused.
  assert.ok(r.refused.every((x) => x.afterLoss && x.error.code === 'NODE_EXISTS'));
  assert.equal(r.written.length + r.refused.length, 400);
  assert.equal(r.unsent.length, 0);
  assert.equal((await c.getChildren('/b')).length, 400);
});

test('a write stops when its session ends or its signal aborts: the rest comes back unsent', async () => {
  const { c } = await setup('stop');
  const items = Array.from({ length: 300 }, (_, i) => create(`/b/n${i}`));
  const ac = new AbortController();
  const r = await new MultiBatcher(c, { maxOps: 10, window: 1, signal: ac.signal }).write(items, () =>
    ac.abort(new ZkfarmError(ErrorCodes.STOPPED, 'enough')),
  );
  assert.equal(r.written.length, 10);
  assert.equal(r.unsent.length, 290);
  assert.equal((r.stoppedBy as { code?: string }).code, ErrorCodes.STOPPED);

  const lost = new ZkfarmError(ErrorCodes.SESSION_LOST, 'the ZooKeeper session was lost');
  const r2 = await new MultiBatcher(c, { maxOps: 10, window: 2 }).write(
    items.map((i, k) => create(`${i.ops[0]!.path}-again${k}`)),
    () => c.failPending(lost),
  );
  assert.equal(r2.stoppedBy, lost);
  assert.equal(r2.written.length + r2.unsent.length, 300);
  assert.ok(r2.written.length >= 10 && r2.unsent.length > 0);
});

test('an item too large for any request is refused without being sent', async () => {
  const { c } = await setup('too-large');
  const huge: BatchItem = {
    ops: [
      { op: 'create', path: '/b/a', data: Buffer.alloc(600_000) },
      { op: 'create', path: '/b/b', data: Buffer.alloc(600_000) },
    ],
  };
  const before = c.requests;
  const r = await new MultiBatcher(c).write([huge, create('/b/small')]);
  assert.equal(r.refused.length, 1);
  assert.equal(r.refused[0]!.item, huge);
  assert.equal(r.refused[0]!.error.code, 'BAD_ARGUMENTS');
  assert.match(r.refused[0]!.error.message, /1 MiB/);
  assert.equal(r.written.length, 1);
  assert.equal(c.requests - before, 1);
});
