/**
 * zkfarm/testing against a real ZooKeeper: session expiry the way Kazoo's harness does it (a second
 * connection on the same session id and password, closed), which this project's own client makes
 * deterministic; and a host's role threads, which run from sources only through the testing entry.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { hasCode } from '../src/errors.js';
import { Host } from '../src/host/index.js';
import { connect, type Supervisor } from '../src/zk/index.js';
import {
  expireSession,
  killSession,
  proxyConnectString,
  startFaultProxy,
  waitForNewSession,
} from './helpers/faults.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const sups: Supervisor[] = [];
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-testing-test-'));
after(async () => {
  await Promise.all(sups.map((s) => s.stop()));
  rmSync(workdir, { recursive: true, force: true });
});

test('expireSession 20 times in a row: each time the server ends the session, and the supervisor runs on a new one', async () => {
  const root = await zk.chroot('expire-20');
  const sessions: string[] = [];
  // A long session timeout: nothing here waits for one to pass.
  const sup = connect({ connect: root, sessionTimeout: 30_000 }, async (s) => {
    sessions.push(s.id);
    await s.client.createEphemeral('/me', s.id);
  });
  sups.push(sup);
  await sup.ready;
  const raw = await zk.rawClient(root);
  for (let i = 1; i <= 20; i++) {
    const old = sup.session!;
    await expireSession(sup);
    assert.equal(old.alive, false, `round ${i}: the old session is marked lost`);
    assert.equal(sup.sessionCount, i + 1, `round ${i}: exactly one new session`);
    const current = sup.session!.id;
    assert.notEqual(current, old.id);
    // The server ended the old session: its ephemeral node went, the new session's took its place.
    await until(
      async () => (await raw.exists('/me'))?.ephemeralOwner === current,
      10_000,
      `round ${i}: /me owned by the new session`,
    );
  }
  assert.equal(new Set(sessions).size, 21, 'the action ran once per session, on 21 sessions');
});

test('a new session whose connection dropped and came back counts as the new session expireSession waits for', async () => {
  const root = await zk.chroot('expire-blip');
  const proxy = await startFaultProxy({ target: root });
  const sup = connect({ connect: proxyConnectString(proxy, root), sessionTimeout: 30_000 }, () => undefined);
  sups.push(sup);
  try {
    await sup.ready;
    const before = sup.sessionCount;
    const { connection } = sup.session!.client;
    await killSession(root, connection.sessionId, connection.sessionPassword);
    await until(async () => sup.sessionCount > before && sup.state === 'connected', 15_000, 'a new session');
    // The race seen in CI: the new session's connection drops and is resumed before anyone looks.
    proxy.cut(200);
    await until(
      async () => sup.state === 'reconnected',
      15_000,
      'the new session resumed on a new connection',
    );
    await waitForNewSession(sup, before, 5000);
    assert.equal(sup.sessionCount, before + 1);
  } finally {
    await sup.stop();
    await proxy.close();
  }
});

test('killSession ends a session another client holds: its ephemeral nodes go, and that client learns it expired', async () => {
  const root = await zk.chroot('kill');
  const victim = await zk.rawClient(root, { sessionTimeout: 30_000 });
  await victim.createEphemeral('/held', 'x');
  const observer = await zk.rawClient(root);
  const expired = new Promise<void>((resolve) => victim.connection.once('expired', () => resolve()));
  await killSession(root, victim.connection.sessionId, victim.connection.sessionPassword);
  await until(async () => (await observer.exists('/held')) === null, 10_000, '/held to go');
  await expired;
  await assert.rejects(victim.exists('/'), /SESSION_EXPIRED|expired/i);
});

test('a host does not start role threads from TypeScript sources on its own: the error says what to pass', async () => {
  const root = await zk.chroot('no-spawn');
  await assert.rejects(
    Host.start({ connect: root, workdir, roles: [{ kind: 'worker', name: 'w1' }] }),
    (e: unknown) => hasCode(e, 'ZKFARM_INVALID_ARGUMENT') && /sourceThreads/.test((e as Error).message),
  );
});
