/**
 * The session supervisor against a real ZooKeeper: the action re-runs on a new session only, the state
 * model, the three modes, watches that report exact diffs and survive sessions, and an ensemble failover.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, createServer, connect as netConnect, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { hasCode, hasCode as hasErrCode } from '../src/errors.js';
import {
  type ChildrenChange,
  connect,
  fourLetterWord,
  type Session,
  type SessionState,
  type Supervisor,
  startZkEnsemble,
} from '../src/zk/index.js';
import {
  expireSession,
  type FaultProxy,
  killSession,
  proxyConnectString,
  startFaultProxy,
} from './helpers/faults.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const sups: Supervisor[] = [];
const proxies: FaultProxy[] = [];
after(async () => {
  await Promise.all(sups.map((s) => s.stop()));
  await Promise.all(proxies.map((p) => p.close()));
});

const warnings: string[] = [];
/** Keeps the supervisor's warnings (why a session was lost) for failure messages. */
const recorder = {
  debug() {},
  info() {},
  warn(obj: object, msg?: string) {
    warnings.push(`${msg ?? ''} ${JSON.stringify(obj)}`);
  },
  error() {},
};

function track(sup: Supervisor): { states: SessionState[]; sup: Supervisor } {
  sups.push(sup);
  const states: SessionState[] = [];
  sup.on('state', (s: SessionState) => states.push(s));
  return { states, sup };
}

test('a server restart within the session timeout keeps the session: no re-run, ephemeral and watch survive', async () => {
  const root = await zk.chroot('restart');
  let runs = 0;
  const { sup, states } = track(
    connect({ connect: root, sessionTimeout: 30_000, logger: recorder }, async (s) => {
      runs++;
      await s.client.createEphemeral('/alive', 'x');
    }),
  );
  const session = await sup.ready;
  const id = session.id;
  const seen: ChildrenChange[] = [];
  session.watchChildren('/', (ch) => {
    seen.push(ch);
  });
  await until(() => seen.length === 1, 5000, 'first listing');

  await zk.server.kill();
  await until(() => sup.state === 'suspended', 5000, 'suspended');
  await zk.server.restart();
  await until(() => sup.state === 'reconnected', 60_000, 'reconnected').catch((err) => {
    throw new Error(
      `${(err as Error).message}; states so far: ${states.join(' → ')}; warnings: ${warnings.join(' | ')}`,
    );
  });

  assert.equal(runs, 1, 'a reconnect within the session does not re-run the action');
  assert.equal(sup.session?.id, id, 'same session');
  assert.ok(await sup.session!.client.exists('/alive'), 'ephemeral node kept');
  // The watch is still armed after the reconnect.
  const raw = await zk.rawClient(root);
  await raw.create('/after-restart');
  await until(() => seen.some((c) => c.added.includes('after-restart')), 10_000, 'watch after restart');
  assert.deepEqual(states.slice(0, 3), ['connected', 'suspended', 'reconnected']);
});

test('a real expiry re-runs the action on a new session and re-creates its ephemeral node', async () => {
  const root = await zk.chroot('expiry');
  const sessions: string[] = [];
  const { sup, states } = track(
    connect({ connect: root, sessionTimeout: 4000 }, async (s) => {
      sessions.push(s.id);
      await s.client.createEphemeral('/me', s.id);
    }),
  );
  const first = await sup.ready;
  await first.client.getData('/me');
  await expireSession(sup);
  // The new session is checked (server version, chroot) before the action runs on it.
  await until(
    async () =>
      sessions.length >= 2 && (await sup.session?.client.exists('/me'))?.ephemeralOwner === sessions[1],
    10_000,
    'the action on the new session',
  );
  assert.equal(sessions.length, 2, 'the action ran again, once');
  assert.notEqual(sessions[0], sessions[1]);
  assert.equal(first.alive, false, 'the old session is marked lost');
  assert.ok(first.signal.aborted);
  await assert.rejects(first.client.exists('/'), (e: unknown) => hasErrCode(e, 'ZKFARM_SESSION_LOST'));
  const me = await sup.session!.client.getData('/me');
  assert.equal(me.data.toString(), sessions[1], 'the ephemeral node belongs to the new session');
  // The old session is really gone on the server: its ephemeral owner is the new session.
  const stat = await sup.session!.client.exists('/me');
  assert.equal(stat!.ephemeralOwner, sessions[1]);
  assert.ok(states.includes('lost'), `states: ${states.join(',')}`);
  assert.equal(states.at(-1), 'connected');
});

