/**
 * The client's wire protocol against a scripted fake server (test/helpers/fake-zk-server.ts), for what a
 * real server cannot be made to do on cue: a stepped wall clock, callbacks that throw, xids at the wrap,
 * bogus frame lengths, notifications for chosen paths, SetWatches2 on reconnect, a refusing server, a
 * server that claims to be 3.5.
 */
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { hasCode } from '../src/errors.js';
import { ZkClient } from '../src/zk/client.js';
import { ZkConnection } from '../src/zk/connection.js';
import { isZkError } from '../src/zk/errors.js';
import { OP, Reader } from '../src/zk/jute.js';
import { createConnection, openClient } from '../src/zk/open-client.js';
import { connect, type Supervisor } from '../src/zk/supervisor.js';
import { EVENT } from '../src/zk/watch-manager.js';
import {
  type FakeRequest,
  type FakeScript,
  type FakeZkServer,
  startFakeZkServer,
} from './helpers/fake-zk-server.js';
import { until } from './helpers/wait.js';

const servers: FakeZkServer[] = [];
const clients: ZkClient[] = [];
const sups: Supervisor[] = [];
after(async () => {
  for (const c of clients) c.connection.close();
  await Promise.all(sups.map((s) => s.stop()));
  await Promise.all(servers.map((s) => s.close()));
});

async function fake(script: FakeScript = {}): Promise<FakeZkServer> {
  const s = await startFakeZkServer(script);
  servers.push(s);
  return s;
}

async function client(server: FakeZkServer, opts: Parameters<typeof openClient>[1] = {}): Promise<ZkClient> {
  const c = await openClient(server.connectString, { spinDelay: 50, ...opts });
  clients.push(c);
  return c;
}

/** A script that keeps (does not answer) the requests for paths in `held`, and records them. */
function holding(held: Set<string>, kept: FakeRequest[]): FakeScript {
  return {
    onRequest(req) {
      if (req.path !== undefined && held.has(req.path)) {
        kept.push(req);
        return true;
      }
      return false;
    },
  };
}

test('a wall clock stepped back or forward changes nothing: pings go on, the connection and requests stay', async () => {
  const kept: FakeRequest[] = [];
  const server = await fake(holding(new Set(['/held']), kept));
  const c = await client(server, { sessionTimeout: 3000, requestTimeout: 60_000 });
  const conn = server.connections[0]!;
  const held = c.getData('/held');
  await until(() => kept.length === 1, 10_000, 'the held request to reach the server');
  const realNow = Date.now;
  try {
    // Back an hour: a client timing pings on the wall clock would stop pinging (the server would expire
    // the session).
    Date.now = () => realNow() - 3_600_000;
    const before = conn.pings;
    await until(() => conn.pings >= before + 2, 15_000, 'pings with the clock stepped back');
    // Forward two hours: a client timing its read timeout or its deadlines on the wall clock would drop
    // the connection or fail the held request at once.
    Date.now = () => realNow() + 7_200_000;
    const later = conn.pings;
    await until(() => conn.pings >= later + 2, 15_000, 'pings with the clock stepped forward');
  } finally {
    Date.now = realNow;
  }
  assert.equal(server.connections.length, 1, 'still the first connection');
  assert.ok(!conn.closed);
  conn.answer(kept[0]!.xid, 0, Buffer.concat([Buffer.from([0, 0, 0, 2, 104, 105]), Buffer.alloc(68)]));
  assert.equal((await held).data.toString(), 'hi', 'the request waited for its answer');
});

test("notifications alone do not keep a connection alive: a server that drops a dead session's pings is left at the read timeout", async () => {
  // What ZooKeeper does to a connection whose session another connection closed just after this one
  // resumed it: pings go unanswered, the notifications of its watches keep coming.
  const server = await fake({
    answerPings: false,
    handshake: (h) => (h.sessionId !== 0n ? 'expired' : undefined),
  });
  const c = await client(server, { sessionTimeout: 1500 });
  const conn = server.connections[0]!;
  const expired = new Promise<string>((resolve) => c.connection.once('expired', resolve));
  const chatter = setInterval(() => conn.notify(EVENT.childrenChanged, '/tasks'), 100);
  try {
    // The read timeout is 1 s (2/3 of 1.5 s): a client counting notifications as answers never gets there.
    await until(() => conn.closed, 10_000, 'the client to drop the connection whose pings go unanswered');
    assert.match(await expired, /expired/, 'the next connection learns the session is over');
  } finally {
    clearInterval(chatter);
  }
});

