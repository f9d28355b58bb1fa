/**
 * TLS to a real TLS-only ZooKeeper (Debian's 3.8 on its Netty secureClientPort, client certificates
 * required), with certificates made by the test: sessions and a farm over TLS, and every way of getting
 * it wrong refused at once with ZKFARM_ZK_TLS and a message that says what to check.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hasCode } from '../src/errors.js';
import { Master, Submitter, Worker } from '../src/farm/index.js';
import {
  type ConnectOptions,
  connect,
  openClient,
  prepareTls,
  type Supervisor,
  startZkServer,
  type ZkTlsOptions,
} from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { useTestCertificates } from './helpers/tls.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const certs = useTestCertificates();
const zk = useZooKeeper(
  async () => ({ tls: (await certs.ready()).serverTls }),
  () => certs.clientTls,
);
const cleanups = useCleanups();

/** A supervisor that is stopped after the file. */
function supervise(options: ConnectOptions, action?: Parameters<typeof connect>[1]): Supervisor {
  const sup = connect(options, action);
  cleanups.push(() => sup.stop());
  return sup;
}

/** The error a client with these TLS options gets, or 'connected'. Bounded: a retry loop fails the test. */
async function refusal(connectString: string, tls: ZkTlsOptions | undefined): Promise<Error | 'connected'> {
  try {
    const c = await openClient(connectString, { tls, timeoutMs: 20_000 });
    c.connection.close();
    return 'connected';
  } catch (err) {
    return err as Error;
  }
}

function assertTlsError(err: Error | 'connected', mentions: RegExp): void {
  assert.notEqual(err, 'connected', 'the client must be refused');
  assert.ok(hasCode(err, 'ZKFARM_ZK_TLS'), `expected ZKFARM_ZK_TLS, got ${String(err)}`);
  assert.match((err as Error).message, mentions);
}

test('the launcher serves TLS only: no plaintext port, four-letter words answered over TLS', async () => {
  const server = zk.server;
  assert.equal(server.tls, true);
  const settings = server.config.settings;
  assert.equal(settings['clientPort'], undefined, 'no plaintext clientPort');
  assert.equal(settings['secureClientPort'], String(server.port));
  assert.equal(settings['ssl.clientAuth'], 'need');
  assert.equal(await server.fourLetter('ruok'), 'imok');
  assert.match(await server.fourLetter('conf'), /clientPort=-1/);
});

test('a session over TLS: create, read, watch, multi, and its ephemeral node goes at close', async () => {
  const root = await zk.chroot('session');
  const c = await zk.rawClient(root);
  await c.create('/a', 'over tls');
  assert.equal((await c.getData('/a')).data.toString(), 'over tls');
  let fired = false;
  await c.getData('/a', () => {
    fired = true;
  });
  await c.transaction().create('/b', 'x').setData('/a', 'changed').commit();
  await until(() => fired, 10_000, 'the data watch to fire over TLS');
  assert.deepEqual((await c.getChildren('/')).sort(), ['a', 'b']);

  const sup = supervise({ connect: root, tls: certs.clientTls }, async (s) => {
    await s.client.createEphemeral('/alive', 'yes');
  });
  await sup.ready;
  assert.ok(await c.exists('/alive'));
  await sup.stop();
  assert.equal(await c.exists('/alive'), null, 'closed at once: the close went over TLS');
});

test('a session over TLS is resumed on a new TLS connection after a server restart', async () => {
  const root = await zk.chroot('resume');
  let runs = 0;
  const sup = supervise({ connect: root, tls: certs.clientTls, sessionTimeout: 30_000 }, async (s) => {
    runs++;
    await s.client.createEphemeral('/alive', 'x');
  });
  const session = await sup.ready;
  await zk.server.restart();
  await sup.waitFor('reconnected', 30_000);
  assert.equal(sup.session?.id, session.id, 'the same session');
  assert.equal(runs, 1, 'the action is not re-run on a resumed session');
  assert.ok(await sup.session!.client.exists('/alive'));
});