test("'completed' mode: the action's result ends the supervisor and closes the session at once", async () => {
  const root = await zk.chroot('completed');
  const sup = connect({ connect: root, sessionTimeout: 10_000 }, async (s) => {
    await s.client.createEphemeral('/short', '');
    return 'completed';
  });
  sups.push(sup);
  await sup.done;
  assert.equal(sup.state, 'closed');
  const raw = await zk.rawClient(root);
  assert.equal(
    await raw.exists('/short'),
    null,
    'closing the session removed its ephemeral node now, not after the timeout',
  );
});

test('pass-through mode: the caller gets the live session while watches keep running; stop() ends it', async () => {
  const root = await zk.chroot('passthrough');
  const ac = new AbortController();
  const sup = connect({ connect: root, signal: ac.signal }, async (s) => {
    await s.client.ensurePath('/jobs');
  });
  sups.push(sup);
  const session = await sup.ready;
  const seen: string[] = [];
  sup.watchChildren('/jobs', (ch) => {
    seen.push(...ch.added);
  });
  await session.client.create('/jobs/a');
  await until(() => seen.includes('a'), 5000, 'watch');
  ac.abort();
  await sup.done;
  assert.equal(sup.state, 'closed');
  assert.equal(session.alive, false);
});

test('watchChildren reports exact diffs under a burst of 1,000 creates and 500 deletes', async () => {
  const root = await zk.chroot('burst');
  const sup = connect({ connect: root });
  sups.push(sup);
  const { client } = await sup.ready;
  await client.ensurePath('/q');
  const mirror = new Set<string>();
  const problems: string[] = [];
  let reports = 0;
  const w = sup.watchChildren('/q', (ch) => {
    reports++;
    for (const a of ch.added) {
      if (mirror.has(a)) problems.push(`added twice: ${a}`);
      mirror.add(a);
    }
    for (const r of ch.removed) {
      if (!mirror.delete(r)) problems.push(`removed unknown: ${r}`);
    }
    if (mirror.size !== ch.children.length || ch.children.some((c) => !mirror.has(c)))
      problems.push('diff != listing');
  });
  await w.ready;
  const names = Array.from({ length: 1000 }, (_, i) => `n${String(i).padStart(4, '0')}`);
  await Promise.all(names.map((n) => client.create(`/q/${n}`)));
  await Promise.all(names.filter((_, i) => i % 2 === 0).map((n) => client.remove(`/q/${n}`)));
  const expected = new Set(names.filter((_, i) => i % 2 === 1));
  await until(
    () => mirror.size === expected.size && [...expected].every((n) => mirror.has(n)),
    20_000,
    'final state',
  );
  assert.deepEqual(problems, []);
  assert.ok(reports >= 2, 'several notifications were coalesced into reports');
  w.close();
});

/** Follows a watch's reports and checks each against the one before (no double adds, no unknown removes). */
function mirrorOf() {
  const mirror = new Set<string>();
  const problems: string[] = [];
  let reports = 0;
  const onChange = (ch: ChildrenChange) => {
    reports++;
    for (const a of ch.added) {
      if (mirror.has(a)) problems.push(`added twice: ${a}`);
      mirror.add(a);
    }
    for (const r of ch.removed) if (!mirror.delete(r)) problems.push(`removed unknown: ${r}`);
    if (mirror.size !== ch.children.length || ch.children.some((c) => !mirror.has(c)))
      problems.push('diff != children');
  };
  return { mirror, problems, onChange, reports: () => reports };
}