test('callbacks that throw are reported and disturb nothing: not the connection, not the other watchers', async () => {
  const kept: FakeRequest[] = [];
  const server = await fake(holding(new Set(['/in-flight']), kept));
  const c = await client(server, { requestTimeout: 60_000 });
  const errors: string[] = [];
  c.connection.on('callbackError', (_err: unknown, where: string) => errors.push(where));
  const seen: string[] = [];
  const boom = () => {
    throw new Error('boom');
  };
  await c.getData('/a', boom);
  await c.getData('/a', (e) => seen.push(`one-shot ${e.path}`));
  await c.addWatch('/', 'persistentRecursive', boom);
  await c.addWatch('/', 'persistentRecursive', (_t, p) => seen.push(`persistent ${p}`));
  assert.deepEqual(await c.getChildren('/c', undefined, boom), []);
  const inFlight = c.exists('/in-flight');
  await until(() => kept.length === 1, 10_000, 'a request in flight');
  const conn = server.connections[0]!;
  conn.notify(EVENT.dataChanged, '/a');
  await until(() => seen.length === 2, 10_000, 'both good callbacks to run');
  assert.deepEqual(seen.sort(), ['one-shot /a', 'persistent /a']);
  assert.deepEqual(errors.sort(), ['onAnswer callback', 'persistent watch listener', 'watch callback']);
  conn.answer(kept[0]!.xid, 0, Buffer.alloc(68));
  assert.ok(await inFlight, 'the request in flight was answered on the same connection');
  assert.equal(server.connections.length, 1);
  assert.ok(!conn.closed);
});

test("a supervisor's state listener that throws is reported; the session starts and the other listeners hear it", async () => {
  const server = await fake();
  const sup = connect({ connect: server.connectString, spinDelay: 50 });
  sups.push(sup);
  const states: string[] = [];
  const errors: unknown[] = [];
  sup.on('error', (e) => errors.push(e));
  sup.on('state', () => {
    throw new Error('a careless listener');
  });
  sup.on('state', (s: string) => states.push(s));
  const ready = await Promise.race([sup.ready, sleep(15_000).then(() => undefined)]);
  assert.ok(ready, 'the session was ready');
  assert.ok(states.includes('connected'), `states: ${states.join(',')}`);
  assert.ok(errors.some((e) => String(e).includes('a careless listener')));
  assert.equal(server.connections.length, 1, 'the connection was never dropped');
});

/** A connection whose xids start near the wrap, as ZooKeeper's own test of the rollover does. */
class NearWrap extends ZkConnection {
  constructor(servers: Array<{ host: string; port: number }>) {
    super(servers, '', { sessionTimeout: 10_000, spinDelay: 50, requestTimeout: 10_000 });
    this.xid = 0x7fffffff - 3;
  }
}

test('xids wrap before 2^31 - 1 to 1, as the reference clients do; no special xid is used', async () => {
  const server = await fake();
  const conn = new NearWrap([{ host: '127.0.0.1', port: server.port }]);
  const c = new ZkClient(conn);
  clients.push(c);
  conn.connect();
  await server.nextConnection();
  for (let i = 0; i < 5; i++) await c.exists(`/n${i}`);
  const xids = server.requests.filter((r) => r.type === OP.exists).map((r) => r.xid);
  assert.deepEqual(xids, [0x7fffffff - 2, 0x7fffffff - 1, 1, 2, 3]);
});

