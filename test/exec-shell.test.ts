/**
 * Shell tasks: opt-in, logs, exit codes, and process hygiene (timeouts and aborts kill the whole
 * process group, grandchildren included). Real /bin/sh processes in a temp dir.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ErrorCodes } from '../src/errors.js';
import { type ExecOutcome, type ExecRequest, Executor, type ExecutorOptions } from '../src/exec/index.js';
import {
  isAlive,
  killQuietly,
  modeOf,
  readJson,
  readPid,
  removeTempDirs,
  tempDir,
  waitFor,
} from './fixtures/exec-helpers.js';

const leftovers: number[] = [];
after(async () => {
  killQuietly(leftovers);
  await removeTempDirs();
});

let seq = 0;
function request(spec: ExecRequest['spec'], extra: Partial<ExecRequest> = {}): ExecRequest {
  seq += 1;
  return { taskId: `task-${seq}`, workerName: 'worker-sh', attempt: 1, spec, ...extra };
}

async function executor(options: ExecutorOptions = {}): Promise<Executor> {
  const ex = new Executor({
    workdir: join(await tempDir(), 'work'),
    allowShell: true,
    taskDirs: 'always',
    ...options,
  });
  await ex.init();
  return ex;
}

function assertFailed(outcome: ExecOutcome, code: string, retryable: boolean): void {
  assert.equal(outcome.state, 'failed', `expected a failed outcome, got ${JSON.stringify(outcome)}`);
  assert.equal(outcome.errorCode, code, `error: ${outcome.error}`);
  assert.equal(outcome.retryable, retryable);
}

/** Read the pids a command wrote, once they are there; remember them for cleanup. */
async function pidsFrom(dir: string, ...files: string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const file of files) {
    // The shell creates the file before it writes the pid: wait for a pid, not just for the file.
    let pid = 0;
    await waitFor(
      async () => {
        pid = existsSync(join(dir, file)) ? await readPid(join(dir, file)).catch(() => 0) : 0;
        return pid > 0;
      },
      5000,
      `a pid in ${file}`,
    );
    pids.push(pid);
  }
  leftovers.push(...pids);
  return pids;
}

// The command writes its own pid, then a child shell starts a background grandchild and waits on a
// foreground one. Only killing the whole process group ends all four.
const FAMILY =
  'echo $$ > leader.pid; ' +
  "sh -c 'echo $$ > child.pid; sleep 100 & echo $! > grandchild.pid; sleep 100' & " +
  'echo started; wait';

