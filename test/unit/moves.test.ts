import assert from 'node:assert/strict';
import { test } from 'node:test';
import { admit } from '../../src/farm/admission.js';
import {
  afterLoss,
  assign,
  complete,
  delay,
  discard,
  encodeStatus,
  fail,
  failedStatus,
  giveBack,
  reject,
  requeue,
  STATUS_MAX_BYTES,
  undelay,
} from '../../src/farm/moves.js';
import { encode, MAX_TIME_MS, TASK_MAX_BYTES } from '../../src/farm/protocol.js';

const T = 'task-0000000007';
const ops = (m: { ops: readonly { op: string; path: string; version?: number }[] }) =>
  m.ops.map((o) => `${o.op} ${o.path}${o.version !== undefined ? ` @${o.version}` : ''}`);
const json = (m: { ops: readonly { op: string; data?: Buffer }[] }) =>
  JSON.parse(String(m.ops.find((o) => o.op === 'create')!.data));

test('assign: the task moves to the worker at the version read, guarded by the registration', () => {
  const m = assign(T, 'w1', encode({ handler: 'noop' }), 3);
  assert.deepEqual(ops(m), [`create /assign/w1/${T}`, `delete /tasks/${T} @3`]);
  assert.deepEqual(m.guards, ['/workers/w1']);
});

test('give back, requeue after a failure, and after a loss: each back to /tasks, the last two counting an attempt', () => {
  const task = { handler: 'fail', maxAttempts: 3, _zkfarm: { attempts: 0, submittedAt: 5 } };
  assert.deepEqual(ops(giveBack(T, 'w1', task, 2)), [`create /tasks/${T}`, `delete /assign/w1/${T} @2`]);
  assert.deepEqual(json(giveBack(T, 'w1', task)), task);
  const r = requeue(T, 'w1', task, { state: 'failed', error: 'boom' }, 500, 1000)!;
  assert.equal(r.kind, 'requeue');
  assert.deepEqual(json(r)._zkfarm, { attempts: 1, submittedAt: 5, notBefore: 1500, lastError: 'boom' });
  const second = requeue(T, 'w1', { ...task, _zkfarm: { attempts: 1 } }, { state: 'failed' }, 500, 1000)!;
  assert.equal(json(second)._zkfarm.notBefore, 2000, 'the delay doubles (src/backoff.ts)');
  assert.equal(requeue(T, 'w1', { ...task, _zkfarm: { attempts: 2 } }, { state: 'failed' }, 500), undefined);
  assert.equal(requeue(T, 'w1', task, { state: 'failed', retryable: false }, 500), undefined);
  assert.equal(requeue(T, 'w1', task, { state: 'succeeded' }, 500), undefined);
  const lost = afterLoss(T, 'w2', task, 4);
  assert.equal(lost.kind, 'requeue');
  assert.deepEqual(json(lost)._zkfarm, { attempts: 1, submittedAt: 5, lostOn: ['w2'] });
  assert.deepEqual(ops(lost), [`create /tasks/${T}`, `delete /assign/w2/${T} @4`]);
});

test('lost too often: a failed status with ZKFARM_WORKER_LOST instead', () => {
  const m = afterLoss(T, 'w1', { handler: 'noop', _zkfarm: { attempts: 2, lostOn: ['w1', 'w2'] } });
  assert.equal(m.kind, 'fail');
  assert.deepEqual(ops(m), [`create /status/000000/${T}`, `delete /assign/w1/${T} @-1`]);
  assert.equal(m.status?.errorCode, 'ZKFARM_WORKER_LOST');
  assert.equal(m.status?.attempts, 3);
  assert.match(m.status?.error ?? '', /lost 3 times \(w1, w2, w1\)/);
});