test('a bogus frame length drops the connection at once (negative, split across reads; or over the limit)', async () => {
  const kept: FakeRequest[] = [];
  const server = await fake(holding(new Set(['/x']), kept));
  const c = await client(server, { requestTimeout: 60_000, maxAnswerBytes: 4096 });
  const protocolErrors: unknown[] = [];
  c.connection.on('protocolError', (e: unknown) => protocolErrors.push(e));
  const first = server.connections[0]!;
  const p1 = c.exists('/x');
  await until(() => kept.length === 1, 10_000, 'the request to arrive');
  // -4, in two reads: a client that waits for the length to make sense would wait for ever.
  first.sendRaw(Buffer.from([0xff, 0xff]));
  await sleep(100);
  first.sendRaw(Buffer.from([0xff, 0xfc]));
  await assert.rejects(p1, (e: unknown) => isZkError(e, 'CONNECTION_LOSS'));
  assert.match(String(protocolErrors[0]), /frame length of -4/);
  const second = await server.nextConnection();
  // Over maxAnswerBytes: refused as soon as the length is in, not after buffering the frame.
  const p2 = c.exists('/x');
  await until(() => kept.length === 2, 10_000, 'the second request to arrive');
  const head = Buffer.alloc(4);
  head.writeInt32BE(5000);
  second.sendRaw(Buffer.concat([head, Buffer.alloc(100)]));
  await assert.rejects(p2, (e: unknown) => isZkError(e, 'CONNECTION_LOSS'));
  assert.match(String(protocolErrors[1]), /frame length of 5000/);
});

test('a watcher in two tables fires once; a plain persistent watch hears its own path only', async () => {
  const server = await fake();
  const c = await client(server);
  const conn = server.connections[0]!;
  const calls: string[] = [];
  const twice = (e: { type: number; path: string }) => calls.push(`one-shot ${e.type} ${e.path}`);
  await c.getData('/a', twice);
  await c.getChildren('/a', twice);
  conn.notify(EVENT.deleted, '/a');
  await c.addWatch('/p', 'persistent', (t, p) => calls.push(`plain ${t} ${p}`));
  const rec = (t: number, p: string) => calls.push(`recursive ${t} ${p}`);
  await c.addWatch('/p', 'persistentRecursive', rec);
  await c.addWatch('/', 'persistentRecursive', rec); // the same listener again, for an ancestor
  conn.notify(EVENT.created, '/p/c'); // a descendant: recursive only, and once
  conn.notify(EVENT.dataChanged, '/p'); // the path itself: both
  conn.notify(EVENT.childrenChanged, '/p'); // children changed: the plain watch only
  await c.exists('/sync'); // answered after the notifications: they have all been read
  assert.deepEqual(calls, [
    'one-shot 2 /a',
    'recursive 1 /p/c',
    'plain 3 /p',
    'recursive 3 /p',
    'plain 4 /p',
  ]);
});

test('on a reconnect, persistent watches are registered again with SetWatches2 (op 105), chroot and all', async () => {
  const server = await fake();
  const c = await client(server, {});
  const chrooted = createConnection(`${server.connectString}/farm`, {
    sessionTimeout: 10_000,
    spinDelay: 50,
    requestTimeout: 10_000,
  });
  const cc = new ZkClient(chrooted);
  clients.push(cc);
  chrooted.connect();
  const first = await server.nextConnection();
  await cc.addWatch('/tasks', 'persistentRecursive', () => {});
  await cc.addWatch('/master', 'persistent', () => {});
  await cc.getData('/one-shot', () => {});
  first.destroy();
  const second = await server.nextConnection();
  await cc.exists('/sync');
  const sw = second.requests.find((r) => r.type === OP.setWatches2);
  assert.ok(sw, `a SetWatches2 request (got ops ${second.requests.map((r) => r.type).join(',')})`);
  assert.equal(sw.xid, -8);
  const r = new Reader(sw.body);
  r.long(); // relative zxid
  const lists = [r.stringVector(), r.stringVector(), r.stringVector(), r.stringVector(), r.stringVector()];
  assert.deepEqual(lists, [['/farm/one-shot'], [], [], ['/farm/master'], ['/farm/tasks']]);
  // Only one-shot watches: the older SetWatches, which servers before 3.6 know too.
  await c.getData('/only-one-shot', () => {});
  server.connections[0]!.destroy();
  const third = await server.nextConnection();
  await c.exists('/sync');
  assert.ok(third.requests.some((q) => q.type === OP.setWatches));
  assert.ok(!third.requests.some((q) => q.type === OP.setWatches2));
});

