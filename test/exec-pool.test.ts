/**
 * Handler modules on the Piscina pool: loading, names, results, failures, and a handler that blocks
 * its thread forever, which a timeout or an abort must still end without freezing the caller.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { threadId } from 'node:worker_threads';
import { ErrorCodes, ZkfarmError } from '../src/errors.js';
import {
  createHandlerPool,
  type ExecOutcome,
  type ExecRequest,
  Executor,
  type ExecutorOptions,
  type HandlerPool,
} from '../src/exec/index.js';
import { removeTempDirs, tempDir, waitFor } from './fixtures/exec-helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/handlers.mjs', import.meta.url));
const CLASH = fileURLToPath(new URL('./fixtures/handlers-clash.mjs', import.meta.url));
const NO_HANDLERS = fileURLToPath(new URL('./fixtures/no-handlers.mjs', import.meta.url));
const FIXTURE_URL = pathToFileURL(FIXTURE).href;

// One pool for the file, shared by every Executor below, as the host does.
let pool: HandlerPool;
before(() => {
  pool = createHandlerPool({ maxThreads: 2 });
});
after(async () => {
  await pool.close();
  await removeTempDirs();
});

let seq = 0;
function request(spec: ExecRequest['spec'], extra: Partial<ExecRequest> = {}): ExecRequest {
  seq += 1;
  return { taskId: `task-${seq}`, workerName: 'worker-pool', attempt: 1, spec, ...extra };
}

async function executor(options: ExecutorOptions = {}): Promise<Executor> {
  const ex = new Executor({
    workdir: join(await tempDir(), 'work'),
    handlerModules: [FIXTURE],
    pool,
    ...options,
  });
  await ex.init();
  return ex;
}

/** `work`, or a rejection after `ms`: a regression must fail the test, not hang the file. */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

function assertFailed(outcome: ExecOutcome, code: string, retryable: boolean): void {
  assert.equal(outcome.state, 'failed', `expected a failed outcome, got ${JSON.stringify(outcome)}`);
  assert.equal(outcome.errorCode, code, `error: ${outcome.error}`);
  assert.equal(outcome.retryable, retryable);
}

