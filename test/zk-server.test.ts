/**
 * The ZooKeeper launcher against real Java processes: standalone lifecycle, ensemble failover,
 * missing installs, loopback-only sockets, and no stray java after any way our process can die.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ErrorCodes, hasCode } from '../src/errors.js';
import type { ZkClient } from '../src/zk/client.js';
import { startZkEnsemble, type ZkEnsemble } from '../src/zk/ensemble.js';
import { fourLetterWord } from '../src/zk/four-letter.js';
import { startZkServer, type ZkServer } from '../src/zk/server.js';
import { findZooKeeper } from '../src/zk/server-install.js';
import { connectRawClient } from './helpers/zk.js';

const SERVER_MODULE = pathToFileURL(fileURLToPath(new URL('../src/zk/server.ts', import.meta.url))).href;

/** Alive and not a zombie (a reparented zombie may linger if PID 1 does not reap). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Live processes whose command line mentions `needle` (java and its watchdog name the config path). */
function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes(needle) && isAlive(Number(entry))) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Local addresses (hex, as in /proc/net/tcp*) of every listening TCP socket the process owns. */
function listeningAddresses(pid: number): { address: string; port: number }[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // fd closed meanwhile
    }
  }
  const out: { address: string; port: number }[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue;
      const [address, port] = f[1]!.split(':');
      out.push({ address: address!, port: Number.parseInt(port!, 16) });
    }
  }
  return out;
}

const LOOPBACK_HEX = new Set(['0100007F', '0000000000000000FFFF00000100007F']);

describe('standalone server', () => {
  test('serves, keeps data across kill + restart, stops without leftovers', {
    timeout: 30_000,
  }, async (t) => {
    const server: ZkServer = await startZkServer();
    const clients: ZkClient[] = [];
    t.after(async () => {
      for (const c of clients) c.connection.close();
      await server.stop();
    });
    assert.equal(await server.fourLetter('ruok'), 'imok');
    assert.match(await fourLetterWord('127.0.0.1', server.port, 'srvr'), /^Mode: standalone$/m);
    assert.equal(server.connectString, `127.0.0.1:${server.port}`);
    assert.equal(server.config.mode, 'standalone');
    assert.equal(server.config.settings['clientPortAddress'], '127.0.0.1');

    const first = await connectRawClient(server.connectString);
    clients.push(first);
    await first.create('/kept', 'across restarts');

    const pid1 = server.pid!;
    assert.ok(isAlive(pid1));
    await server.kill();
    assert.equal(server.running, false);
    assert.equal(isAlive(pid1), false, 'kill() leaves java running');
    await assert.rejects(fourLetterWord('127.0.0.1', server.port, 'ruok', 1000));
    assert.ok(existsSync(join(server.dataDir, 'version-2')), 'kill() must keep the data');

    await server.restart();
    assert.notEqual(server.pid, pid1);
    assert.equal(await server.fourLetter('ruok'), 'imok');
    const second = await connectRawClient(server.connectString);
    clients.push(second);
    const { data } = await second.getData('/kept');
    assert.equal(data.toString(), 'across restarts');

    const pid2 = server.pid!;
    const dataDir = server.dataDir;
    await server.stop();
    assert.equal(isAlive(pid2), false);
    // The watchdog shell may take a moment to notice java is gone and exit (it tidies up after it).
    await waitFor('java and its watchdog to go', () => processesMentioning(dataDir).length === 0, 5000).catch(
      () => {},
    );
    assert.deepEqual(processesMentioning(dataDir), [], 'java or its watchdog outlived stop() by 5 s');
    assert.equal(existsSync(dataDir), false, 'a temp data dir we created is removed on stop()');
    await server.stop(); // twice is fine
  });

  test('restart() after a graceful stop keeps a temp data dir and its data', {
    timeout: 60_000,
  }, async (t) => {
    const server = await startZkServer();
    t.after(() => server.stop());
    const c = await connectRawClient(server.connectString);
    await c.create('/kept', 'across a graceful restart');
    c.connection.close();
    // restart() stops java with SIGTERM: java exits on its own, and its watchdog must not take that for
    // our death and remove the data dir.
    await server.restart();
    assert.ok(existsSync(join(server.dataDir, 'version-2')), 'the data dir survived');
    const again = await connectRawClient(server.connectString);
    t.after(() => again.connection.close());
    assert.equal((await again.getData('/kept')).data.toString(), 'across a graceful restart');
  });

  test('listens on 127.0.0.1 only; data dir with spaces; caller dir is kept', {
    timeout: 30_000,
  }, async (t) => {
    const parent = mkdtempSync(join(tmpdir(), 'zkfarm test '));
    const dataDir = join(parent, 'data dir');
    const server = await startZkServer({ dataDir, tickTime: 500 });
    t.after(async () => {
      await server.stop();
      rmSync(parent, { recursive: true, force: true });
    });
    const cfg = readFileSync(server.config.configFile, 'utf8');
    assert.match(cfg, /^clientPortAddress=127\.0\.0\.1$/m);
    assert.match(cfg, /^4lw\.commands\.whitelist=\*$/m);
    assert.match(cfg, /^admin\.enableServer=false$/m);
    const listening = listeningAddresses(server.pid!);
    assert.ok(
      listening.some((l) => l.port === server.port),
      `client port not found in ${JSON.stringify(listening)}`,
    );
    for (const l of listening) assert.ok(LOOPBACK_HEX.has(l.address), `listening on ${l.address}:${l.port}`);
    assert.ok(readFileSync(server.logFile, 'utf8').includes('binding to port'), 'the server log is captured');
    await server.stop();
    assert.ok(existsSync(dataDir), 'a data dir the caller gave is kept');
  });

  test('a failing start reports ZK_SERVER_FAILED with the log tail', { timeout: 30_000 }, async () => {
    await assert.rejects(
      startZkServer({ extraConfig: { tickTime: 'not-a-number' }, startTimeoutMs: 20_000 }),
      (err) => {
        assert.ok(hasCode(err, ErrorCodes.ZK_SERVER_FAILED), String(err));
        assert.match((err as Error).message, /exited .*before serving[\s\S]*last lines/);
        return true;
      },
    );
  });
});

