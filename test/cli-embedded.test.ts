/**
 * The embedded ZooKeeper of `runtime`, in-process: port 2181 when free else another, the discovery
 * file and the data dir lock (written while it runs, removed on stop), one runtime per workdir, and
 * TLS-only with certificates of its own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ErrorCodes, hasCode } from '../src/errors.js';
import { discoverConnect, discoveryFilePath, embeddedJavaPid } from '../src/host/discovery.js';
import { startEmbeddedZooKeeper } from '../src/host/embedded.js';
import { openClient, readTlsFiles } from '../src/zk/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-embedded-test-'));
const env = { XDG_RUNTIME_DIR: join(tmp, 'xdg') };
after(() => rmSync(tmp, { recursive: true, force: true }));

function hold(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

test('runs on another port when 2181 is taken; publishes and withdraws its discovery file; ZKFARM_ZK_JAVA_OPTS reaches its JVM, its collector in place of ours', async () => {
  const held = await hold(2181); // undefined: someone else holds it, which serves as well
  const workdir = join(tmp, 'a');
  // The planned heap is at least 512 MiB: a smaller -Xmx from the environment must win. A collector
  // named there replaces ours (a JVM given two refuses to start).
  const zk = await startEmbeddedZooKeeper({
    workdir,
    env: { ...env, ZKFARM_ZK_JAVA_OPTS: ' -Xmx300m -XX:+UseParallelGC ' },
  });
  try {
    const javaPid = embeddedJavaPid(workdir);
    const cmdline = readFileSync(`/proc/${javaPid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmdline.includes('-XX:+UseParallelGC'), cmdline.join(' '));
    assert.ok(!cmdline.includes('-XX:+UseSerialGC') && !cmdline.includes('-Xmn32m'), cmdline.join(' '));
    assert.notEqual(zk.port, 2181);
    assert.equal(zk.connect, `127.0.0.1:${zk.port}`);
    assert.equal(zk.dataDir, join(workdir, 'zookeeper'));
    assert.equal(zk.server.dataDir, zk.dataDir);
    const found = JSON.parse(readFileSync(discoveryFilePath(env), 'utf8'));
    assert.deepEqual(
      { connect: found.connect, pid: found.pid, workdir: found.workdir },
      { connect: zk.connect, pid: process.pid, workdir },
    );
    assert.deepEqual(discoverConnect(undefined, env), { connect: zk.connect, source: 'embedded' });
    assert.equal(await zk.server.fourLetter('ruok'), 'imok');
    const maxMb = Number(/os\.memory\.max=(\d+)MB/.exec(await zk.server.fourLetter('envi'))?.[1]);
    assert.ok(
      maxMb > 250 && maxMb <= 300,
      `the server's heap follows ZKFARM_ZK_JAVA_OPTS' -Xmx300m: ${maxMb} MB`,
    );
  } finally {
    await zk.stop();
    await new Promise((r) => (held ? held.close(r) : r(undefined)));
  }
  assert.equal(existsSync(discoveryFilePath(env)), false);
  assert.equal(existsSync(join(workdir, 'zookeeper', 'runtime.lock')), false);
  assert.ok(existsSync(join(workdir, 'zookeeper', 'version-2')), 'data is kept');
  assert.equal(discoverConnect(undefined, env).source, 'default');
});

test('a second start on the same workdir is refused while the first runs', async () => {
  const workdir = join(tmp, 'b');
  const zk = await startEmbeddedZooKeeper({ workdir, env });
  try {
    await assert.rejects(startEmbeddedZooKeeper({ workdir, env }), (err: Error) => {
      assert.ok(hasCode(err, ErrorCodes.ZK_SERVER_FAILED));
      assert.match(
        err.message,
        new RegExp(
          `the workdir ${workdir} is in use by another runtime \\(pid ${process.pid}, ZooKeeper at ${zk.connect}\\)`,
        ),
      );
      return true;
    });
    assert.equal(await zk.server.fourLetter('ruok'), 'imok', 'the first one still serves');
    assert.ok(existsSync(discoveryFilePath(env)), 'the refused start did not remove the discovery file');
  } finally {
    await zk.stop();
  }
});

test('a lock left by a dead runtime is taken over', async () => {
  const workdir = join(tmp, 'c');
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.once('exit', r));
  mkdirSync(join(workdir, 'zookeeper'), { recursive: true });
  writeFileSync(
    join(workdir, 'zookeeper', 'runtime.lock'),
    JSON.stringify({ pid: child.pid, connect: '127.0.0.1:1', startedAt: 0 }),
  );
  const zk = await startEmbeddedZooKeeper({ workdir, env });
  try {
    const lock = JSON.parse(readFileSync(join(workdir, 'zookeeper', 'runtime.lock'), 'utf8'));
    assert.equal(lock.pid, process.pid);
    assert.equal(lock.connect, zk.connect);
  } finally {
    await zk.stop();
  }
});

test('TLS-only: its own certificates, owner-only, made once and reused; discovery hands them to clients', async () => {
  const workdir = join(tmp, 'tls');
  const certFiles = ['ca.pem', 'server.pem', 'server-key.pem', 'client.pem', 'client-key.pem'];
  const first = await startEmbeddedZooKeeper({ workdir, env, tls: true });
  let caBefore: string;
  try {
    assert.equal(first.server.tls, true);
    assert.equal(first.server.config.settings['clientPort'], undefined, 'no plaintext port');
    assert.equal(statSync(join(workdir, 'tls')).mode & 0o777, 0o700);
    for (const f of certFiles) assert.equal(statSync(join(workdir, 'tls', f)).mode & 0o777, 0o600, f);
    assert.equal(existsSync(join(workdir, 'tls', 'ca-key.pem')), false, "the CA's key is not kept");
    caBefore = readFileSync(join(workdir, 'tls', 'ca.pem'), 'utf8');

    // What `runtime submit` and `runtime status` find: the connect string and the client's files.
    const found = discoverConnect(undefined, env);
    assert.deepEqual(found, { connect: first.connect, source: 'embedded', tls: first.tls });
    const client = await openClient(found.connect, { tls: readTlsFiles(found.tls!) });
    await client.create('/over-tls', 'yes');
    client.connection.close();
    await assert.rejects(openClient(first.connect, { timeoutMs: 20_000 }), (err: Error) =>
      hasCode(err, ErrorCodes.ZK_TLS),
    );
  } finally {
    await first.stop();
  }
  const second = await startEmbeddedZooKeeper({ workdir, env, tls: true });
  try {
    assert.equal(readFileSync(join(workdir, 'tls', 'ca.pem'), 'utf8'), caBefore, 'reused, not made again');
    const client = await openClient(second.connect, { tls: readTlsFiles(second.tls!) });
    assert.equal((await client.getData('/over-tls')).data.toString(), 'yes');
    client.connection.close();
  } finally {
    await second.stop();
  }
});

test('a TLS-only ZooKeeper left behind by a dead runtime is recognised over TLS: no second server on its data', async () => {
  const workdir = join(tmp, 'tls-stale');
  const zk = await startEmbeddedZooKeeper({ workdir, env, tls: true });
  try {
    // Its runtime "died": the lock names a dead pid, while its java still serves the data dir.
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => child.once('exit', r));
    const lockFile = join(workdir, 'zookeeper', 'runtime.lock');
    const lock = JSON.parse(readFileSync(lockFile, 'utf8'));
    writeFileSync(lockFile, JSON.stringify({ ...lock, pid: child.pid }));
    await assert.rejects(startEmbeddedZooKeeper({ workdir, env, tls: true }), (err: Error) => {
      assert.ok(hasCode(err, ErrorCodes.ZK_SERVER_FAILED), String(err));
      assert.match(err.message, /a ZooKeeper left by an earlier runtime still serves/);
      return true;
    });
  } finally {
    await zk.stop();
  }
});