test('a refusing server is retried with exponential backoff and jitter between rounds, not in a storm', async () => {
  let accepted = 0;
  const sockets: Socket[] = [];
  const refuser = createServer((s) => {
    accepted++;
    sockets.push(s);
    s.destroy();
  });
  await new Promise<void>((r) => refuser.listen(0, '127.0.0.1', r));
  const port = (refuser.address() as { port: number }).port;
  const conn = createConnection(`127.0.0.1:${port}`, {
    sessionTimeout: 9000,
    spinDelay: 100,
    requestTimeout: 1000,
  });
  const delays: number[] = [];
  conn.on('reconnectDelay', (ms: number) => delays.push(ms));
  conn.connect();
  try {
    await until(() => delays.length >= 6, 30_000, 'six rounds of attempts');
  } finally {
    conn.close();
    await new Promise((r) => refuser.close(r));
  }
  // Equal jitter over an exponential base from spinDelay, capped at min(2 s, a third of the timeout).
  const bases = [100, 200, 400, 800, 1600, 2000];
  bases.forEach((base, i) => {
    const d = delays[i]!;
    assert.ok(d >= base / 2 && d <= base, `delay ${i} = ${d} ms, expected ${base / 2}..${base}`);
  });
  assert.ok(new Set(delays).size > 1, 'jittered');
  // One server: one attempt per round, each after its delay.
  assert.ok(accepted <= delays.length + 1, `${accepted} attempts for ${delays.length} delays`);
});

test('a port over 65535 is refused when the connect string is checked, never from a timer', async () => {
  for (const bad of ['127.0.0.1:70000', '127.0.0.1:0', 'a:1,b:65536/x']) {
    assert.throws(
      () => connect({ connect: bad }),
      (e: unknown) => hasCode(e, 'ZKFARM_INVALID_ARGUMENT') && /port/.test(String(e)),
      bad,
    );
    assert.throws(
      () => openClient(bad),
      (e: unknown) => hasCode(e, 'ZKFARM_INVALID_ARGUMENT'),
      bad,
    );
  }
  assert.throws(
    () =>
      new ZkConnection([{ host: '127.0.0.1', port: 99_999 }], '', {
        sessionTimeout: 1,
        spinDelay: 1,
        requestTimeout: 1,
      }),
    (e: unknown) => hasCode(e, 'ZKFARM_INVALID_ARGUMENT'),
  );
});

const SRVR_35 =
  'Zookeeper version: 3.5.9-83df9301aa5c2a5d284a9940177808c01bc35cef, built on 01/06/2021 20:03 GMT\n' +
  'Latency min/avg/max: 0/0/0\nReceived: 1\nSent: 0\nConnections: 1\nOutstanding: 0\nZxid: 0x0\nMode: standalone\n';

test('a server older than 3.6 is refused at start with an error naming its version', async () => {
  const server = await fake({
    // What 3.5 does with an op it does not know: UNIMPLEMENTED, then it closes the connection.
    onRequest(req, conn) {
      if (req.type !== OP.multiRead && req.type !== OP.addWatch) return false;
      conn.answer(req.xid, -6);
      conn.socket.end();
      return true;
    },
    fourLetter: (cmd) => (cmd === 'srvr' ? SRVR_35 : undefined),
  });
  await assert.rejects(
    openClient(server.connectString, { spinDelay: 50 }),
    (e: unknown) =>
      hasCode(e, 'ZKFARM_ZK_VERSION_UNSUPPORTED') &&
      /version 3\.5\.9/.test(String(e)) &&
      /3\.6/.test(String(e)),
  );
  const sup = connect({ connect: server.connectString, spinDelay: 50 }, () => {
    throw new Error('the action must not run on a 3.5 server');
  });
  sups.push(sup);
  await assert.rejects(
    sup.done,
    (e: unknown) => hasCode(e, 'ZKFARM_ZK_VERSION_UNSUPPORTED') && /3\.5\.9/.test(String(e)),
  );
});
