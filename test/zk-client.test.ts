/**
 * The promise client against a real ZooKeeper: every helper, typed errors, atomic move, the transaction
 * builder's exact versions, request timeouts, and the guard against the library's "Unknown code" crash.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import zookeeper from 'node-zookeeper-client';
import {
  connect,
  isZkError,
  type Supervisor,
  startFaultProxy,
  startZkServer,
  type ZkError,
} from '../src/zk/index.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const sups: Supervisor[] = [];
after(async () => {
  await Promise.all(sups.map((s) => s.stop()));
});

async function session(connectString: string, extra: Partial<Parameters<typeof connect>[0]> = {}) {
  const sup = connect({ connect: connectString, sessionTimeout: 6000, ...extra });
  sups.push(sup);
  return (await sup.ready).client;
}

test('create, ephemeral, sequential, ensurePath, get/set, children, remove', async () => {
  const c = await session(await zk.chroot('helpers'));
  assert.equal(await c.create('/a', 'one'), '/a');
  assert.equal((await c.getData('/a')).data.toString(), 'one');
  const stat = await c.setData('/a', 'two');
  assert.equal(stat.version, 1);
  assert.equal((await c.getData('/a')).data.toString(), 'two');

  await c.ensurePath('/x/y/z', 'leaf');
  await c.ensurePath('/x/y/z', 'other'); // idempotent, keeps the data
  assert.equal((await c.getData('/x/y/z')).data.toString(), 'leaf');

  const seq1 = await c.createSequential('/x/task-', '{}');
  const seq2 = await c.createSequential('/x/task-', '{}');
  assert.match(seq1, /^\/x\/task-\d{10}$/);
  assert.ok(seq2 > seq1, 'sequence numbers grow');

  await c.createEphemeral('/eph', 'e');
  const eph = await c.exists('/eph');
  assert.ok(eph);
  assert.equal(eph.ephemeralOwner.toString('hex'), c.sessionId);

  assert.deepEqual((await c.getChildren('/x')).sort(), ['task-0000000001', 'task-0000000002', 'y'].sort());
  assert.equal(await c.exists('/nope'), null);

  await c.remove('/a');
  assert.equal(await c.exists('/a'), null);
  assert.equal(await c.removeIfExists('/a'), false);
  await c.removeRecursive('/x');
  assert.equal(await c.exists('/x'), null);
});

test('failures are ZkErrors with ZooKeeper code names, bad arguments reject instead of throwing', async () => {
  const c = await session(await zk.chroot('errors'));
  await assert.rejects(
    c.getData('/missing'),
    (e: unknown) => isZkError(e, 'NO_NODE') && (e as ZkError).path === '/missing',
  );
  await c.create('/dup');
  await assert.rejects(c.create('/dup'), (e: unknown) => isZkError(e, 'NODE_EXISTS'));
  await assert.rejects(c.setData('/dup', 'x', 7), (e: unknown) => isZkError(e, 'BAD_VERSION'));
  await c.create('/dup/child');
  await assert.rejects(c.remove('/dup'), (e: unknown) => isZkError(e, 'NOT_EMPTY'));
  // The library asserts synchronously on a bad path; we get a rejection.
  const p = c.create('no-leading-slash');
  await assert.rejects(p, (e: unknown) => isZkError(e, 'BAD_ARGUMENTS'));
  await assert.rejects(c.create('/big', Buffer.alloc(1024 * 1024 + 1)), (e: unknown) =>
    isZkError(e, 'BAD_ARGUMENTS'),
  );
});

test('move is one multi: it happens whole, or the source stays in place', async () => {
  const c = await session(await zk.chroot('move'));
  await c.ensurePath('/from');
  await c.ensurePath('/to');
  await c.create('/from/t1', 'payload-1');
  assert.equal(await c.move('/from/t1', '/to/t1'), '/to/t1');
  assert.equal(await c.exists('/from/t1'), null);
  assert.equal((await c.getData('/to/t1')).data.toString(), 'payload-1');

  // Target exists: the delete half must not happen either.
  await c.create('/from/t2', 'payload-2');
  await c.create('/to/t2', 'already');
  await assert.rejects(c.move('/from/t2', '/to/t2'), (e: unknown) => isZkError(e, 'NODE_EXISTS'));
  assert.equal((await c.getData('/from/t2')).data.toString(), 'payload-2');
  assert.equal((await c.getData('/to/t2')).data.toString(), 'already');

  // Target parent missing: same.
  await assert.rejects(c.move('/from/t2', '/nowhere/t2'), (e: unknown) => isZkError(e, 'NO_NODE'));
  assert.ok(await c.exists('/from/t2'));
});

test('transactions keep version 0 exact (the library turns 0 into "any version")', async () => {
  const c = await session(await zk.chroot('tx'));
  await c.create('/n', 'v0');
  await c.setData('/n', 'v1'); // now at version 1
  // check(path, 0) must fail on a node at version 1.
  await assert.rejects(c.transaction().check('/n', 0).create('/side').commit(), (e: unknown) => {
    return isZkError(e, 'BAD_VERSION') && (e as ZkError).opIndex === 0;
  });
  assert.equal(await c.exists('/side'), null, 'nothing of the failed multi was applied');
  await assert.rejects(c.transaction().remove('/n', 0).commit(), (e: unknown) => isZkError(e, 'BAD_VERSION'));
  await assert.rejects(c.transaction().setData('/n', 'x', 0).commit(), (e: unknown) =>
    isZkError(e, 'BAD_VERSION'),
  );
  // The right version passes.
  const res = await c.transaction().check('/n', 1).setData('/n', 'v2', 1).create('/side', 'ok').commit();
  assert.equal(res.length, 3);
  assert.equal(res[2]?.path, '/side');
  assert.equal((await c.getData('/n')).data.toString(), 'v2');
  // On a fresh node, version 0 fences correctly in both directions.
  await c.create('/fresh');
  await c.transaction().check('/fresh', 0).commit();
});

test('getDataMany reads many nodes in one multiRead round trip; a missing node fails alone', async () => {
  const c = await session(await zk.chroot('multiread'));
  const paths = Array.from({ length: 150 }, (_, i) => `/n${i}`);
  await Promise.all(paths.map((p) => c.create(p, `data of ${p}`)));
  await c.setData('/n7', 'changed');
  const before = c.requests;
  const results = await c.getDataMany([...paths, '/missing']);
  assert.equal(c.requests - before, 1, 'one request');
  assert.equal(results.length, 151);
  results.slice(0, 150).forEach((r, i) => {
    assert.ok(!(r instanceof Error), `result ${i}`);
    assert.equal(r.data.toString(), i === 7 ? 'changed' : `data of /n${i}`);
    assert.equal(r.stat.version, i === 7 ? 1 : 0);
  });
  assert.ok(isZkError(results[150], 'NO_NODE'));
  // Ordinary multis still parse after the parser learned reads.
  const res = await c.transaction().create('/w', 'x').setData('/n1', 'y').remove('/n2').commit();
  assert.equal(res[0]?.path, '/w');
  assert.equal(res[1]?.stat?.version, 1);
});

test('requests time out when the server does not answer', async () => {
  const proxy = await startFaultProxy({ target: zk.server.connectString });
  after(() => proxy.close());
  const c = await session(`${proxy.address}`, { requestTimeout: 800, sessionTimeout: 20_000 });
  await c.exists('/');
  proxy.blackhole(true);
  const started = Date.now();
  await assert.rejects(c.getChildren('/'), (e: unknown) => isZkError(e, 'OPERATION_TIMEOUT'));
  assert.ok(Date.now() - started >= 700, 'it waited for the timeout');
  proxy.blackhole(false);
});

test('an error code the library does not know is a ZkError, not a process crash', async () => {
  // A server that enforces quotas answers QUOTA_EXCEEDED (-125): outside the library's table, which
  // without our guard throws inside the socket handler and kills the process.
  const server = await startZkServer({
    javaOpts: ['-Xmx128m', '-XX:+UseSerialGC', '-Dzookeeper.enforceQuota=true'],
  });
  after(() => server.stop());
  const c = await session(server.connectString);
  await c.create('/q');
  await c.ensurePath('/zookeeper/quota/q');
  await c.create(
    '/zookeeper/quota/q/zookeeper_limits',
    'count=-1,bytes=-1,countHardLimit=2,byteHardLimit=-1',
  );
  await c.create('/zookeeper/quota/q/zookeeper_stats', 'count=1,bytes=0');
  await c.create('/q/one');
  const err = await c
    .create('/q/two')
    .then(() => c.create('/q/three'))
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.ok(isZkError(err, 'QUOTA_EXCEEDED'), `expected QUOTA_EXCEEDED, got ${String(err)}`);
  assert.equal((err as ZkError).zkCode, -125);
  // The session is still usable.
  assert.ok(await c.exists('/q'));
});

test('the raw library rejects unknown codes in its own table (what the guard protects against)', () => {
  // Documents the defect: without the guard, Exception.create throws.
  const e = (
    zookeeper.Exception as unknown as { create(code: number): { getCode(): number; name: string } }
  ).create(-125);
  assert.equal(e.getCode(), -125);
  assert.equal(e.name, 'QUOTA_EXCEEDED');
});
