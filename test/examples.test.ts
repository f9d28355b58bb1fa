/**
 * The one-role-per-process examples, run as the README shows: a master and a worker in their own
 * processes, and `echo '{"cmd": ...}' | npx tsx examples/sendtask.ts --wait`, on the test ZooKeeper.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { useZooKeeper } from './helpers/zk.js';

const ROOT = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-examples-test-'));
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

interface Proc {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function run(file: string, args: string[], input?: string): Proc {
  const proc = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  if (input !== undefined) proc.stdin!.end(input);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    proc.once('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { proc, out: () => stdout, err: () => stderr, done };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitForOutput(p: Proc, re: RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!re.test(p.out())) {
    if (p.proc.exitCode !== null) assert.fail(`exited before ${re}: ${p.err()}${p.out()}`);
    if (Date.now() > deadline) assert.fail(`no ${re} within ${ms} ms: ${p.err()}${p.out()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('examples: master, worker and sendtask, one process each', () => {
  const zk = useZooKeeper();
  let connect: string;
  let master: Proc;
  let worker: Proc;
  const workdir = join(tmp, 'work');

  before(async () => {
    connect = await zk.chroot('examples');
    master = run('examples/master.ts', ['m1', '--zk', connect]);
    worker = run('examples/worker.ts', [
      'w1',
      '--zk',
      connect,
      '--allow-shell',
      '--capacity',
      '2',
      '--workdir',
      workdir,
      '--handlers',
      'examples/handlers.mjs',
    ]);
    await waitForOutput(master, /master m1 running/, 60_000);
    await waitForOutput(worker, /worker w1 running/, 60_000);
  });

  test('echo \'{"cmd": ...}\' | sendtask.ts --wait: the id, then the result; output files written', async () => {
    const r = await within(
      run('examples/sendtask.ts', ['--zk', connect, '--wait'], '{"cmd":"echo hello from a shell"}').done,
      60_000,
      'sendtask',
    );
    assert.equal(r.code, 0, r.stderr);
    const [id, line] = r.stdout.trimEnd().split('\n');
    assert.match(id!, /^task-\d{10}$/);
    const status = JSON.parse(line!);
    assert.equal(status.state, 'succeeded');
    assert.equal(status.worker, 'w1');
    assert.equal(status.exitCode, 0);
    assert.equal(readFileSync(join(workdir, 'w1', id!, 'stdout.log'), 'utf8'), 'hello from a shell\n');
  });

  test('a handler from examples/handlers.mjs', async () => {
    const r = await within(
      run('examples/sendtask.ts', ['--zk', connect, '--wait'], '{"handler":"fib","input":20}').done,
      60_000,
      'sendtask',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout.trimEnd().split('\n')[1]!).result, 6765);
  });

  test('a failing task: exit 1', async () => {
    const r = await within(
      run('examples/sendtask.ts', ['--zk', connect, '--wait'], '{"cmd":"exit 3"}').done,
      60_000,
      'sendtask',
    );
    assert.equal(r.code, 1);
    const status = JSON.parse(r.stdout.trimEnd().split('\n')[1]!);
    assert.equal(status.state, 'failed');
    assert.equal(status.exitCode, 3);
  });

  test('without --wait: just the id', async () => {
    const r = await within(
      run('examples/sendtask.ts', ['--zk', connect], '{"handler":"noop"}').done,
      60_000,
      'sendtask',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^task-\d{10}\n$/);
  });

  test('Ctrl-C stops the worker and the master cleanly (exit 0)', async () => {
    worker.proc.kill('SIGINT');
    master.proc.kill('SIGINT');
    const [w, m] = await within(Promise.all([worker.done, master.done]), 60_000, 'stopping');
    assert.equal(w.code, 0, w.stderr);
    assert.equal(m.code, 0, m.stderr);
  });
});