describe('shell tasks', () => {
  test('refused unless allowShell, saying how to enable it; nothing runs', async () => {
    const ex = await executor({ allowShell: false });
    const outcome = await ex.run(request({ cmd: 'touch ran.txt' }));
    assertFailed(outcome, ErrorCodes.SHELL_DISABLED, false);
    assert.match(outcome.error!, /allowShell: true/);
    assert.match(outcome.error!, /--allow-shell/);
    assert.equal(existsSync(join(outcome.outputDir!, 'ran.txt')), false);
    assert.equal(
      (await readJson(join(outcome.outputDir!, 'result.json'))).errorCode,
      ErrorCodes.SHELL_DISABLED,
    );
    await ex.close();
  });

  test('runs in the output dir, streams stdout/stderr to owner-only logs, records exit code 0', async () => {
    const ex = await executor();
    const req = request({ cmd: 'pwd; echo "task=$ZKFARM_TASK_ID"; echo oops >&2; printf "%s" partial' });
    const outcome = await ex.run(req);
    assert.equal(outcome.state, 'succeeded', outcome.error);
    assert.equal(outcome.exitCode, 0);
    const dir = outcome.outputDir!;
    assert.equal(await readFile(join(dir, 'stdout.log'), 'utf8'), `${dir}\ntask=${req.taskId}\npartial`);
    assert.equal(await readFile(join(dir, 'stderr.log'), 'utf8'), 'oops\n');
    for (const file of ['stdout.log', 'stderr.log', 'result.json'])
      assert.equal(await modeOf(join(dir, file)), 0o600);
    const record = await readJson(join(dir, 'result.json'));
    assert.equal(record.state, 'succeeded');
    assert.equal(record.exitCode, 0);
    await ex.close();
  });

  test('a non-zero exit fails with SHELL_FAILED, the exit code and the last line of stderr', async () => {
    const ex = await executor();
    const outcome = await ex.run(request({ cmd: 'echo first >&2; echo "last words" >&2; echo >&2; exit 3' }));
    assertFailed(outcome, ErrorCodes.SHELL_FAILED, true);
    assert.equal(outcome.exitCode, 3);
    assert.match(outcome.error!, /code 3: last words$/);
    assert.equal((await readJson(join(outcome.outputDir!, 'result.json'))).exitCode, 3);
    await ex.close();
  });

  test('a command killed by a signal fails with exit code null and names the signal', async () => {
    const ex = await executor();
    const outcome = await ex.run(request({ cmd: 'kill -9 $$' }));
    assertFailed(outcome, ErrorCodes.SHELL_FAILED, true);
    assert.equal(outcome.exitCode, null);
    assert.match(outcome.error!, /SIGKILL/);
    await ex.close();
  });

  test('a timeout kills the whole process group, grandchildren included (TASK_TIMEOUT)', {
    timeout: 20_000,
  }, async () => {
    const ex = await executor();
    const req = request({ cmd: FAMILY, timeoutMs: 1500 });
    const dir = join(ex.workdir, req.workerName, req.taskId);
    const running = ex.run(req);
    const pids = await pidsFrom(dir, 'leader.pid', 'child.pid', 'grandchild.pid');
    assert.ok(pids.every(isAlive), 'the family should be running before the timeout');
    const t0 = Date.now();
    const outcome = await running;
    assertFailed(outcome, ErrorCodes.TASK_TIMEOUT, true);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    // Checked the moment run() settles: no waiting, the promise is that nothing is left.
    assert.deepEqual(
      pids.filter(isAlive),
      [],
      'every process of the command must be dead when run() settles',
    );
    assert.equal(await readFile(join(dir, 'stdout.log'), 'utf8'), 'started\n');
    await ex.close();
  });

  test('an abort signal kills the whole process group (TASK_ABORTED)', { timeout: 20_000 }, async () => {
    const ex = await executor();
    const controller = new AbortController();
    const req = request({ cmd: FAMILY }, { signal: controller.signal });
    const dir = join(ex.workdir, req.workerName, req.taskId);
    const running = ex.run(req);
    let pids: number[];
    try {
      pids = await pidsFrom(dir, 'leader.pid', 'child.pid', 'grandchild.pid');
    } finally {
      controller.abort(new Error('assignment lost'));
    }
    const outcome = await running;
    assertFailed(outcome, ErrorCodes.TASK_ABORTED, true);
    assert.match(outcome.error!, /assignment lost/);
    assert.deepEqual(pids.filter(isAlive), []);
    await ex.close();
  });

  test('a command that ignores SIGTERM is SIGKILLed after killGraceMs', { timeout: 20_000 }, async () => {
    const ex = await executor({ killGraceMs: 300 });
    const req = request({
      cmd: "trap '' TERM; sleep 100 & echo $! > bg.pid; wait; wait; wait",
      timeoutMs: 1000,
    });
    const dir = join(ex.workdir, req.workerName, req.taskId);
    const running = ex.run(req);
    const [bg] = await pidsFrom(dir, 'bg.pid');
    const t0 = Date.now();
    const outcome = await running;
    assertFailed(outcome, ErrorCodes.TASK_TIMEOUT, true);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    // SIGKILLed by now; on a loaded machine the kernel may take a moment to finish its exit.
    await waitFor(() => !isAlive(bg!), 3000, 'the background sleep to be gone');
    await ex.close();
  });

  test('background processes left behind by a command that exits are killed', {
    timeout: 20_000,
  }, async () => {
    const ex = await executor();
    const outcome = await ex.run(request({ cmd: 'sleep 100 > /dev/null 2>&1 & echo $! > bg.pid; exit 0' }));
    assert.equal(outcome.state, 'succeeded', outcome.error);
    const [bg] = await pidsFrom(outcome.outputDir!, 'bg.pid');
    await waitFor(() => !isAlive(bg!), 3000, 'the background sleep to be gone');
    await ex.close();
  });

  test('close() kills a running command and its group', { timeout: 20_000 }, async () => {
    const ex = await executor();
    const req = request({ cmd: FAMILY });
    const running = ex.run(req);
    let pids: number[];
    try {
      pids = await pidsFrom(join(ex.workdir, req.workerName, req.taskId), 'leader.pid', 'grandchild.pid');
    } finally {
      await ex.close();
    }
    assert.deepEqual(pids.filter(isAlive), []);
    assertFailed(await running, ErrorCodes.TASK_ABORTED, true);
  });

  test('output past maxOutputBytes is dropped and the log says so', async () => {
    const ex = await executor({ maxOutputBytes: 1000 });
    const outcome = await ex.run(request({ cmd: "head -c 100000 /dev/zero | tr '\\0' a; echo done >&2" }));
    assert.equal(outcome.state, 'succeeded', outcome.error);
    const log = await readFile(join(outcome.outputDir!, 'stdout.log'), 'utf8');
    assert.ok(log.startsWith('a'.repeat(1000)), log.slice(0, 80));
    assert.equal(log.indexOf('a'.repeat(1001)), -1);
    assert.match(log, /truncated: kept the first 1000 of 100000 bytes/);
    assert.equal(await readFile(join(outcome.outputDir!, 'stderr.log'), 'utf8'), 'done\n');
    await ex.close();
  });

  test('a retry of the same task on the same worker replaces the logs', async () => {
    const ex = await executor();
    const first = request({ cmd: 'echo one' });
    await ex.run(first);
    const again = await ex.run({ ...first, spec: { cmd: 'echo two' }, attempt: 2 });
    assert.equal(await readFile(join(again.outputDir!, 'stdout.log'), 'utf8'), 'two\n');
    assert.equal((await readJson(join(again.outputDir!, 'result.json'))).attempt, 2);
    await ex.close();
  });
});