test('complete, fail, reject and discard: the one status object, and where each comes from', () => {
  const done = complete(
    T,
    'w1',
    { handler: 'echo', _zkfarm: { attempts: 1, submittedAt: 9 } },
    {
      state: 'succeeded',
      result: 42,
      startedAt: 10,
      finishedAt: 20,
    },
  );
  assert.deepEqual(ops(done), [`create /status/000000/${T}`, `delete /assign/w1/${T} @-1`]);
  assert.deepEqual(json(done), {
    state: 'succeeded',
    worker: 'w1',
    queue: 'default',
    attempts: 2,
    submittedAt: 9,
    startedAt: 10,
    finishedAt: 20,
    result: 42,
  });
  const why = { error: 'not a task', errorCode: 'ZKFARM_INVALID_TASK' };
  assert.deepEqual(ops(fail(T, 'w1', why)), [`create /status/000000/${T}`, `delete /assign/w1/${T} @-1`]);
  const r = reject(T, { ...why, submittedAt: 3 }, 6);
  assert.deepEqual(ops(r), [`create /status/000000/${T}`, `delete /tasks/${T} @6`]);
  assert.deepEqual(
    { ...json(r), finishedAt: 0 },
    { ...failedStatus({ worker: null, ...why, submittedAt: 3 }), finishedAt: 0 },
  );
  assert.deepEqual(ops(discard(T, 'w1')), [`check /status/000000/${T}`, `delete /assign/w1/${T}`]);
});

test('a status too large for a znode loses its result, then the tail of its error', () => {
  const big = failedStatus({ worker: 'w', error: 'x'.repeat(300_000), errorCode: 'E' });
  const withResult = { ...big, error: 'short', result: 'y'.repeat(300_000) };
  const a = JSON.parse(String(encodeStatus(withResult)));
  assert.equal(a.result, undefined);
  assert.equal(a.resultTruncated, true);
  const b = encodeStatus(big);
  assert.ok(b.length <= STATUS_MAX_BYTES);
  assert.ok(JSON.parse(String(b)).error.length < 5000);
});

test('admission: reject what is not a task or too large or badly scheduled; wait for notBefore; add the submit time', () => {
  const now = 1_000_000;
  assert.equal(admit(Buffer.from('{'), 1, now).verdict, 'reject');
  const huge = encode({ handler: 'echo', input: 'x'.repeat(TASK_MAX_BYTES) });
  const tooBig = admit(huge, 1, now);
  assert.ok(tooBig.verdict === 'reject' && /at most/.test(tooBig.failure.error));
  for (const notBefore of [1e300, -1, 1.5, MAX_TIME_MS + 1]) {
    const a = admit(encode({ handler: 'noop', _zkfarm: { attempts: 0, notBefore } }), 1, now);
    assert.ok(a.verdict === 'reject' && /notBefore/.test(a.failure.error), `notBefore ${notBefore}`);
  }
  const later = admit(
    encode({ handler: 'noop', _zkfarm: { attempts: 0, notBefore: now + 30 * 86_400_000 } }),
    1,
    now,
  );
  assert.ok(later.verdict === 'wait');
  assert.deepEqual(
    { until: later.until, need: later.need, queue: later.queue },
    { until: now + 30 * 86_400_000, need: 'handler:noop', queue: 'default' },
  );
  const badQueue = admit(encode({ handler: 'noop', queue: 'a/b' }), 1, now);
  assert.ok(badQueue.verdict === 'reject' && badQueue.failure.errorCode === 'ZKFARM_INVALID_TASK');
  assert.match(badQueue.failure.error, /"queue": must be a queue name/);
  const badPriority = admit(encode({ handler: 'noop', priority: -1 }), 1, now);
  assert.ok(badPriority.verdict === 'reject' && /"priority"/.test(badPriority.failure.error));
  const run = admit(encode({ cmd: 'true' }), 77, now);
  assert.ok(run.verdict === 'run');
  assert.equal(run.need, 'shell');
  assert.deepEqual(JSON.parse(String(run.data))._zkfarm, { attempts: 0, submittedAt: 77 });
  const data = encode({ cmd: 'true', _zkfarm: { attempts: 1, submittedAt: 5 } });
  const again = admit(data, 77, now);
  assert.ok(again.verdict === 'run' && again.data === data, 'a task that has its submit time moves as it is');
});

test("a task's own retry policy spaces its runs: fixed, or exponential up to its cap", () => {
  const base = { handler: 'fail', maxAttempts: 10 };
  const wait = (retry: object, attempts: number) =>
    json(requeue(T, 'w1', { ...base, retry, _zkfarm: { attempts } } as never, { state: 'failed' }, 500, 0)!)
      ._zkfarm.notBefore;
  assert.deepEqual(
    [0, 1, 2, 3].map((a) => wait({ delayMs: 2000, backoff: 'fixed' }, a)),
    [2000, 2000, 2000, 2000],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((a) => wait({ delayMs: 1000, maxDelayMs: 5000 }, a)),
    [1000, 2000, 4000, 5000],
  );
  assert.equal(wait({ delayMs: 60_000 }, 3), 60_000, 'without a cap a long first wait is its own cap');
});