describe('handler modules on the pool', () => {
  test('named exports and default-export object functions become handlers', async () => {
    const ex = await executor();
    for (const name of ['square', 'cube', 'blockForever', 'throws', 'whereAmI', 'writesFile']) {
      assert.equal(ex.hasHandler(name), true, name);
    }
    assert.equal(ex.hasHandler('notAFunction'), false);
    assert.equal(ex.hasHandler('default'), false);
    assert.ok(ex.handlerNames().includes('echo'), ex.handlerNames().join());
    assert.deepEqual((await ex.run(request({ handler: 'square', input: 7 }))).result, 49);
    assert.deepEqual((await ex.run(request({ handler: 'cube', input: 3 }))).result, 27);
    await ex.close();
  });

  test('module handlers run off the calling thread, with context and output dir', async () => {
    const ex = await executor();
    const where = await ex.run(request({ handler: 'whereAmI' }));
    assert.equal(where.state, 'succeeded', where.error);
    const { isMainThread, threadId: poolThread } = where.result as {
      isMainThread: boolean;
      threadId: number;
    };
    assert.equal(isMainThread, false);
    assert.notEqual(poolThread, threadId);

    const req = request({ handler: 'writesFile', input: 'from the pool' }, { attempt: 4 });
    const outcome = await ex.run(req);
    assert.deepEqual(outcome.result, { taskId: req.taskId, attempt: 4, aborted: false });
    assert.equal(await readFile(join(outcome.outputDir!, 'out.txt'), 'utf8'), 'from the pool');
    const record = JSON.parse(await readFile(join(outcome.outputDir!, 'result.json'), 'utf8'));
    assert.deepEqual(record.result, outcome.result);
    await ex.close();
  });

  test('on demand: a module handler that reads outputDir gets its directory made in the pool thread', async () => {
    const workdir = join(await tempDir(), 'work');
    const ex = new Executor({ workdir, handlerModules: [FIXTURE], pool });
    await ex.init();
    const square = await ex.run(request({ handler: 'square', input: 3 }));
    assert.equal(square.result, 9);
    assert.equal(square.outputDir, undefined);
    const req = request({ handler: 'writesFile', input: 'on demand' });
    const writes = await ex.run(req);
    assert.equal(writes.state, 'succeeded', writes.error);
    assert.equal(writes.outputDir, join(workdir, 'worker-pool', req.taskId));
    assert.deepEqual(readdirSync(writes.outputDir!).sort(), ['out.txt', 'result.json']);
    // A directory the thread cannot make fails the task as WORKDIR_UNWRITABLE, retryable.
    rmSync(join(workdir, 'worker-pool'), { recursive: true });
    writeFileSync(join(workdir, 'worker-pool'), 'a file in the way');
    const blocked = await ex.run(request({ handler: 'writesFile', input: 'x' }));
    assert.equal(blocked.state, 'failed');
    assert.equal(blocked.errorCode, ErrorCodes.WORKDIR_UNWRITABLE, blocked.error);
    assert.equal(blocked.retryable, true);
    assert.equal((await ex.run(request({ handler: 'square', input: 4 }))).result, 16);
    await ex.close();
  });

  test("a handler's un-awaited work still runs after it returns (pool threads are not parked)", async () => {
    const ex = await executor();
    const outcome = await ex.run(request({ handler: 'fireAndForget' }));
    assert.equal(outcome.state, 'succeeded', outcome.error);
    await waitFor(() => existsSync(join(outcome.outputDir!, 'later.txt')), 3000, 'later.txt');
    await ex.close();
  });

  test('a module handler that throws fails with HANDLER_FAILED and its message', async () => {
    const ex = await executor();
    const outcome = await ex.run(request({ handler: 'throws', input: { n: 1 } }));
    assertFailed(outcome, ErrorCodes.HANDLER_FAILED, true);
    assert.match(outcome.error!, /exploded on \{"n":1\}/);
    assertFailed(await ex.run(request({ handler: 'permanentFailure' })), ErrorCodes.HANDLER_FAILED, false);
    await ex.close();
  });

  test('a module handler result JSON cannot hold fails with RESULT_NOT_SERIALIZABLE', async () => {
    const ex = await executor();
    const outcome = await ex.run(request({ handler: 'bigint' }));
    assertFailed(outcome, ErrorCodes.RESULT_NOT_SERIALIZABLE, false);
    assert.match(outcome.error!, /BigInt/);
    const nested = await ex.run(request({ handler: 'nestedFunction' }));
    assertFailed(nested, ErrorCodes.RESULT_NOT_SERIALIZABLE, false);
    assert.match(nested.error!, /function at key "later"/);
    await ex.close();
  });

  // These two run on a pool of their own: if the bug they guard is back, the finally block still
  // terminates the stuck thread and the shared pool stays free for the other tests.
  test('a handler that blocks its thread forever is ended by its timeout; the caller stays responsive', async () => {
    const own = createHandlerPool({ maxThreads: 1 });
    const ex = await executor({ pool: own });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 20);
    try {
      const t0 = Date.now();
      const outcome = await withDeadline(
        ex.run(request({ handler: 'blockForever', timeoutMs: 500 })),
        10_000,
      );
      const took = Date.now() - t0;
      assertFailed(outcome, ErrorCodes.TASK_TIMEOUT, true);
      assert.ok(took < 5000, `took ${took} ms`);
      assert.ok(ticks >= 10, `the calling thread's event loop ticked only ${ticks} times`);
      // The pool replaced the terminated thread and still works.
      const next = await withDeadline(ex.run(request({ handler: 'square', input: 9 })), 10_000);
      assert.equal(next.result, 81);
    } finally {
      clearInterval(ticker);
      await own.close();
      await ex.close();
    }
  });

  test('an abort signal ends a blocked module handler (TASK_ABORTED)', async () => {
    const own = createHandlerPool({ maxThreads: 1 });
    const ex = await executor({ pool: own });
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('worker draining')), 300);
      const running = ex.run(request({ handler: 'blockForever' }, { signal: controller.signal }));
      const outcome = await withDeadline(running, 10_000);
      assertFailed(outcome, ErrorCodes.TASK_ABORTED, true);
      assert.match(outcome.error!, /worker draining/);
    } finally {
      await own.close();
      await ex.close();
    }
  });

  test('close() of an Executor leaves a shared pool running for the others', async () => {
    const a = await executor();
    const b = await executor();
    await a.close();
    assert.equal((await b.run(request({ handler: 'square', input: 5 }))).result, 25);
    await b.close();
    assert.equal(
      await pool.run({
        module: FIXTURE_URL,
        handler: 'square',
        input: 2,
        taskId: 't',
        attempt: 1,
        outputDir: '/nonexistent',
      }),
      4,
    );
  });

  test('an Executor with its own pool works, and a relative module path resolves against cwd', async () => {
    const ex = new Executor({
      workdir: join(await tempDir(), 'work'),
      handlerModules: [`./${relative(process.cwd(), FIXTURE)}`],
    });
    const outcome = await ex.run(request({ handler: 'square', input: 12 }));
    assert.equal(outcome.result, 144);
    await ex.close();
    await ex.close();
  });

  test("close() destroys an Executor's own pool: its threads exit", async () => {
    // Linux: every thread of this process is an entry in /proc/self/task.
    const threadsNow = () => readdirSync('/proc/self/task').length;
    const before = threadsNow();
    const ex = new Executor({ workdir: join(await tempDir(), 'work'), handlerModules: [FIXTURE] });
    assert.equal((await ex.run(request({ handler: 'square', input: 3 }))).result, 9);
    assert.ok(
      threadsNow() > before,
      `a pool thread should be running (${threadsNow()} threads, ${before} before)`,
    );
    await ex.close();
    await waitFor(() => threadsNow() <= before, 5000, 'the own pool threads to exit');
  });

  test('unknown handler lists the module handlers too', async () => {
    const ex = await executor();
    const outcome = await ex.run(request({ handler: 'sqaure' }));
    assertFailed(outcome, ErrorCodes.UNKNOWN_HANDLER, false);
    assert.match(outcome.error!, /square/);
    await ex.close();
  });
});

