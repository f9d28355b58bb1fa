/**
 * The promise client against a real ZooKeeper: every helper, typed errors, atomic move, the transaction
 * builder's exact versions, request timeouts, and error codes outside the usual table.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { connect, isZkError, type Supervisor, startZkServer, type ZkError } from '../src/zk/index.js';
import { removeTree, warmUpRequests, warmUpServer } from '../src/zk/warm-up.js';
import { startFaultProxy } from './helpers/faults.js';
import { until } from './helpers/wait.js';
import { useZooKeeper, watchedPaths } from './helpers/zk.js';

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
  assert.equal(eph.ephemeralOwner, c.sessionId);

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
  // A bad path is refused before anything is sent: a rejection, not a throw.
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

test('transactions keep version 0 exact (0 is not "any version")', async () => {
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

test('getDataMany reads many nodes in one round trip (multiReads of 100, sent together); a missing node fails alone', async () => {
  const c = await session(await zk.chroot('multiread'));
  const paths = Array.from({ length: 150 }, (_, i) => `/n${i}`);
  await Promise.all(paths.map((p) => c.create(p, `data of ${p}`)));
  await c.setData('/n7', 'changed');
  const before = c.requests;
  const results = await c.getDataMany([...paths, '/missing']);
  assert.equal(c.requests - before, 2, 'two multiReads: 100 paths and 51');
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

test('an uncommon error code (QUOTA_EXCEEDED) is a ZkError with its name, and the session carries on', async () => {
  // A server that enforces quotas answers QUOTA_EXCEEDED (-125), a code many clients do not know.
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

test('an answer far larger than one socket read (many chunks) is read whole', async () => {
  const c = await session(await zk.chroot('large'));
  const big = Buffer.alloc(900 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  await c.create('/big', big);
  const names = Array.from({ length: 3000 }, (_, i) => `child-${'x'.repeat(60)}-${i}`);
  await c.create('/many');
  for (let i = 0; i < names.length; i += 500) {
    const tx = c.transaction();
    for (const n of names.slice(i, i + 500)) tx.create(`/many/${n}`);
    await tx.commit();
  }
  // Both answers span many TCP reads; several in flight at once interleave their chunks in one stream.
  const [data, children, again] = await Promise.all([
    c.getData('/big'),
    c.getChildren('/many'),
    c.getDataMany(['/big', '/many']),
  ]);
  assert.ok(data.data.equals(big));
  assert.deepEqual(children.sort(), [...names].sort());
  assert.ok(!(again[0] instanceof Error) && again[0]!.data.equals(big));
  assert.equal((await c.exists('/many'))?.numChildren, 3000);
});

test('paths are checked before anything is sent; UTF-8 names travel intact', async () => {
  const c = await session(await zk.chroot('paths'));
  for (const bad of ['', 'x', '/a/', '/a//b', '/a/./b', '/a/..', '/a\u0000b', '/a🎉', '/a\u0007']) {
    await assert.rejects(c.create(bad), (e: unknown) => isZkError(e, 'BAD_ARGUMENTS'), JSON.stringify(bad));
  }
  await assert.rejects(c.transaction().create('/ok').remove('/a/').commit(), (e: unknown) => {
    return isZkError(e, 'BAD_ARGUMENTS') && (e as ZkError).opIndex === 1;
  });
  assert.equal(await c.exists('/ok'), null, 'nothing of the refused multi was sent');
  const name = '/naïve-日本-€';
  assert.equal(await c.create(name, 'ü'), name);
  assert.deepEqual(await c.getChildren('/'), [name.slice(1)]);
  assert.equal((await c.getData(name)).data.toString(), 'ü');
  // A sequential create may end in a slash: the server appends the number.
  await c.create('/seq');
  assert.match(await c.createSequential('/seq/'), /^\/seq\/\d{10}$/);
});

test('a connection that goes silent is dropped after 2/3 of the session timeout; the session is resumed', async () => {
  const root = await zk.chroot('silent');
  const proxy = await startFaultProxy({ target: zk.server.connectString });
  after(() => proxy.close());
  const sup = connect({ connect: `${proxy.address}${root.slice(root.indexOf('/'))}`, sessionTimeout: 6000 });
  sups.push(sup);
  const s = await sup.ready;
  const id = s.id;
  const states: string[] = [];
  sup.on('state', (st: string) => states.push(st));
  proxy.blackhole(true);
  const started = Date.now();
  // Nothing closes the socket: only the client's own read timeout can notice.
  while (!states.includes('suspended')) {
    assert.ok(Date.now() - started < 5500, `no suspension within 5.5 s (states: ${states.join(',')})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const noticed = Date.now() - started;
  assert.ok(noticed >= 3500, `noticed after ${noticed} ms: it waits for 2/3 of the timeout`);
  proxy.blackhole(false);
  await sup.waitFor('reconnected', 10_000);
  assert.equal(sup.session?.id, id, 'same session');
  assert.ok(await sup.session!.client.exists('/'));
});

test('requests made while disconnected wait for the connection; one that timed out meanwhile is never sent', async () => {
  const root = await zk.chroot('waiting');
  const proxy = await startFaultProxy({ target: zk.server.connectString });
  after(() => proxy.close());
  const conn = `${proxy.address}${root.slice(root.indexOf('/'))}`;
  const patient = await session(conn, { sessionTimeout: 10_000, requestTimeout: 8000 });
  const hasty = await session(conn, { sessionTimeout: 10_000, requestTimeout: 400 });
  proxy.cut(2000);
  await new Promise((r) => setTimeout(r, 100));
  const waited = patient.create('/made-while-down', 'x');
  await assert.rejects(hasty.create('/never'), (e: unknown) => isZkError(e, 'OPERATION_TIMEOUT'));
  assert.equal(await waited, '/made-while-down');
  // Once the hasty client is connected again (it backs off between attempts, so maybe later than the
  // patient one), its timed-out create must not have gone out late.
  await until(() => hasty.connection.connected, 20_000, 'the hasty client to reconnect');
  await hasty.exists('/');
  assert.equal(await patient.exists('/never'), null);
});

test('a one-shot watch armed before a disconnection fires for a change made while disconnected', async () => {
  const root = await zk.chroot('setwatches');
  const proxy = await startFaultProxy({ target: zk.server.connectString });
  after(() => proxy.close());
  const c = await session(`${proxy.address}${root.slice(root.indexOf('/'))}`, { sessionTimeout: 10_000 });
  const other = await session(root);
  await c.create('/n', 'v0');
  const fired: Array<{ type: number; path: string }> = [];
  await c.getData('/n', (e) => fired.push({ type: e.type, path: e.path }));
  await c.getChildren('/', (e) => fired.push({ type: e.type, path: e.path }));
  proxy.cut(1500);
  await new Promise((r) => setTimeout(r, 300));
  await other.setData('/n', 'v1');
  await other.create('/m');
  // On reconnect the client re-registers both watches relative to the last zxid it saw; the server
  // fires them at once, since both nodes changed after that.
  const deadline = Date.now() + 10_000;
  while (fired.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(
    fired.sort((a, b) => a.type - b.type),
    [
      { type: 3, path: '/n' },
      { type: 4, path: '/' },
    ],
  );
});

test('sync waits for the server to catch up and answers with the path; a write by another client is then seen', async () => {
  const root = await zk.chroot('sync');
  const writer = await session(root);
  const reader = await session(root);
  await writer.create('/n', 'written');
  assert.equal(await reader.sync('/n'), '/n');
  assert.equal((await reader.getData('/n')).data.toString(), 'written');
  await assert.rejects(reader.sync('relative'), (e: unknown) => isZkError(e, 'BAD_ARGUMENTS'));
});

test('warmUpRequests sends small requests within its bounds, leaves nothing behind, and stops when asked', async () => {
  const root = await zk.chroot('warm-up-requests');
  const client = await zk.rawClient(root);
  const before = await client.getChildren('/');
  const n = await warmUpRequests(client, { ms: 5000, max: 400 });
  // Each of 32 lanes may finish the round of 8 it has begun when the count is reached.
  assert.ok(n >= 400 && n <= 400 + 32 * 8, `requests within the count: ${n}`);
  assert.equal(n % 8, 0, 'whole rounds of the eight kinds');
  assert.deepEqual(await client.getChildren('/'), before, 'the throwaway root is gone');
  const stop = new AbortController();
  stop.abort();
  assert.equal(await warmUpRequests(client, { ms: 5000, signal: stop.signal }), 0, 'none once stopped');
  assert.deepEqual(await client.getChildren('/'), before);
});

test('warmUpServer runs both phases within its bounds and leaves nothing behind; removeTree takes a deep tree', async () => {
  const root = await zk.chroot('warm-up');
  const client = await zk.rawClient(root);
  const before = await client.getChildren('/');
  const w = await warmUpServer(client, { createsMs: 300, createsMax: 2000, mixMs: 300, mixRounds: 3 });
  // In flight when the count is reached: up to 32 single creates and two multis of 100.
  assert.ok(w.creates > 0 && w.creates <= 2000 + 32 + 200, `creates within the count: ${w.creates}`);
  assert.ok(
    w.moved > 0 && w.moved <= 4 * 3 * 50,
    `the mix moved nodes, at most lanes × rounds × 50: ${w.moved}`,
  );
  assert.ok(w.notifications >= w.moved, `the watch heard the moves: ${w.notifications}`);
  assert.deepEqual(await client.getChildren('/'), before, 'the throwaway root is gone');
  // A tree wider than one multi of deletes, with inner nodes, goes whole.
  for (let i = 0; i < 3; i++) {
    const tx = client.transaction();
    for (let k = 0; k < 150; k++) tx.create(`/deep-${i}-${k}`, Buffer.alloc(0));
    await tx.commit();
  }
  await client.ensurePath('/deep-0-0/a/b/c');
  await removeTree(client, '/');
  assert.deepEqual(await client.getChildren('/'), []);
});

test('the last persistent watch at a path removed here is removed from the server; one kept there keeps it', async () => {
  const root = await zk.chroot('remove-watches');
  const c = await session(root);
  // `wchc`: the paths the server watches for this session.
  const watched = () => watchedPaths(root, c.connection.sessionId);
  await c.ensurePath('/b');
  const heard: string[] = [];
  const off = await c.addWatch('/b', 'persistentRecursive', (_t, p) => heard.push(`a ${p}`));
  assert.deepEqual(await watched(), ['/b']);
  off();
  await c.sync('/'); // answered after the removal, which went out first
  assert.deepEqual(await watched(), [], 'no listener left: the server watch is gone');

  // Two listeners: removing one keeps the watch for the other.
  const offA = await c.addWatch('/b', 'persistentRecursive', (_t, p) => heard.push(`a ${p}`));
  const offB = await c.addWatch('/b', 'persistentRecursive', (_t, p) => heard.push(`b ${p}`));
  offA();
  await c.create('/b/one');
  await until(async () => heard.includes('b /b/one'), 5000, 'the other listener hears the create');
  assert.equal(heard.includes('a /b/one'), false, 'a removed listener hears nothing');
  assert.deepEqual(await watched(), ['/b']);

  // A one-shot watch at the path also keeps it, and still fires.
  let fired = false;
  await c.exists('/b', () => {
    fired = true;
  });
  offB();
  offB(); // twice: nothing more
  await c.sync('/');
  assert.deepEqual(await watched(), ['/b'], 'the one-shot watch is still on the server');
  await c.setData('/b', 'x');
  await until(async () => fired, 5000, 'the one-shot watch fires');
  await c.sync('/');
  assert.deepEqual(await watched(), []);

  // Removed and added again at once: the removal is answered first, the watch stays.
  const offC = await c.addWatch('/b', 'persistentRecursive', () => {});
  offC();
  await c.addWatch('/b', 'persistentRecursive', (_t, p) => heard.push(`d ${p}`));
  await c.create('/b/two');
  await until(async () => heard.includes('d /b/two'), 5000, 'the watch added again hears the create');
  assert.deepEqual(await watched(), ['/b']);
});