test('a persistent children watch reports a burst exactly, with no listing after the first', async () => {
  const root = await zk.chroot('persistent-burst');
  const sup = connect({ connect: root });
  sups.push(sup);
  const { client } = await sup.ready;
  await client.ensurePath('/q');
  await client.create('/q/before');
  const m = mirrorOf();
  const before = client.requests;
  const w = sup.watchChildren('/q', m.onChange, { persistent: true });
  await w.ready;
  assert.deepEqual([...m.mirror], ['before']);
  assert.equal(client.requests - before, 2, 'one addWatch and one listing');
  const names = Array.from({ length: 1000 }, (_, i) => `n${String(i).padStart(4, '0')}`);
  await Promise.all(names.map((n) => client.create(`/q/${n}`)));
  // Grandchildren and data changes are not children changes.
  await client.create('/q/n0001/deeper');
  await client.setData('/q/n0003', 'x');
  await Promise.all(names.filter((_, i) => i % 2 === 0).map((n) => client.remove(`/q/${n}`)));
  await client.remove('/q/before');
  const expected = new Set(names.filter((_, i) => i % 2 === 1));
  await until(
    () => m.mirror.size === expected.size && [...expected].every((n) => m.mirror.has(n)),
    20_000,
    'final state',
  );
  assert.deepEqual(m.problems, []);
  assert.deepEqual([...w.children].sort(), [...expected].sort());
  const sent = client.requests - before - 2;
  assert.equal(sent, 1000 + 1 + 1 + 500 + 1, 'only our own writes were sent: the watch never re-listed');
  w.close();
});

/** A supervisor connected through a fault proxy of its own. */
async function throughProxy(root: string, sessionTimeout: number, action?: (s: Session) => Promise<void>) {
  const proxy = await startFaultProxy({ target: root });
  proxies.push(proxy);
  const sup = connect({ connect: proxyConnectString(proxy, root), sessionTimeout }, action);
  sups.push(sup);
  return { sup, proxy };
}

/** A persistent watch on /q through a fault proxy, and a second session that writes under /q. */
async function persistentWatchWithWriter(name: string, sessionTimeout: number) {
  const root = await zk.chroot(name);
  const { sup, proxy } = await throughProxy(root, sessionTimeout);
  sups.push(sup);
  const { client } = await sup.ready;
  await client.ensurePath('/q');
  const other = connect({ connect: root });
  sups.push(other);
  const writer = (await other.ready).client;
  const m = mirrorOf();
  const w = sup.watchChildren('/q', m.onChange, { persistent: true });
  await w.ready;
  return { sup, proxy, writer, m, w };
}

test('a persistent children watch survives a dropped connection: re-added, re-listed, nothing missed', async () => {
  const { sup, proxy, writer, m, w } = await persistentWatchWithWriter('persistent-reconnect', 6000);
  await writer.create('/q/a');
  await until(() => m.mirror.has('a'), 10_000, 'a reported');
  // Cut our connection (shorter than the session timeout): changes meanwhile reach no watch.
  proxy.cut(1500);
  await sup.waitFor('suspended', 10_000);
  await writer.create('/q/while-away');
  await writer.remove('/q/a');
  await sup.waitFor('reconnected', 20_000);
  await until(() => m.mirror.has('while-away') && !m.mirror.has('a'), 10_000, 'the re-listing');
  // And the watch is armed again.
  await writer.create('/q/after');
  await until(() => m.mirror.has('after'), 10_000, 'a change after the reconnect');
  assert.equal(sup.sessionCount, 1, 'the same session throughout');
  assert.deepEqual(m.problems, []);
  w.close();
});

test('a persistent children watch moves to a new session after expiry and reports the difference', async () => {
  const { sup, writer, m, w } = await persistentWatchWithWriter('persistent-expiry', 4000);
  await writer.create('/q/old');
  await until(() => m.mirror.has('old'), 10_000, 'old reported');
  const expiry = expireSession(sup);
  await writer.create('/q/new');
  await writer.remove('/q/old');
  await expiry;
  await until(() => m.mirror.has('new') && !m.mirror.has('old'), 10_000, 'the new session re-listed');
  await writer.create('/q/later');
  await until(() => m.mirror.has('later'), 10_000, 'the new session watches');
  assert.deepEqual(m.problems, []);
  w.close();
});

