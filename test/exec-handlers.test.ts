/**
 * Executor with inline handlers: built-ins, extra handlers, result checks, names, work directory,
 * options, close. Real files in a temp dir.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ErrorCodes, ZkfarmError } from '../src/errors.js';
import {
  assertSafeName,
  type ExecOutcome,
  type ExecRequest,
  Executor,
  isSafeName,
} from '../src/exec/index.js';
import { modeOf, readJson, removeTempDirs, tempDir } from './fixtures/exec-helpers.js';

after(removeTempDirs);

let seq = 0;
function request(spec: ExecRequest['spec'], extra: Partial<ExecRequest> = {}): ExecRequest {
  seq += 1;
  return {
    taskId: `task-${String(seq).padStart(10, '0')}`,
    workerName: 'worker-1',
    attempt: 1,
    spec,
    ...extra,
  };
}

async function executor(options: ConstructorParameters<typeof Executor>[0] = {}): Promise<Executor> {
  // 'always': these tests read each task's result.json; on-demand directories have their own tests.
  const ex = new Executor({ workdir: join(await tempDir(), 'work'), taskDirs: 'always', ...options });
  await ex.init();
  return ex;
}

function assertFailed(outcome: ExecOutcome, code: string, retryable: boolean): void {
  assert.equal(outcome.state, 'failed', `expected a failed outcome, got ${JSON.stringify(outcome)}`);
  assert.equal(outcome.errorCode, code, `error: ${outcome.error}`);
  assert.equal(outcome.retryable, retryable);
  assert.ok(typeof outcome.error === 'string' && outcome.error.length > 0, 'a failed outcome needs an error');
}

describe('built-in handlers', () => {
  test('echo returns its input and writes an owner-only result.json', async () => {
    const ex = await executor();
    const req = request({ handler: 'echo', input: { a: [1, 'two', null] } }, { attempt: 3 });
    const before = Date.now();
    const outcome = await ex.run(req);
    assert.equal(outcome.state, 'succeeded');
    assert.deepEqual(outcome.result, { a: [1, 'two', null] });
    assert.equal(outcome.outputDir, join(ex.workdir, 'worker-1', req.taskId));
    assert.ok(
      outcome.startedAt >= before && outcome.finishedAt >= outcome.startedAt,
      JSON.stringify(outcome),
    );

    const file = join(outcome.outputDir!, 'result.json');
    const record = await readJson(file);
    assert.equal(record.state, 'succeeded');
    assert.deepEqual(record.result, { a: [1, 'two', null] });
    assert.equal(record.attempt, 3);
    assert.equal(record.taskId, req.taskId);
    assert.equal(record.startedAt, outcome.startedAt);
    assert.equal(record.finishedAt, outcome.finishedAt);
    assert.equal(await modeOf(file), 0o600);
    assert.equal(await modeOf(outcome.outputDir!), 0o700);
    assert.equal(await modeOf(join(ex.workdir, 'worker-1')), 0o700);
    await ex.close();
  });

  test('noop returns null, and so does a handler returning undefined', async () => {
    const ex = await executor({ handlers: { nothing: () => undefined } });
    for (const handler of ['noop', 'nothing']) {
      const outcome = await ex.run(request({ handler }));
      assert.equal(outcome.state, 'succeeded');
      assert.equal(outcome.result, null);
      assert.equal((await readJson(join(outcome.outputDir!, 'result.json'))).result, null);
    }
    await ex.close();
  });

  test('sleep waits its input in ms', async () => {
    const ex = await executor();
    const t0 = Date.now();
    const outcome = await ex.run(request({ handler: 'sleep', input: 150 }));
    assert.equal(outcome.state, 'succeeded');
    assert.ok(Date.now() - t0 >= 140, `slept only ${Date.now() - t0} ms`);
    await ex.close();
  });

  test('sleep past timeoutMs fails with TASK_TIMEOUT (retryable), early', async () => {
    const ex = await executor();
    const t0 = Date.now();
    const outcome = await ex.run(request({ handler: 'sleep', input: 10_000, timeoutMs: 100 }));
    assertFailed(outcome, ErrorCodes.TASK_TIMEOUT, true);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    assert.match(outcome.error!, /100 ms/);
    assert.equal(
      (await readJson(join(outcome.outputDir!, 'result.json'))).errorCode,
      ErrorCodes.TASK_TIMEOUT,
    );
    await ex.close();
  });

  test('defaultTimeoutMs applies to tasks without timeoutMs', async () => {
    const ex = await executor({ defaultTimeoutMs: 100 });
    const outcome = await ex.run(request({ handler: 'sleep', input: 10_000 }));
    assertFailed(outcome, ErrorCodes.TASK_TIMEOUT, true);
    await ex.close();
  });

  test('sleep stops when the request signal aborts (TASK_ABORTED, retryable)', async () => {
    const ex = await executor();
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('drain deadline')), 100);
    const t0 = Date.now();
    const outcome = await ex.run(request({ handler: 'sleep', input: 10_000 }, { signal: controller.signal }));
    assertFailed(outcome, ErrorCodes.TASK_ABORTED, true);
    assert.match(outcome.error!, /drain deadline/);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    await ex.close();
  });

  test("a handler's context.signal follows the request's signal and close(), read at any time", async () => {
    // The executor makes a task's AbortSignal only when asked for one; once asked, it must still hear
    // the caller's signal, the timeout and close() like an eager one.
    const seen: AbortSignal[] = [];
    let release: () => void = () => {};
    const ex = await executor({
      handlers: {
        grab: (_input, ctx) => {
          seen.push(ctx.signal);
          return null;
        },
        hold: (_input, ctx) =>
          new Promise((resolve) => {
            release = () => resolve(ctx.signal.aborted);
          }),
      },
    });
    const controller = new AbortController();
    const done = await ex.run(request({ handler: 'grab' }, { signal: controller.signal }));
    assert.equal(done.state, 'succeeded');
    assert.equal(seen[0]!.aborted, false);
    // The task is over: aborting the caller's signal now is nothing to it (no listener left behind).
    controller.abort(new Error('late'));
    assert.equal(seen[0]!.aborted, false);
    // close() while an async handler runs aborts the signal it reads afterwards.
    const running = ex.run(request({ handler: 'hold' }));
    await new Promise((r) => setTimeout(r, 50));
    const closing = ex.close();
    release();
    const outcome = await running;
    assertFailed(outcome, ErrorCodes.TASK_ABORTED, true);
    await closing;
  });

  test('a request whose signal is already aborted does not run', async () => {
    let ran = false;
    const ex = await executor({ handlers: { mark: () => (ran = true) } });
    const outcome = await ex.run(request({ handler: 'mark' }, { signal: AbortSignal.abort() }));
    assertFailed(outcome, ErrorCodes.TASK_ABORTED, true);
    assert.equal(ran, false);
    await ex.close();
  });

  test('fail fails with its input as the reason, retryable', async () => {
    const ex = await executor();
    const outcome = await ex.run(request({ handler: 'fail', input: 'disk on fire' }));
    assertFailed(outcome, ErrorCodes.HANDLER_FAILED, true);
    assert.match(outcome.error!, /disk on fire/);
    await ex.close();
  });

  test('sleep with a bad input fails, not retryable', async () => {
    const ex = await executor();
    assertFailed(
      await ex.run(request({ handler: 'sleep', input: 'soon' })),
      ErrorCodes.HANDLER_FAILED,
      false,
    );
    await ex.close();
  });
});

describe('handlers and their results', () => {
  test('an unknown handler fails (not retryable) and the message lists the known names', async () => {
    const ex = await executor({ handlers: { resize: () => 1 } });
    const outcome = await ex.run(request({ handler: 'transcode' }));
    assertFailed(outcome, ErrorCodes.UNKNOWN_HANDLER, false);
    for (const name of ['transcode', 'echo', 'fail', 'noop', 'sleep', 'resize'])
      assert.match(outcome.error!, new RegExp(name));
    assert.equal(ex.hasHandler('resize'), true);
    assert.equal(ex.hasHandler('transcode'), false);
    assert.equal(ex.hasHandler('constructor'), false);
    assert.deepEqual(ex.handlerNames(), ['echo', 'fail', 'noop', 'resize', 'sleep']);
    await ex.close();
  });

  test('extra handlers get input and context, and may replace a built-in', async () => {
    const seen: unknown[] = [];
    const ex = await executor({
      handlers: {
        add: async (input, ctx) => {
          seen.push(ctx.taskId, ctx.attempt, ctx.outputDir, ctx.signal.aborted);
          await writeFile(join(ctx.outputDir, 'note.txt'), 'hi');
          const { a, b } = input as { a: number; b: number };
          return a + b;
        },
        echo: () => 'mine',
      },
    });
    const req = request({ handler: 'add', input: { a: 2, b: 3 } }, { attempt: 2 });
    const outcome = await ex.run(req);
    assert.equal(outcome.result, 5);
    assert.deepEqual(seen, [req.taskId, 2, outcome.outputDir, false]);
    assert.ok(existsSync(join(outcome.outputDir!, 'note.txt')), 'the handler wrote note.txt');
    assert.equal((await ex.run(request({ handler: 'echo', input: 1 }))).result, 'mine');
    await ex.close();
  });

  test('a handler may take its context apart: progress, signal and outputDir work on their own', async () => {
    const ex = await executor({
      handlers: {
        apart: (_input, { taskId, attempt, signal, outputDir, progress }) => {
          progress(40, 'half');
          return { taskId, attempt, aborted: signal.aborted, made: existsSync(outputDir) };
        },
      },
    });
    const reports: unknown[] = [];
    const req = request({ handler: 'apart' }, { attempt: 2, onProgress: (p) => reports.push(p) });
    const outcome = await ex.run(req);
    assert.equal(outcome.state, 'succeeded', outcome.error);
    assert.deepEqual(outcome.result, { taskId: req.taskId, attempt: 2, aborted: false, made: true });
    assert.deepEqual(reports, [{ value: 40, message: 'half' }]);
    await ex.close();
  });

  test('runNow: a synchronous handler is over when it returns, an async one comes as a promise', async () => {
    const ex = await executor({ handlers: { later: async (input) => input } });
    const now = ex.runNow(request({ handler: 'echo', input: 'at once' }));
    assert.ok(!(now instanceof Promise), 'a synchronous handler needs no promise');
    assert.equal(now.result, 'at once');
    assert.equal((await readJson(join(now.outputDir!, 'result.json'))).result, 'at once');
    const later = ex.runNow(request({ handler: 'later', input: 'soon' }));
    assert.ok(later instanceof Promise, 'an async handler is still running');
    assert.equal((await later).result, 'soon');
    await ex.close();
  });

  test("an async handler's timeout counts its synchronous part too", async () => {
    // 300 ms of synchronous work, then a promise settling 150 ms later: past a 200 ms timeout.
    const ex = await executor({
      handlers: {
        slowStart: () => {
          const until = Date.now() + 300;
          while (Date.now() < until);
          return new Promise((resolve) => setTimeout(resolve, 150, 'too late'));
        },
      },
    });
    assertFailed(
      await ex.run(request({ handler: 'slowStart', timeoutMs: 200 })),
      ErrorCodes.TASK_TIMEOUT,
      true,
    );
    await ex.close();
  });

  test('a handler that throws (sync or async) fails with HANDLER_FAILED and its message', async () => {
    const ex = await executor({
      handlers: {
        syncThrow: () => {
          throw new Error('sync kaboom');
        },
        asyncThrow: async () => {
          throw new Error('async kaboom');
        },
        permanent: () => {
          throw Object.assign(new Error('never works'), { retryable: false });
        },
      },
    });
    const a = await ex.run(request({ handler: 'syncThrow' }));
    assertFailed(a, ErrorCodes.HANDLER_FAILED, true);
    assert.match(a.error!, /sync kaboom/);
    const b = await ex.run(request({ handler: 'asyncThrow' }));
    assertFailed(b, ErrorCodes.HANDLER_FAILED, true);
    assert.match(b.error!, /async kaboom/);
    assertFailed(await ex.run(request({ handler: 'permanent' })), ErrorCodes.HANDLER_FAILED, false);
    await ex.close();
  });

  test('a result JSON cannot hold fails with RESULT_NOT_SERIALIZABLE (not retryable)', async () => {
    const circular: Record<string, unknown> = { a: 1 };
    circular.self = circular;
    const ex = await executor({
      handlers: {
        big: () => 10n,
        nestedBig: () => ({ n: [1n] }),
        circular: () => circular,
        fn: () => () => 1,
        nestedFn: async () => ({ ok: true, later: () => 1 }),
        symbol: () => Symbol('x'),
      },
    });
    for (const handler of ['big', 'nestedBig', 'circular', 'fn', 'nestedFn', 'symbol']) {
      const outcome = await ex.run(request({ handler }));
      assertFailed(outcome, ErrorCodes.RESULT_NOT_SERIALIZABLE, false);
      assert.match(outcome.error!, new RegExp(handler));
      const record = await readJson(join(outcome.outputDir!, 'result.json'));
      assert.equal(record.errorCode, ErrorCodes.RESULT_NOT_SERIALIZABLE);
    }
    await ex.close();
  });

  test('an enormous error message is cut short in the outcome and in result.json', async () => {
    const ex = await executor({ handlers: { huge: () => Promise.reject(new Error('e'.repeat(2_000_000))) } });
    const outcome = await ex.run(request({ handler: 'huge' }));
    assertFailed(outcome, ErrorCodes.HANDLER_FAILED, true);
    assert.match(outcome.error!, /^handler "huge" failed: eeee/);
    assert.match(outcome.error!, /more characters cut\)$/);
    assert.ok(outcome.error!.length < 5000, `error is ${outcome.error!.length} characters`);
    const record = await readJson(join(outcome.outputDir!, 'result.json'));
    assert.equal(record.error, outcome.error);
    await ex.close();
  });

  test('an async inline handler that ignores its signal is abandoned at its timeout', async () => {
    const ex = await executor({
      handlers: { stubborn: () => new Promise((resolve) => setTimeout(resolve, 1500, 'late')) },
    });
    const t0 = Date.now();
    const outcome = await ex.run(request({ handler: 'stubborn', timeoutMs: 100 }));
    assertFailed(outcome, ErrorCodes.TASK_TIMEOUT, true);
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    await ex.close();
  });

  test('a bad task spec fails with INVALID_TASK, never throws', async () => {
    const ex = await executor({ allowShell: true });
    const specs: unknown[] = [
      { cmd: 'true', handler: 'noop' },
      {},
      { handler: 7 },
      { cmd: '' },
      { handler: 'noop', timeoutMs: -1 },
      { handler: 'noop', timeoutMs: '10' },
      null,
      [],
    ];
    for (const spec of specs) {
      const outcome = await ex.run(request(spec as ExecRequest['spec']));
      assertFailed(outcome, ErrorCodes.INVALID_TASK, false);
    }
    assertFailed(await ex.run(null as unknown as ExecRequest), ErrorCodes.INVALID_TASK, false);
    await ex.close();
  });
});

describe('task directories on demand (the default)', () => {
  async function onDemand(options: ConstructorParameters<typeof Executor>[0] = {}) {
    const ex = new Executor({ workdir: join(await tempDir(), 'work'), ...options });
    await ex.init();
    return ex;
  }

  test('a handler that writes no files leaves nothing on disk; its result is in the outcome', async () => {
    const ex = await onDemand({ handlers: { fails: () => Promise.reject(new Error('no')) } });
    assert.equal(ex.options.taskDirs, 'on-demand');
    const ok = await ex.run(request({ handler: 'echo', input: 7 }));
    assert.equal(ok.state, 'succeeded');
    assert.equal(ok.result, 7);
    assert.equal(ok.outputDir, undefined);
    const bad = await ex.run(request({ handler: 'fails' }));
    assertFailed(bad, ErrorCodes.HANDLER_FAILED, true);
    assert.equal(bad.outputDir, undefined);
    assert.deepEqual(await readdir(ex.workdir), []);
    await ex.close();
  });

  test('reading context.outputDir makes the directory; the task then has its result.json', async () => {
    const ex = await onDemand({
      handlers: {
        writes: async (input, ctx) => {
          await writeFile(join(ctx.outputDir, 'out.txt'), String(input));
          return 'wrote';
        },
        writesThenFails: (_input, ctx) => {
          void ctx.outputDir;
          throw Object.assign(new Error('after making the directory'), { retryable: false });
        },
      },
    });
    const req = request({ handler: 'writes', input: 'hello' });
    const outcome = await ex.run(req);
    assert.equal(outcome.state, 'succeeded', outcome.error);
    assert.equal(outcome.outputDir, join(ex.workdir, 'worker-1', req.taskId));
    assert.deepEqual((await readdir(outcome.outputDir!)).sort(), ['out.txt', 'result.json']);
    assert.equal((await readJson(join(outcome.outputDir!, 'result.json'))).result, 'wrote');
    assert.equal(await modeOf(outcome.outputDir!), 0o700);
    const failedReq = request({ handler: 'writesThenFails' });
    const failed = await ex.run(failedReq);
    assertFailed(failed, ErrorCodes.HANDLER_FAILED, false);
    assert.equal(failed.outputDir, join(ex.workdir, 'worker-1', failedReq.taskId));
    assert.equal((await readJson(join(failed.outputDir!, 'result.json'))).state, 'failed');
    await ex.close();
  });

  test('a directory that cannot be made fails the task with WORKDIR_UNWRITABLE (retryable), not HANDLER_FAILED', async () => {
    const ex = await onDemand({ handlers: { writes: (_i, ctx) => ctx.outputDir } });
    await writeFile(join(ex.workdir, 'worker-1'), 'a file in the way');
    const outcome = await ex.run(request({ handler: 'writes' }));
    assertFailed(outcome, ErrorCodes.WORKDIR_UNWRITABLE, true);
    assert.match(outcome.error!, /cannot make the task's output directory/);
    // A task that needs no directory is not affected.
    assert.equal((await ex.run(request({ handler: 'echo', input: 1 }))).state, 'succeeded');
    await ex.close();
  });

  test('a result too big for a status always gets a directory: result.json keeps it', async () => {
    const big = 'x'.repeat(200 * 1024);
    const ex = await onDemand({ handlers: { big: () => big, small: () => 'x'.repeat(1000) } });
    const outcome = await ex.run(request({ handler: 'big' }));
    assert.equal(outcome.state, 'succeeded');
    assert.ok(outcome.outputDir, 'a large result has a directory');
    assert.equal((await readJson(join(outcome.outputDir!, 'result.json'))).result, big);
    assert.equal((await ex.run(request({ handler: 'small' }))).outputDir, undefined);
    await ex.close();
  });

  test("taskDirs 'always' gives every task its directory and result.json; a bad value is refused", async () => {
    const ex = await onDemand({ taskDirs: 'always' });
    const outcome = await ex.run(request({ handler: 'noop' }));
    assert.ok(outcome.outputDir);
    assert.deepEqual(await readdir(outcome.outputDir!), ['result.json']);
    await ex.close();
    assert.throws(
      () => new Executor({ taskDirs: 'sometimes' as never }),
      (err: unknown) =>
        err instanceof ZkfarmError && err.code === ErrorCodes.CONFIG_INVALID && /taskDirs/.test(err.message),
    );
  });
});

describe('names and the work directory', () => {
  test('isSafeName accepts plain names and refuses path tricks', () => {
    for (const good of ['a', 'worker-3', 'task-0000000042', 'A.b_c-9', 'x'.repeat(128)]) {
      assert.equal(isSafeName(good), true, good);
      assertSafeName(good);
    }
    for (const bad of [
      '',
      '.',
      '..',
      '../x',
      'a/b',
      '/abs',
      '.hidden',
      '-dash',
      'a b',
      'a\0b',
      'é',
      'x'.repeat(129),
      7,
      null,
    ]) {
      assert.equal(isSafeName(bad), false, String(bad));
      assert.throws(
        () => assertSafeName(bad, 'task id'),
        (err: unknown) =>
          err instanceof ZkfarmError && err.code === ErrorCodes.INVALID_NAME && /task id/.test(err.message),
      );
    }
  });

  test('unsafe worker names and task ids fail with INVALID_NAME and write nothing anywhere', async () => {
    const root = await tempDir();
    const workdir = join(root, 'a', 'b', 'work');
    const ex = new Executor({
      workdir,
      handlers: { touch: async (_i, ctx) => writeFile(join(ctx.outputDir, 'x'), '') },
    });
    await ex.init();
    const bad = ['../../etc', '..', '.', 'a/b', '/tmp', '', '.hidden', 'x'.repeat(129), 'a\0b'];
    for (const name of bad) {
      for (const [workerName, taskId] of [
        [name, 'task-1'],
        ['worker-1', name],
      ]) {
        const outcome = await ex.run({
          taskId: taskId!,
          workerName: workerName!,
          attempt: 1,
          spec: { handler: 'touch' },
        });
        assertFailed(outcome, ErrorCodes.INVALID_NAME, false);
        assert.equal(outcome.outputDir, undefined);
      }
    }
    // Nothing but the (empty) work directory exists anywhere under the temp root.
    assert.deepEqual((await readdir(root, { recursive: true })).sort(), [
      'a',
      join('a', 'b'),
      join('a', 'b', 'work'),
    ]);
    await ex.close();
  });

  test('a work directory under a regular file is WORKDIR_UNWRITABLE, naming the dir and what to do', async () => {
    const root = await tempDir();
    await writeFile(join(root, 'file'), 'not a directory');
    const workdir = join(root, 'file', 'work');
    const ex = new Executor({ workdir });
    await assert.rejects(ex.init(), (err: unknown) => {
      assert.ok(err instanceof ZkfarmError, String(err));
      assert.equal(err.code, ErrorCodes.WORKDIR_UNWRITABLE);
      assert.ok(err.message.includes(workdir), err.message);
      assert.match(err.message, /--workdir|workdir option/);
      return true;
    });
    const outcome = await ex.run(request({ handler: 'noop' }));
    assertFailed(outcome, ErrorCodes.WORKDIR_UNWRITABLE, true);
    assert.ok(outcome.error!.includes(workdir), outcome.error);
    await ex.close();
  });

  test('init makes a missing work directory (owner-only) and later tasks still find it', async () => {
    const workdir = join(await tempDir(), 'deep', 'work');
    const ex = new Executor({ workdir });
    const outcome = await ex.run(request({ handler: 'noop' })); // run() initialises by itself
    assert.equal(outcome.state, 'succeeded');
    assert.equal(await modeOf(workdir), 0o700);
    // The write check left nothing behind, and a no-op task needs no directory.
    assert.deepEqual(await readdir(workdir), []);
    await ex.close();
  });

  test('a relative workdir is resolved against the current directory', () => {
    const ex = new Executor({ workdir: 'some/rel' });
    assert.equal(ex.workdir, join(process.cwd(), 'some/rel'));
    assert.equal(new Executor().workdir, join(process.cwd(), 'zkfarm-work'));
  });
});

describe('options and lifecycle', () => {
  test('bad options throw CONFIG_INVALID naming the option and what was expected', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ workdir: '' }, /workdir.*non-empty path/],
      [{ allowShell: 'yes' }, /allowShell.*true or false.*"yes"/],
      [{ handlers: { x: 1 } }, /handlers\.x.*function/],
      [{ handlers: [] }, /handlers.*object/],
      [{ handlerModules: 'mod.mjs' }, /handlerModules.*array/],
      [{ defaultTimeoutMs: -5 }, /defaultTimeoutMs.*integer >= 0.*-5/],
      [{ maxOutputBytes: 0 }, /maxOutputBytes.*integer >= 1/],
      [{ fileMode: 0o1777 }, /fileMode.*0o777/],
      [{ pool: {} }, /pool.*HandlerPool/],
      [{ allowshell: true }, /unknown Executor option allowshell.*allowShell/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => new Executor(options as never),
        (err: unknown) =>
          err instanceof ZkfarmError && err.code === ErrorCodes.CONFIG_INVALID && message.test(err.message),
        JSON.stringify(options),
      );
    }
  });

  test('close() aborts running tasks (TASK_ABORTED), later runs fail at once, close twice is fine', async () => {
    const ex = await executor();
    const running = ex.run(request({ handler: 'sleep', input: 10_000 }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const t0 = Date.now();
    await ex.close();
    assert.ok(Date.now() - t0 < 3000, `close() took ${Date.now() - t0} ms`);
    const outcome = await running;
    assertFailed(outcome, ErrorCodes.TASK_ABORTED, true);
    assert.equal(
      (await readJson(join(outcome.outputDir!, 'result.json'))).errorCode,
      ErrorCodes.TASK_ABORTED,
    );
    const afterClose = await ex.run(request({ handler: 'noop' }));
    assertFailed(afterClose, ErrorCodes.TASK_ABORTED, true);
    assert.equal(afterClose.outputDir, undefined);
    await ex.close();
  });

  test('many concurrent no-op tasks each get their own directory and result', async () => {
    const ex = await executor();
    const reqs = Array.from({ length: 500 }, () => request({ handler: 'echo', input: seq }));
    const outcomes = await Promise.all(reqs.map((r) => ex.run(r)));
    assert.ok(
      outcomes.every((o, i) => o.state === 'succeeded' && o.result === reqs[i]!.spec.input),
      'every task succeeds with its own input',
    );
    assert.equal((await readdir(join(ex.workdir, 'worker-1'))).length, 500);
    await ex.close();
  });
});