describe('finding ZooKeeper', () => {
  const PATH = process.env['PATH'] ?? '';
  const notFound = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (err) => {
      assert.ok(hasCode(err, ErrorCodes.ZK_NOT_FOUND), String(err));
      assert.match((err as Error).message, pattern);
      assert.match((err as Error).message, /sudo apt-get install -y zookeeper/);
      assert.match((err as Error).message, /--zk host:port/);
      return true;
    });

  test('finds Debian ZooKeeper and java on PATH', () => {
    const found = findZooKeeper({ env: { PATH } });
    assert.match(found.classpath, /zookeeper\.jar/);
    assert.match(found.java, /\/java$/);
  });
  test('a classpath entry that does not exist', () => {
    notFound(() => findZooKeeper({ classpath: '/nonexistent/zookeeper.jar', env: { PATH } }), /nonexistent/);
  });
  test('ZOOKEEPER_HOME pointing nowhere', () => {
    notFound(() => findZooKeeper({ env: { PATH, ZOOKEEPER_HOME: '/nonexistent/zk' } }), /ZOOKEEPER_HOME/);
    notFound(() => findZooKeeper({ zookeeperHome: '/tmp', env: { PATH } }), /ZOOKEEPER_HOME/);
  });
  test('no java: empty PATH, bad JAVA_HOME, bad java option', { timeout: 30_000 }, async () => {
    notFound(() => findZooKeeper({ env: { PATH: '' } }), /Java was not found/);
    notFound(() => findZooKeeper({ env: { PATH, JAVA_HOME: '/nonexistent/jdk' } }), /JAVA_HOME/);
    notFound(() => findZooKeeper({ java: '/nonexistent/java', env: { PATH } }), /nonexistent/);
    await assert.rejects(startZkServer({ env: { PATH: '' } }), (err) =>
      hasCode(err, ErrorCodes.ZK_NOT_FOUND),
    );
  });
});