test('watchChildren waits for a node that does not exist yet; watchData reports create, change, delete', async () => {
  const root = await zk.chroot('later');
  const sup = connect({ connect: root });
  sups.push(sup);
  const { client } = await sup.ready;
  const kids: ChildrenChange[] = [];
  const datas: Array<string | null> = [];
  sup.watchChildren('/later', (ch) => {
    kids.push(ch);
  });
  const dw = sup.watchData('/later', (d) => {
    datas.push(d.data === null ? null : d.data.toString());
  });
  await dw.ready;
  await client.create('/later', 'v1');
  await client.create('/later/c1');
  await until(() => kids.some((k) => k.added.includes('c1')), 5000, 'child after create');
  await client.setData('/later', 'v2');
  await until(() => datas.includes('v2'), 5000, 'data change');
  await client.removeRecursive('/later');
  await until(() => datas.at(-1) === null, 5000, 'delete');
  assert.deepEqual(datas, [null, 'v1', 'v2', null]);
  assert.ok(
    kids.some((k) => k.removed.includes('c1')),
    'children reported removed when the node went',
  );
});

test('a supervisor watch re-lists on a new session and reports what changed while the session was gone', async () => {
  const root = await zk.chroot('relist');
  const { sup, proxy } = await throughProxy(root, 4000, async (s) => {
    await s.client.ensurePath('/box');
  });
  const { connection } = (await sup.ready).client;
  const changes: ChildrenChange[] = [];
  const w = sup.watchChildren('/box', (ch) => {
    changes.push(ch);
  });
  await w.ready;
  const raw = await zk.rawClient(root);
  const mk = (p: string) => raw.create(p);
  await mk('/box/before');
  await until(() => changes.some((c) => c.added.includes('before')), 5000, 'before');
  // Away while its session is ended on the server and the box changes; then back, on a new session.
  proxy.cut();
  await until(() => sup.state === 'suspended' || sup.state === 'lost', 5000, 'cut');
  await killSession(root, connection.sessionId, connection.sessionPassword);
  await mk('/box/during');
  await raw.remove('/box/before');
  proxy.restore();
  await sup.waitFor('connected', 30_000);
  await until(() => changes.some((c) => c.added.includes('during')), 10_000, 'during');
  const last = changes.find((c) => c.added.includes('during'))!;
  assert.deepEqual(last.removed, ['before']);
  assert.deepEqual(last.children, ['during']);
});

test('options are checked; an unreachable server fails after connectTimeout with a clear error', async () => {
  assert.throws(
    () => connect({ connect: '' }),
    (e: unknown) => hasCode(e, 'ZKFARM_INVALID_ARGUMENT'),
  );
  assert.throws(() => connect({ connect: 'localhost' }), /host:port/);
  assert.throws(() => connect({ connect: '127.0.0.1:2181', sessionTimeout: -1 }), /sessionTimeout/);
  const sup = connect({ connect: '127.0.0.1:1', connectTimeout: 800 });
  sups.push(sup);
  await assert.rejects(
    sup.done,
    (e: unknown) => hasCode(e, 'ZKFARM_ZK_UNREACHABLE') && /127\.0\.0\.1:1/.test(String(e)),
  );
  await assert.rejects(sup.ready);
});