describe('handler module configuration', () => {
  async function initError(handlerModules: string[], options: ExecutorOptions = {}): Promise<ZkfarmError> {
    const ex = new Executor({
      workdir: join(await tempDir(), 'work'),
      handlerModules,
      pool,
      taskDirs: 'always',
      ...options,
    });
    try {
      await ex.init();
    } catch (err) {
      assert.ok(err instanceof ZkfarmError, String(err));
      // run() reports the same failure instead of throwing.
      const outcome = await ex.run(request({ handler: 'noop' }));
      assertFailed(outcome, err.code, false);
      await ex.close();
      return err;
    }
    await ex.close();
    assert.fail('init() should have failed');
  }

  test('a missing module is CONFIG_INVALID naming the module', async () => {
    const err = await initError(['./test/fixtures/does-not-exist.mjs']);
    assert.equal(err.code, ErrorCodes.CONFIG_INVALID);
    // Names the module as written and where it was looked for.
    assert.ok(err.message.includes('"./test/fixtures/does-not-exist.mjs"'), err.message);
    assert.ok(
      err.message.includes(`no file at ${join(process.cwd(), 'test/fixtures/does-not-exist.mjs')}`),
      err.message,
    );
    const pkg = await initError(['no-such-package-zkfarm']);
    assert.equal(pkg.code, ErrorCodes.CONFIG_INVALID);
    assert.match(pkg.message, /no-such-package-zkfarm/);
  });

  test('a module with no functions, or one redefining a name, is CONFIG_INVALID', async () => {
    const none = await initError([NO_HANDLERS]);
    assert.equal(none.code, ErrorCodes.CONFIG_INVALID);
    assert.match(none.message, /no-handlers\.mjs.*exports no functions/);

    const twice = await initError([FIXTURE, CLASH]);
    assert.equal(twice.code, ErrorCodes.CONFIG_INVALID);
    assert.match(twice.message, /"square" is defined twice/);

    const inline = await initError([FIXTURE], { handlers: { cube: () => 1 } });
    assert.match(inline.message, /"cube" is defined twice.*handlers option/);
  });

  test('createHandlerPool checks its options, naming the option', () => {
    for (const [options, message] of [
      [{ maxThreads: 0 }, /maxThreads must be an integer >= 1, got 0/],
      [{ minThreads: 3, maxThreads: 2 }, /minThreads \(3\) must not exceed maxThreads \(2\)/],
      [{ idleTimeout: -1 }, /idleTimeout/],
      [{ maxthreads: 2 }, /unknown handler pool option maxthreads/],
    ] as const) {
      assert.throws(
        () => createHandlerPool(options as never),
        (err: unknown) =>
          err instanceof ZkfarmError && err.code === ErrorCodes.CONFIG_INVALID && message.test(err.message),
      );
    }
  });

  test('an unused pool has no threads; a closed pool refuses work', async () => {
    const own = createHandlerPool({ maxThreads: 1 });
    assert.equal(own.threads, 0);
    assert.equal(own.maxThreads, 1);
    assert.deepEqual(await own.listHandlers(pathToFileURL(NO_HANDLERS).href), []);
    assert.equal(own.threads, 1);
    await own.close();
    await own.close();
    assert.equal(own.threads, 0);
    await assert.rejects(own.listHandlers(FIXTURE_URL), (err: unknown) => {
      return err instanceof ZkfarmError && err.code === ErrorCodes.TASK_ABORTED;
    });
  });

  const poolCall = (handler: string, input: unknown, taskId: string) => ({
    module: FIXTURE_URL,
    handler,
    input,
    taskId,
    attempt: 1,
    outputDir: '/x',
  });

  test('calls waiting behind threads that timeouts terminated still run (no call is stranded)', async () => {
    // Every thread is running a call that will be killed, with more calls waiting: once the threads are
    // terminated, the waiting calls must get new ones.
    const own = createHandlerPool({ maxThreads: 2 });
    try {
      const stuck = [0, 1].map((i) =>
        own.run(poolCall('blockForever', null, `b${i}`), {
          timeoutMs: 300,
          signal: new AbortController().signal,
        }),
      );
      const squares = [0, 1, 2, 3].map((i) =>
        own.run(poolCall('square', i, `s${i}`), { signal: new AbortController().signal }),
      );
      for (const s of stuck) {
        await assert.rejects(
          s,
          (err: unknown) => err instanceof ZkfarmError && err.code === ErrorCodes.TASK_TIMEOUT,
        );
      }
      assert.deepEqual(await withDeadline(Promise.all(squares), 20_000), [0, 1, 4, 9]);
    } finally {
      await own.close();
    }
  });

  test("a call's timeout counts from when it gets a thread, not while it waits for one", async () => {
    const own = createHandlerPool({ maxThreads: 1 });
    try {
      const first = own.run(poolCall('holdFor', 1500, 'slow'));
      // Waits ~1.5 s for the only thread, far past its own 1 s timeout, then runs in well under it.
      const second = own.run(poolCall('square', 5, 'quick'), { timeoutMs: 1000 });
      assert.equal(await first, 1500);
      assert.equal(await withDeadline(second, 20_000), 25);
    } finally {
      await own.close();
    }
  });

  test('a waiting call aborted before it gets a thread is TASK_ABORTED and never runs; close() ends the rest', async () => {
    const own = createHandlerPool({ maxThreads: 1 });
    const dir = await tempDir();
    try {
      const first = own.run(poolCall('holdFor', 500, 'hold'));
      const ac = new AbortController();
      const aborted = own.run(
        { ...poolCall('writesFile', 'never', 'aborted'), outputDir: dir },
        { signal: ac.signal },
      );
      ac.abort('caller gave up');
      await assert.rejects(
        aborted,
        (err: unknown) => err instanceof ZkfarmError && err.code === ErrorCodes.TASK_ABORTED,
      );
      assert.equal(await first, 500);
      // The thread is free again: the aborted call did not run in the meantime.
      assert.equal(await own.run(poolCall('square', 3, 'after')), 9);
      assert.equal(existsSync(join(dir, 'out.txt')), false);
      const settled = Promise.allSettled([
        own.run(poolCall('holdFor', 5000, 'hold2')),
        own.run(poolCall('square', 4, 'waits')),
      ]);
      await own.close();
      for (const r of await settled) {
        assert.equal(r.status, 'rejected');
        assert.equal((r as PromiseRejectedResult).reason.code, ErrorCodes.TASK_ABORTED);
      }
    } finally {
      await own.close();
    }
  });

  test('HandlerPool.run honours its own timeoutMs', async () => {
    const own = createHandlerPool({ maxThreads: 1 });
    try {
      const call = {
        module: FIXTURE_URL,
        handler: 'blockForever',
        input: null,
        taskId: 't',
        attempt: 1,
        outputDir: '/x',
      };
      await assert.rejects(
        withDeadline(own.run(call, { timeoutMs: 300 }), 10_000),
        (err: unknown) => err instanceof ZkfarmError && err.code === ErrorCodes.TASK_TIMEOUT,
      );
    } finally {
      await own.close();
    }
  });
});
