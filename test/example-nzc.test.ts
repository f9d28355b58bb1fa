/**
 * examples/node-zookeeper-client.mjs, run as an application would run it: a process that knows only
 * node-zookeeper-client and the public protocol submits a task to a farm and reads its result.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Master, Worker } from '../src/farm/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const cleanups = useCleanups();
const ROOT = join(import.meta.dirname, '..');

function runExample(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [join(ROOT, 'examples/node-zookeeper-client.mjs'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  proc.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => proc.once('close', (code) => resolve({ code, stdout, stderr })));
}

test('an application on node-zookeeper-client submits a task and reads its result through the public protocol', async () => {
  const connect = await zk.chroot('nzc-example');
  const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-nzc-example-'));
  cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
  const master = new Master({ name: 'm1', connect, sessionTimeout: 4000 });
  cleanups.push(() => master.stop());
  const worker = new Worker({ name: 'w1', connect, sessionTimeout: 4000, workdir, capacity: 2 });
  cleanups.push(() => worker.stop({ drain: false }));
  await master.start();
  await worker.start();

  const ok = await runExample([
    '--zk',
    connect,
    '--timeout',
    '60000',
    '{"handler":"echo","input":"from nzc"}',
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  const [id, json] = ok.stdout.trim().split('\n');
  assert.match(id!, /^task-\d{10}$/);
  const status = JSON.parse(json!);
  assert.equal(status.state, 'succeeded');
  assert.equal(status.result, 'from nzc');
  assert.equal(status.worker, 'w1');

  // A failing task: the result is read just the same, and the exit code says it failed.
  const failed = await runExample(['--zk', connect, '{"handler":"fail","input":"on purpose"}']);
  assert.equal(failed.code, 1, failed.stderr);
  assert.equal(JSON.parse(failed.stdout.trim().split('\n')[1]!).state, 'failed');
});