test('a server that takes the connection but never answers the handshake is left for another attempt', async () => {
  // The first connection is accepted and then ignored (a server starting up on a loaded machine, a peer
  // behind a split); later ones reach the real server. The library alone would wait on the first forever.
  const silent: Socket[] = [];
  const open: Socket[] = [];
  const relay = createServer((socket) => {
    open.push(socket);
    if (silent.length === 0) {
      silent.push(socket);
      socket.on('error', () => {});
      socket.resume(); // read and drop the handshake, answer nothing
      return;
    }
    const upstream = netConnect(zk.server.port, '127.0.0.1');
    open.push(upstream);
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const port = (relay.address() as AddressInfo).port;
  try {
    // One server: the handshake deadline is a third of the session timeout (2 s), so the client tries again
    // well within its own 5 s connect timeout (the session timeout, 6 s, would be past it).
    const sup = connect({ connect: `127.0.0.1:${port}`, sessionTimeout: 6000, connectTimeout: 5000 });
    sups.push(sup);
    const session = await sup.ready;
    assert.equal(silent.length, 1);
    await until(() => silent[0]!.readableEnded, 10_000, 'the client to close the silent connection');
    assert.ok(Array.isArray(await session.client.getChildren('/')));
    await sup.stop();
  } finally {
    for (const s of open) s.destroy();
    await new Promise((r) => relay.close(r));
  }
});

test('an action that throws is retried on the same session; a fatal error stops the supervisor', async () => {
  const root = await zk.chroot('retry');
  let calls = 0;
  const sup = connect({ connect: root, retryDelay: 20 }, async () => {
    calls++;
    if (calls < 3) throw new Error('not yet');
  });
  sups.push(sup);
  const errors: unknown[] = [];
  sup.on('error', (e) => errors.push(e));
  await sup.ready;
  assert.equal(calls, 3);
  assert.equal(errors.length, 2);
  assert.equal(sup.sessionCount, 1);

  const { fatal } = await import('../src/zk/index.js');
  const sup2 = connect({ connect: root }, async () => {
    throw fatal(new Error('cannot go on'));
  });
  sups.push(sup2);
  await assert.rejects(sup2.done, /cannot go on/);
  assert.equal(sup2.state, 'closed');
});

test('ensemble: killing the member a session is connected to moves the session, which carries on', async () => {
  const ens = await startZkEnsemble({ size: 3, tickTime: 500 });
  after(() => ens.stop());
  let runs = 0;
  const { sup } = track(
    connect({ connect: ens.connectString, sessionTimeout: 8000 }, async (s) => {
      runs++;
      await s.client.createEphemeral('/here', '');
    }),
  );
  const session = await sup.ready;
  const id = session.id;
  // Find the member serving our session: its `cons` lists our session id.
  let serving: number | undefined;
  for (const m of ens.members) {
    const cons = await fourLetterWord(m.host, m.port, 'cons');
    if (cons.includes(`sid=0x${id.replace(/^0+/, '')}`)) serving = m.id;
  }
  assert.ok(serving, 'found the member serving the session');
  await ens.killMember(serving);
  await until(() => sup.state === 'reconnected', 30_000, 'reconnected to another member');
  assert.equal(sup.session?.id, id, 'same session');
  assert.equal(runs, 1);
  assert.ok(await sup.session!.client.exists('/here'), 'ephemeral node still there');
  await sup.session!.client.create('/written-after', '');
  assert.ok(await sup.session!.client.exists('/written-after'));
});

test("a session lets go of a watch closed before it ends (the leader's watch on each departed worker)", async () => {
  const root = await zk.chroot('let-go');
  const sup = connect({ connect: root });
  sups.push(sup);
  const session = await sup.ready;
  await session.client.create('/w');
  const baseline = session.openWatches;
  const watches = [];
  for (let i = 0; i < 5; i++) watches.push(session.watchData(`/w/worker-${i}`, () => {}));
  watches.push(session.watchChildren('/w', () => {}, { persistent: true }));
  watches.push(session.watchChildren('/w', () => {}));
  await Promise.all(watches.map((w) => w.ready));
  assert.equal(session.openWatches, baseline + 7);
  for (const w of watches) w.close();
  assert.equal(session.openWatches, baseline, 'closed watches are not held until the session ends');
  // One still open ends with the session, as before.
  const open = session.watchData('/w', () => {});
  await open.ready;
  assert.equal(session.openWatches, baseline + 1);
  await sup.stop();
  assert.ok(open.closed, 'a watch open at the end of the session is closed with it');
  assert.equal(session.openWatches, 0);
});
