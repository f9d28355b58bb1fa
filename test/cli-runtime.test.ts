/**
 * `runtime --masters 2 --workers 8` as a user runs it: with the embedded ZooKeeper, found by
 * `runtime submit` and `runtime status` in other processes without flags; one runtime per workdir;
 * SIGINT ends everything (exit 0, no java left on the data dir); a second SIGINT ends it at once;
 * queued tasks survive a restart.
 *
 * Each child gets its own XDG_RUNTIME_DIR, so this file never sees another runtime's discovery file.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { statusPath } from '../src/farm/protocol.js';
import { Submitter } from '../src/farm/submitter.js';
import { discoveryFilePath } from '../src/host/discovery.js';
import { Cli, killRuntimes } from './helpers/cli.js';

const _ROOT = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-runtime-test-'));
const xdg = join(tmp, 'xdg');
const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: xdg };
delete env['ZKFARM_ZK'];

after(() => {
  killRuntimes();
  rmSync(tmp, { recursive: true, force: true });
});

const cli = (args: string[], timeoutMs = 60_000) => new Cli(args, { env }).exit(timeoutMs);

/** pids of processes whose command line mentions `text` (pgrep -f). */
function pgrep(text: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', text], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

async function noJavaLeft(dataDir: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pgrep(dataDir).length > 0) {
    if (Date.now() > deadline) assert.fail(`processes still run on ${dataDir}: ${pgrep(dataDir).join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const READY = /runtime: ready: (\d+) masters?, (\d+) workers? on (\S+)/;

describe('runtime --masters 2 --workers 8 with the embedded ZooKeeper', () => {
  const workdir = join(tmp, 'work');
  const dataDir = join(workdir, 'zookeeper');
  let farm: Cli;
  let connect: string;

  test('it starts the embedded ZooKeeper, says where, and gets ready', async () => {
    farm = new Cli(['--masters', '2', '--workers', '8', '--workdir', workdir, '--name-prefix', 'rt'], {
      env,
    });
    const listening = await farm.waitForErr(/embedded ZooKeeper listening on (127\.0\.0\.1:\d+)/, 120_000);
    connect = listening[1]!;
    const ready = await farm.waitForErr(READY, 180_000);
    // The roles rehearse, which warms ZooKeeper with the farm's own requests: no warm-up beside it
    // (host/embedded-warm-up.ts; test/cli-tls.test.ts starts one without a rehearsal).
    const rehearsed = /the roles rehearsed with (\d+) tasks in [\d.]+ s/.exec(farm.stderr);
    assert.ok(rehearsed && Number(rehearsed[1]) > 0, farm.stderr);
    assert.doesNotMatch(farm.stderr, /the embedded ZooKeeper was warmed/);
    // Then its per-request path, once the roles have started, and only then ready.
    const requests = /and its request path with (\d+) small requests in [\d.]+ s/.exec(farm.stderr);
    assert.ok(requests && Number(requests[1]) > 0, farm.stderr);
    assert.ok(rehearsed.index < requests.index, 'after the roles started');
    assert.ok(requests.index < farm.stderr.search(READY), 'before ready');
    assert.equal(ready[1], '2');
    assert.equal(ready[2], '8');
    assert.equal(ready[3], connect);
    assert.ok(pgrep(dataDir).length > 0, 'a java process runs on the data dir');
    const discovery = JSON.parse(readFileSync(discoveryFilePath(env), 'utf8'));
    assert.equal(discovery.connect, connect);
    assert.equal(discovery.pid, farm.proc.pid);
    assert.equal(discovery.workdir, workdir);
  });

  test('runtime submit --wait from another process finds it without flags', async () => {
    const r = await cli(['submit', '--wait', '--timeout', '30000', '{"handler":"echo","input":"found you"}']);
    assert.equal(r.code, 0, r.stderr);
    const [id, line] = r.stdout.trimEnd().split('\n');
    const status = JSON.parse(line!);
    assert.equal(status.id, id);
    assert.equal(status.state, 'succeeded');
    assert.equal(status.result, 'found you');
    assert.match(status.worker, /^rt-worker-\d$/);
    // A handler that writes no files leaves no directory (taskDirs on-demand, the default).
    assert.equal(status.outputDir, undefined);
    assert.equal(
      existsSync(join(workdir, status.worker, id!)),
      false,
      'no directory for a task without files',
    );
  });

  test('runtime status --json: 1 leader, 1 standby, 8 workers', async () => {
    const r = await cli(['status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.source, 'embedded');
    assert.equal(s.connect, connect);
    assert.match(s.leader.name, /^rt-master-[12]$/);
    assert.equal(s.standbys.length, 1);
    assert.notEqual(s.standbys[0], s.leader.name);
    assert.equal(s.workers.length, 8);
    assert.deepEqual(
      s.workers.map((w: { name: string }) => w.name).sort(),
      Array.from({ length: 8 }, (_, i) => `rt-worker-${i + 1}`),
    );
    assert.ok(s.workers.every((w: { capacity: number }) => w.capacity === 4));
  });

  test('a second runtime on the same workdir: a clear error, and the first keeps running', async () => {
    const r = await cli(['--masters', '1', '--workers', '1', '--workdir', workdir, '--name-prefix', 'rt2']);
    assert.equal(r.code, 1);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      new RegExp(
        `the workdir ${workdir} is in use by another runtime \\(pid ${farm.proc.pid}, ZooKeeper at ${connect}\\)`,
      ),
    );
    const again = await cli(['submit', '--wait', '--timeout', '30000', '{"handler":"noop"}']);
    assert.equal(again.code, 0, again.stderr);
  });

  test('SIGINT: exit 0, no java left on the data dir, the discovery file removed', async () => {
    farm.proc.kill('SIGINT');
    const r = await farm.exit(90_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /runtime: stopped\s*$/);
    await noJavaLeft(dataDir);
    assert.equal(existsSync(discoveryFilePath(env)), false);
    assert.equal(existsSync(join(dataDir, 'runtime.lock')), false);
    assert.ok(existsSync(join(dataDir, 'version-2')), 'the data is kept');
  });
});

describe('restarts and a second SIGINT', () => {
  const workdir = join(tmp, 'work-restart');
  const dataDir = join(workdir, 'zookeeper');

  test('a queued task survives a restart of the runtime', async () => {
    // First run: a master and no workers, so the task waits in /tasks.
    const first = new Cli(['--masters', '1', '--workers', '0', '--workdir', workdir, '--name-prefix', 'rs'], {
      env,
    });
    await first.waitForErr(READY, 180_000);
    const sub = await cli(['submit', '{"handler":"echo","input":"kept"}']);
    assert.equal(sub.code, 0, sub.stderr);
    const id = sub.stdout.trim();
    assert.match(id, /^task-\d{10}$/);
    const status = JSON.parse((await cli(['status', '--json'])).stdout);
    assert.equal(status.queued, 1);
    first.proc.kill('SIGINT');
    assert.equal((await first.exit(90_000)).code, 0);
    await noJavaLeft(dataDir);

    // Second run on the same workdir, now with a worker: the task is still queued, and runs.
    const second = new Cli(
      ['--masters', '1', '--workers', '1', '--workdir', workdir, '--name-prefix', 'rs'],
      { env },
    );
    const ready = await second.waitForErr(READY, 180_000);
    // The queued task is work waiting: the roles do not rehearse first (host/tasks-waiting.ts).
    assert.match(second.stderr, /tasks were waiting in \/tasks/);
    const submitter = await Submitter.open({ connect: ready[3]!, connectTimeout: 10_000 });
    try {
      const session = submitter.supervisor.session!;
      // By now it may be queued, assigned to the new worker, or done: any of those means it survived.
      const done = await session.client.exists(statusPath(id));
      const queued = await session.client.getChildren('/tasks');
      const assigned: string[] = [];
      for (const w of await session.client.getChildren('/assign')) {
        for (const t of await session.client.getChildren(`/assign/${w}`).catch(() => [] as string[]))
          assigned.push(t);
      }
      const doneLater = await session.client.exists(statusPath(id));
      assert.ok(
        queued.includes(id) || assigned.includes(id) || done !== null || doneLater !== null,
        `${id} survived the restart (queued: ${queued.join(', ')}; assigned: ${assigned.join(', ')})`,
      );
      const result = await submitter.waitFor(id, { timeoutMs: 30_000 });
      assert.equal(result.state, 'succeeded');
      assert.equal(result.result, 'kept');
    } finally {
      await submitter.close();
    }

    // A second SIGINT while the first one drains: out at once, nothing left.
    const busy = await cli(['submit', '{"handler":"sleep","input":20000}']);
    assert.equal(busy.code, 0, busy.stderr);
    await new Promise((r) => setTimeout(r, 1000)); // let the worker start it
    second.proc.kill('SIGINT');
    await second.waitForErr(/SIGINT: stopping/, 10_000);
    second.proc.kill('SIGINT');
    const r = await second.exit(15_000);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /SIGINT again: stopping at once/);
    await noJavaLeft(dataDir);
    assert.equal(existsSync(discoveryFilePath(env)), false, 'the exit hook removed the discovery file');
  });
});

describe('a task submitted the moment runtime starts', () => {
  /**
   * A runtime of one master and one worker in `dir`, an echo submitted as soon as its ZooKeeper listens
   * (its result checked), then `checks` on what runtime said once ready, then a stop by SIGINT.
   */
  async function submitAtStart(
    dir: string,
    extraEnv: NodeJS.ProcessEnv,
    waitMs: number,
    checks: (err: string) => void,
  ) {
    const workdir = join(tmp, dir);
    const farm = new Cli(['--masters', '1', '--workers', '1', '--workdir', workdir, '--name-prefix', dir], {
      env: { ...env, ...extraEnv },
    });
    await farm.waitForErr(/embedded ZooKeeper listening on/, 120_000);
    const r = await cli(
      ['submit', '--wait', '--timeout', String(waitMs), '{"handler":"echo","input":"early"}'],
      waitMs + 30_000,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.trimEnd().split('\n')[1]!).result, 'early');
    await farm.waitForErr(READY, waitMs + 60_000);
    checks(farm.stderr);
    farm.proc.kill('SIGINT');
    assert.equal((await farm.exit(90_000)).code, 0);
    await noJavaLeft(join(workdir, 'zookeeper'));
  }

  test('ends the warm-up meant for it, and runs', async () => {
    await submitAtStart('early', {}, 120_000, (err) => {
      assert.match(err, /tasks were waiting in \/tasks/);
      assert.doesNotMatch(err, /the roles rehearsed with/);
      // The task waited before the burst began: the burst is skipped, not sent after it.
      assert.doesNotMatch(err, /its request path with/);
    });
  });

  test('ends the warm-up of a runtime without a rehearsal too', async () => {
    // No rehearsal, and a warm-up bound of 40 s: only the waiting task can end it before the test's wait.
    const plain = { ZKFARM_REHEARSAL_TASKS: '0', ZKFARM_ZK_WARM_UP_MS: '40000' };
    await submitAtStart('early-plain', plain, 30_000, (err) => {
      assert.match(err, /warm-up gave way after [\d.]+ s: tasks were waiting in \/tasks/);
      assert.doesNotMatch(err, /was warmed in/);
      assert.doesNotMatch(err, /its request path with/);
    });
  });
});