test('a task goes through a farm over TLS: master, worker and submitter each on a TLS session', async () => {
  const root = await zk.chroot('farm');
  const tls = certs.clientTls;
  const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-tls-'));
  cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
  const m = new Master({ name: 'm1', connect: root, tls, sessionTimeout: 4000 });
  cleanups.push(() => m.stop());
  const w = new Worker({ name: 'w1', connect: root, tls, sessionTimeout: 4000, workdir, capacity: 2 });
  cleanups.push(() => w.stop({ drain: false }));
  await Promise.all([m.start(), w.start()]);
  const sub = await Submitter.open({ connect: root, tls, sessionTimeout: 10_000 });
  cleanups.push(() => sub.close());
  const ids = await sub.submitMany([1, 2, 3].map((i) => ({ handler: 'echo', input: { i } })));
  const results = await sub.waitForAll(ids, { timeoutMs: 60_000 });
  assert.deepEqual(
    results.map((r) => [r.state, r.result]),
    [1, 2, 3].map((i) => ['succeeded', { i }]),
  );
});

test('a wrong CA is refused at once with ZKFARM_ZK_TLS that names the CA to check', async () => {
  const root = await zk.chroot('wrong-ca');
  const tls = { ...certs.clientTls, ca: certs.otherCa.cert };
  assertTlsError(await refusal(root, tls), /not signed by the CA given.*--zk-ca/);
  // A supervisor (what every role runs) stops too, instead of retrying for ever.
  const sup = supervise({ connect: root, tls, connectTimeout: 20_000 });
  await assert.rejects(
    sup.done,
    (err: Error) => hasCode(err, 'ZKFARM_ZK_TLS') && /--zk-ca/.test(err.message),
  );
});

test('a wrong server name is refused; the name in the connect string or --zk-servername is what is checked', async () => {
  const root = await zk.chroot('name');
  const port = zk.server.port;
  const path = root.slice(root.indexOf('/'));
  assertTlsError(
    await refusal(root, { ...certs.clientTls, servername: 'zk.example.com' }),
    /not for "zk\.example\.com".*--zk-servername/,
  );
  // The certificate names 127.0.0.1 and localhost: either, by connect string or override, is accepted.
  assert.equal(await refusal(`localhost:${port}${path}`, certs.clientTls), 'connected');
  assert.equal(await refusal(root, { ...certs.clientTls, servername: 'localhost' }), 'connected');
});

test('a plaintext client against the TLS-only port is refused, told to use TLS', async () => {
  const root = await zk.chroot('plain-client');
  assertTlsError(await refusal(root, undefined), /speaks TLS.*--zk-tls/);
  const sup = supervise({ connect: root, connectTimeout: 20_000 });
  await assert.rejects(sup.done, (err: Error) => hasCode(err, 'ZKFARM_ZK_TLS'));
});

test('a client without a certificate, or with one from another CA, is refused by the server', async () => {
  const root = await zk.chroot('client-cert');
  assertTlsError(await refusal(root, { ca: certs.ca.cert }), /refused the TLS handshake.*--zk-cert/);
  assertTlsError(
    await refusal(root, { ca: certs.ca.cert, cert: certs.otherClient.cert, key: certs.otherClient.key }),
    /refused the TLS handshake/,
  );
});

test('a TLS client against a plaintext ZooKeeper is refused, told it is not a TLS port', async () => {
  const plain = await startZkServer();
  cleanups.push(() => plain.stop());
  assertTlsError(await refusal(plain.connectString, certs.clientTls), /TLS handshake.*secureClientPort/);
  // ...and the plaintext server is untouched by it.
  const c = await openClient(plain.connectString);
  cleanups.push(() => c.connection.close());
  await c.create('/still-fine');
});

test('TLS options that cannot work are refused before anything connects', async () => {
  const bad: Array<[string, ZkTlsOptions, RegExp]> = [
    ['no CA', { ca: '' }, /tls\.ca/],
    ['a CA that is no certificate', { ca: certs.ca.key }, /no PEM certificate/],
    ['a certificate without its key', { ca: certs.ca.cert, cert: certs.client.cert }, /go together/],
    [
      "another certificate's key",
      { ca: certs.ca.cert, cert: certs.client.cert, key: certs.server.key },
      /not the private key/,
    ],
    ['a servername with a space', { ca: certs.ca.cert, servername: 'a b' }, /servername/],
  ];
  for (const [what, tls, message] of bad) {
    assert.throws(
      () => prepareTls(tls),
      (err: Error) => hasCode(err, 'ZKFARM_ZK_TLS') && message.test(err.message),
      what,
    );
    // The supervisor every role runs checks them when it is made, before it connects.
    assert.throws(
      () => connect({ connect: zk.server.connectString, tls }),
      (err: Error) => hasCode(err, 'ZKFARM_ZK_TLS'),
      what,
    );
  }
});