test('a failed status keeps the task as submitted (for re-runs); a succeeded one does not', () => {
  const task = {
    handler: 'fail',
    input: 1,
    _zkfarm: { attempts: 0, submittedAt: 5, retryOf: 'task-0000000001' },
  };
  const failed = complete(T, 'w1', task, { state: 'failed', startedAt: 1, finishedAt: 2, error: 'x' });
  assert.deepEqual(failed.status!.task, { handler: 'fail', input: 1 });
  assert.equal(failed.status!.retryOf, 'task-0000000001', 'the link to the task it re-ran');
  const ok = complete(T, 'w1', task, { state: 'succeeded', startedAt: 1, finishedAt: 2 });
  assert.equal(ok.status!.task, undefined);
  const lost = afterLoss(T, 'w1', { handler: 'noop', _zkfarm: { attempts: 2, lostOn: ['w1', 'w2'] } });
  assert.deepEqual(lost.status!.task, { handler: 'noop' }, 'a task failed by worker loss too');
  const huge = { handler: 'fail', input: 'x'.repeat(STATUS_MAX_BYTES) };
  const stored = JSON.parse(
    String(encodeStatus(complete(T, 'w1', huge, { state: 'failed', startedAt: 1, finishedAt: 2 }).status!)),
  );
  assert.equal(stored.task, undefined, 'a task too large for the status is left out');
  assert.equal(stored.taskOmitted, true);
});

test('delay: /tasks → /delayed/<slot>/<id> at the version read, the due time and submit time written in; undelay: back, unchanged', () => {
  const due = 1_800_000_000_000 + 5; // the hour 500000
  const task = { handler: 'echo', delayMs: 60_000, _zkfarm: { attempts: 0 } };
  const m = delay(T, task, due, 1234, 2);
  assert.equal(m.kind, 'delay');
  assert.equal(m.due, due);
  assert.deepEqual(ops(m), [`create /delayed/0000500000/${T}`, `delete /tasks/${T} @2`]);
  assert.equal(m.to, `/delayed/0000500000/${T}`);
  assert.deepEqual(json(m), { ...task, _zkfarm: { attempts: 0, submittedAt: 1234, notBefore: due } });
  const retried = delay(T, { handler: 'echo', _zkfarm: { attempts: 2, submittedAt: 9 } }, due, 1234, 0);
  assert.equal(json(retried)._zkfarm.submittedAt, 9, 'a task taken in before keeps its submit time');
  const data = encode(json(m));
  const back = undelay(T, m.to!, data, 4);
  assert.equal(back.kind, 'undelay');
  assert.deepEqual(ops(back), [`create /tasks/${T}`, `delete /delayed/0000500000/${T} @4`]);
  const create = back.ops[0]!;
  assert.ok(create.op === 'create' && create.data === data, 'data unchanged');
});

test('admission of runAt and delayMs: due from the node creation, counted once, too far ahead refused', () => {
  const ctime = 1_000_000;
  const waitOf = (t: object, now = ctime) => {
    const a = admit(encode({ handler: 'noop', ...t }), ctime, now);
    return a.verdict === 'wait' ? a.until : a.verdict;
  };
  assert.equal(waitOf({ delayMs: 2000 }), ctime + 2000, "delayMs counts from the node's ctime");
  assert.equal(waitOf({ delayMs: 2000 }, ctime + 2000), 'run', 'due: it runs');
  assert.equal(waitOf({ runAt: ctime + 500 }), ctime + 500);
  assert.equal(waitOf({ runAt: new Date(ctime + 500).toISOString() }), ctime + 500, 'an ISO time');
  assert.equal(waitOf({ runAt: ctime + 500, delayMs: 900 }), ctime + 900, 'the later of the two');
  assert.equal(
    waitOf({ delayMs: 2000, _zkfarm: { attempts: 1, submittedAt: 1 } }),
    'run',
    'a task the farm took in before is not delayed again (only its notBefore counts)',
  );
  const far = admit(encode({ handler: 'noop', runAt: ctime + 367 * 86_400_000 }), ctime, ctime);
  assert.ok(far.verdict === 'reject' && far.failure.errorCode === 'ZKFARM_INVALID_TASK');
  assert.match(far.failure.error, /"runAt": .* 367 days after the task was submitted; .* at most 366 days/);
});
