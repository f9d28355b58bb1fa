/**
 * The client held to the reference clients' standard, against a real ZooKeeper: an orderly close with
 * requests in flight, request sizes checked against the server's real jute.maxbuffer, persistent watches
 * that survive a reconnect, loss detection timed from the last answer, a missing chroot reported.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import { hasCode } from '../src/errors.js';
import { Submitter } from '../src/farm/submitter.js';
import {
  CreateMode,
  connect,
  isZkError,
  type SessionState,
  type Supervisor,
  type ZkClient,
} from '../src/zk/index.js';
import { proxyConnectString, startFaultProxy } from './helpers/faults.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const sups: Supervisor[] = [];
const proxies: Array<{ close(): Promise<void> }> = [];
after(async () => {
  await Promise.all(sups.map((s) => s.stop()));
  await Promise.all(proxies.map((p) => p.close()));
});

function supervise(options: Parameters<typeof connect>[0], action?: Parameters<typeof connect>[1]) {
  const sup = connect(options, action);
  sups.push(sup);
  const states: Array<{ state: SessionState; at: number }> = [];
  sup.on('state', (state: SessionState) => states.push({ state, at: performance.now() }));
  return { sup, states };
}

test('stop() with hundreds of requests in flight closes the session in order: ephemeral nodes vanish at once', async () => {
  const root = await zk.chroot('close');
  const observer = await zk.rawClient(root);
  for (let round = 0; round < 3; round++) {
    const warnings: string[] = [];
    const logger = {
      debug() {},
      info() {},
      error() {},
      warn: (_o: object, m?: string) => warnings.push(m ?? ''),
    };
    const { sup } = supervise({ connect: root, logger });
    const s = await sup.ready;
    await s.client.create(`/eph-${round}`, 'x', CreateMode.EPHEMERAL);
    const inFlight = Array.from({ length: 500 }, () =>
      s.client.getData(`/eph-${round}`).catch(() => undefined),
    );
    await yieldToIo(); // on the wire, answers not read yet
    await sup.stop();
    assert.equal(
      await observer.exists(`/eph-${round}`),
      null,
      `round ${round}: the ephemeral node is gone at once`,
    );
    await Promise.all(inFlight);
    assert.deepEqual(warnings, [], 'no protocol error on the way out');
  }
});

test("requests are checked against the server's jute.maxbuffer: the largest passes, one byte more is refused locally", async () => {
  const root = await zk.chroot('limits');
  const { sup } = supervise({ connect: root });
  const c: ZkClient = (await sup.ready).client;
  const id = c.sessionId;
  const max = 0xfffff; // ZooKeeper's default jute.maxbuffer, which the test server runs with
  // A create's frame: xid, type, path, data, the open ACL (27 bytes), mode.
  const path = '/big';
  const overhead = 4 + 4 + (4 + Buffer.byteLength(c.connection.serverPath(path))) + 4 + 27 + 4;
  const tooBig = c.create(path, Buffer.alloc(max - overhead + 1));
  await assert.rejects(
    tooBig,
    (e: unknown) => isZkError(e, 'BAD_ARGUMENTS') && /jute\.maxbuffer/.test(String(e)),
  );
  // Data just under 1 MiB: refused here, where the server would have dropped the connection.
  await assert.rejects(c.create('/almost-1MiB', Buffer.alloc(1024 * 1024 - 10)), (e: unknown) =>
    isZkError(e, 'BAD_ARGUMENTS'),
  );
  // A multi whose operations are each small enough but together are not.
  const tx = c.transaction();
  for (let i = 0; i < 3; i++) tx.create(`/part-${i}`, Buffer.alloc(400 * 1024));
  await assert.rejects(tx.commit(), (e: unknown) => isZkError(e, 'BAD_ARGUMENTS') && /multi/.test(String(e)));
  // Exactly at the limit: the real server takes it.
  assert.equal(await c.create(path, Buffer.alloc(max - overhead)), path);
  assert.equal((await c.getData(path)).data.length, max - overhead);
  assert.equal(c.sessionId, id);
  assert.equal(sup.state, 'connected', 'the connection was never dropped');
  assert.equal(c.connection.maxBuffer, max, 'the default limit is the server default');
});

test('persistent and persistent recursive watches keep reporting after a dropped connection (SetWatches2)', async () => {
  const root = await zk.chroot('setwatches2');
  const proxy = await startFaultProxy({ target: zk.server.connectString });
  proxies.push(proxy);
  const { sup, states } = supervise({ connect: proxyConnectString(proxy, root), sessionTimeout: 10_000 });
  const c = (await sup.ready).client;
  const other = await zk.rawClient(root);
  await c.create('/w');
  await c.create('/r');
  const heard: string[] = [];
  await c.addWatch('/w', 'persistent', (t, p) => heard.push(`plain ${t} ${p}`));
  await c.addWatch('/r', 'persistentRecursive', (t, p) => heard.push(`recursive ${t} ${p}`));
  proxy.cut(300);
  await until(() => states.some((s) => s.state === 'reconnected'), 20_000, 'a reconnect');
  // The watches are registered again before anything this session sends after the reconnect: once this
  // read is answered, the server has them. (Changes between the reconnect and that moment are not
  // reported by ZooKeeper: code that keeps state from a persistent watch re-reads after a reconnect.)
  await c.exists('/');
  await other.setData('/w', 'changed');
  await other.create('/r/x');
  await until(() => heard.length >= 2, 10_000, `both watches to report (heard: ${heard.join('; ')})`);
  assert.deepEqual(heard.sort(), ['plain 3 /w', 'recursive 1 /r/x']);
});

test('a silent partition: suspended at 2/3 and lost at 4/3 of the session timeout, both counted from the last answer', async () => {
  const root = await zk.chroot('loss');
  const proxy = await startFaultProxy({ target: zk.server.connectString });
  proxies.push(proxy);
  const timeout = 6000;
  const reasons: string[] = [];
  const logger = { debug() {}, info() {}, error() {}, warn: (o: object) => reasons.push(JSON.stringify(o)) };
  const { sup, states } = supervise({
    connect: proxyConnectString(proxy, root),
    sessionTimeout: timeout,
    logger,
  });
  const c = (await sup.ready).client;
  assert.equal(c.connection.sessionTimeout, timeout);
  await c.exists('/');
  const lastAnswer = performance.now();
  proxy.blackhole(true);
  await until(() => states.some((s) => s.state === 'lost'), 30_000, 'the session to be taken as lost');
  proxy.blackhole(false);
  const suspended = states.find((s) => s.state === 'suspended')!.at;
  const lost = states.find((s) => s.state === 'lost')!.at;
  // Never early (a timer may fire a millisecond before its time).
  assert.ok(suspended - lastAnswer >= (timeout * 2) / 3 - 20, `suspended after ${suspended - lastAnswer} ms`);
  assert.ok(lost - lastAnswer >= (timeout * 4) / 3 - 20, `lost after ${lost - lastAnswer} ms`);
  // Lost 2/3 of the timeout after the suspension, because both count from the last answer. A client that
  // started a session-timeout timer at the suspension would take a whole timeout, or more.
  assert.ok(lost - suspended < timeout * 0.9, `lost ${lost - suspended} ms after the suspension`);
  assert.ok(
    reasons.some((r) => /no answer from any ZooKeeper server for \d+ ms, 4\/3 of the 6000 ms/.test(r)),
    reasons.join('\n'),
  );
  await until(() => sup.state === 'connected', 30_000, 'a new session once the network is back');
});

test('a chroot that does not exist is reported, not created by a submitter that would then wait for ever', async () => {
  const root = await zk.chroot('chroot');
  const missing = `${root}/no-farm-here`;
  await assert.rejects(
    Submitter.open({ connect: missing }),
    (e: unknown) => hasCode(e, 'ZKFARM_CHROOT_MISSING') && String(e).includes('/no-farm-here'),
  );
  const { sup } = supervise({ connect: missing });
  await assert.rejects(sup.done, (e: unknown) => hasCode(e, 'ZKFARM_CHROOT_MISSING'));
  const observer = await zk.rawClient(root);
  assert.equal(await observer.exists('/no-farm-here'), null, 'nothing was created');
});