describe('ensemble', () => {
  test('3 members elect a leader; two survive the leader being killed; it rejoins', {
    timeout: 30_000,
  }, async (t) => {
    const started = Date.now();
    const ensemble: ZkEnsemble = await startZkEnsemble({ size: 3, tickTime: 500 });
    const clients: ZkClient[] = [];
    t.after(async () => {
      for (const c of clients) c.connection.close();
      await ensemble.stop();
    });
    t.diagnostic(`ensemble serving after ${Date.now() - started} ms`);
    assert.equal(ensemble.members.length, 3);
    assert.equal(ensemble.connectString.split(',').length, 3);
    for (const m of ensemble.members) {
      assert.match(await m.fourLetter('srvr'), /^Mode: (leader|follower)$/m);
      for (const l of listeningAddresses(m.pid!)) {
        assert.ok(LOOPBACK_HEX.has(l.address), `member ${m.id} listens on ${l.address}:${l.port}`);
      }
    }
    const leader = await ensemble.leaderId();
    assert.ok(leader !== undefined && leader >= 1 && leader <= 3, `leaderId ${leader}`);

    const others = ensemble.members.filter((m) => m.id !== leader);
    const killedPid = ensemble.member(leader).pid!;
    await ensemble.killMember(leader);
    assert.equal(isAlive(killedPid), false);
    const failover = Date.now();
    // Right after the kill the survivors may still report their old roles: wait for a new leader.
    let newLeader: number | undefined;
    await waitFor(
      'a new leader among the two survivors, both serving',
      async () => {
        newLeader = await ensemble.leaderId();
        if (newLeader === undefined || newLeader === leader) return false;
        const modes = await Promise.all(others.map((m) => m.fourLetter('srvr', 1000).catch(() => '')));
        return modes.every((s) => /^Mode: (leader|follower)$/m.test(s));
      },
      20_000,
    );
    t.diagnostic(`new leader ${newLeader} after ${Date.now() - failover} ms`);

    const client = await connectRawClient(others.map((m) => m.connectString).join(','));
    clients.push(client);
    await client.create('/after-failover', 'ok');

    await ensemble.restartMember(leader);
    assert.match(await ensemble.member(leader).fourLetter('srvr'), /^Mode: follower$/m);
    const direct = await connectRawClient(ensemble.member(leader).connectString);
    clients.push(direct);
    const { data } = await direct.getData('/after-failover');
    assert.equal(data.toString(), 'ok');

    const pids = ensemble.members.map((m) => m.pid!);
    await ensemble.stop();
    for (const pid of pids) assert.equal(isAlive(pid), false);
    assert.equal(existsSync(ensemble.baseDir), false);
  });
});

describe('no stray java when our process dies', () => {
  /** A child Node process that starts a server, prints its java pid, then does `then`. */
  function childWithServer(
    then: string,
  ): Promise<{ child: ReturnType<typeof spawn>; javaPid: number; dataDir: string }> {
    const code = `
      const { startZkServer } = await import(${JSON.stringify(SERVER_MODULE)});
      const server = await startZkServer({});
      process.stdout.write(JSON.stringify({ pid: server.pid, dataDir: server.dataDir }) + '\\n');
      setInterval(() => {}, 1000);
      ${then}
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
    });
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) {
          const info = JSON.parse(line) as { pid: number; dataDir: string };
          resolve({ child, javaPid: info.pid, dataDir: info.dataDir });
        }
      });
      child.once('exit', (code, sig) =>
        reject(new Error(`child exited early (${code}, ${sig}): ${out} ${err}`)),
      );
    });
  }

  const exitOf = (child: ReturnType<typeof spawn>, timeoutMs: number) =>
    new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve({ code: child.exitCode, signal: child.signalCode });
        return;
      }
      const timer = setTimeout(
        () => reject(new Error(`the child did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });

  for (const how of ['SIGKILL', 'SIGTERM', 'uncaught exception'] as const) {
    test(`parent dies by ${how}: java and its temp dir are gone within seconds`, {
      timeout: 30_000,
    }, async (t) => {
      const then = how === 'uncaught exception' ? "setTimeout(() => { throw new Error('boom'); }, 300);" : '';
      const { child, javaPid, dataDir } = await childWithServer(then);
      t.after(() => {
        if (isAlive(javaPid)) process.kill(javaPid, 'SIGKILL');
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      assert.ok(isAlive(javaPid), 'the server runs before the parent dies');
      if (how !== 'uncaught exception') child.kill(how);
      const exit = await exitOf(child, 10_000);
      if (how === 'uncaught exception') assert.equal(exit.code, 1, 'the crash is not swallowed');
      else assert.equal(exit.signal, how, 'the signal keeps its default action');
      const t0 = Date.now();
      await waitFor(`java ${javaPid} to die`, () => !isAlive(javaPid), 5000);
      t.diagnostic(`java gone ${Date.now() - t0} ms after the parent died`);
      await waitFor(`temp data dir ${dataDir} to be removed`, () => !existsSync(dataDir), 5000);
    });
  }
});
