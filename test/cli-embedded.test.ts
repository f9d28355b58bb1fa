/**
 * The embedded ZooKeeper of `runtime`, in-process: port 2181 when free else another, the discovery
 * file and the data dir lock (written while it runs, removed on stop), one runtime per workdir.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ErrorCodes, hasCode } from '../src/errors.js';
import { discoverConnect, discoveryFilePath, startEmbeddedZooKeeper } from '../src/host/embedded.js';

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

test('runs on another port when 2181 is taken; publishes and withdraws its discovery file', async () => {
  const held = await hold(2181); // undefined: someone else holds it, which serves as well
  const workdir = join(tmp, 'a');
  const zk = await startEmbeddedZooKeeper({ workdir, env });
  try {
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
