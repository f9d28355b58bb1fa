import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkTask,
  isPlainStatus,
  isPlainValidTask,
  isStatusBucket,
  isTaskId,
  parseStatus,
  parseTask,
  parseWorkerInfo,
  statusBucket,
  statusPath,
  statusSchema,
  taskSchema,
  validateName,
} from '../../src/farm/protocol.js';

test('tasks: the two forms parse, unknown fields are kept', () => {
  const a = parseTask('{"cmd":"ps -e","owner":"ops"}');
  assert.ok(a.ok);
  assert.equal(a.task.cmd, 'ps -e');
  assert.equal(a.task['owner'], 'ops');
  const b = parseTask(Buffer.from('{"handler":"echo","input":{"x":[1,2]},"timeoutMs":500,"maxAttempts":3}'));
  assert.ok(b.ok);
  assert.deepEqual(b.task.input, { x: [1, 2] });
});

test('tasks: each kind of bad data gets a readable reason', () => {
  const reason = (d: string | null) => {
    const r = parseTask(d);
    assert.equal(r.ok, false, `expected ${d} to be refused`);
    return r.ok ? '' : r.error;
  };
  assert.match(reason(null), /empty/);
  assert.match(reason('{"cmd": '), /not valid JSON/);
  assert.match(reason('[1,2]'), /must be a JSON object, got an array/);
  assert.match(reason('"hello"'), /got string/);
  assert.match(reason('null'), /got null/);
  assert.match(reason('{}'), /exactly one of "cmd".*or "handler"/);
  assert.match(reason('{"cmd":"a","handler":"b"}'), /exactly one/);
  assert.match(reason('{"handler":""}'), /"handler": must be a non-empty string/);
  assert.match(reason('{"handler":"echo","timeoutMs":-5}'), /"timeoutMs"/);
  assert.match(reason('{"handler":"echo","maxAttempts":0}'), /"maxAttempts"/);
  assert.match(
    reason('{"handler":"echo","retry":{"delayMs":-1}}'),
    /"retry.delayMs": must be a whole number of ms/,
  );
  assert.match(reason('{"handler":"echo","retry":{"delayMs":5,"backoff":"linear"}}'), /"retry.backoff"/);
  assert.match(reason('{"handler":"echo","retry":{"delayMs":5,"jitter":true}}'), /"retry"/);
  assert.equal(parseTask('{"handler":"echo","retry":{"delayMs":5,"backoff":"fixed"}}').ok, true);
  assert.throws(
    () => checkTask({ nothing: true }),
    (e: unknown) => (e as { code?: string }).code === 'ZKFARM_INVALID_TASK',
  );
});

test('status: required fields are checked', () => {
  const s = parseStatus(
    '{"state":"succeeded","worker":"w1","attempts":1,"startedAt":1,"finishedAt":2,"result":5}',
  );
  assert.equal(s.result, 5);
  assert.throws(() =>
    parseStatus('{"state":"done","worker":"w1","attempts":1,"startedAt":1,"finishedAt":2}'),
  );
  assert.throws(() => parseStatus('{"state":"failed"}'));
});

test('the fast result check never accepts what the schema refuses, and accepts what workers write', () => {
  const base = { state: 'succeeded', worker: 'w1', attempts: 1, startedAt: 1, finishedAt: 2 };
  const variants: unknown[] = [
    base,
    { ...base, worker: null, startedAt: null, attempts: 0, state: 'cancelled', reason: 'x' },
    { ...base, state: 'failed', error: 'boom', task: { handler: 'h' } },
    { ...base, state: 'done' },
    { ...base, state: undefined },
    { ...base, worker: 5 },
    { ...base, worker: undefined },
    { ...base, attempts: -1 },
    { ...base, attempts: 1.5 },
    { ...base, attempts: '1' },
    { ...base, startedAt: '1' },
    { ...base, startedAt: undefined },
    { ...base, finishedAt: null },
    { ...base, finishedAt: undefined },
    null,
    [],
    'succeeded',
    7,
  ];
  for (const v of variants) {
    const accepted = statusSchema().safeParse(v).success;
    if (isPlainStatus(v))
      assert.ok(accepted, `fast check accepted what the schema refuses: ${JSON.stringify(v)}`);
    else assert.equal(accepted, false, `fast check refused what the schema accepts: ${JSON.stringify(v)}`);
  }
  assert.ok(isPlainStatus(base));
});

test('names: safe as znode and directory names, path escapes refused', () => {
  assert.equal(validateName('worker', 'host-a.worker_1'), 'host-a.worker_1');
  for (const bad of ['', '..', '.', '../../etc', 'a/b', '-x', 'a b', 'x'.repeat(129)]) {
    assert.throws(
      () => validateName('worker', bad),
      (e: unknown) => (e as { code?: string }).code === 'ZKFARM_INVALID_NAME',
      bad,
    );
  }
  assert.ok(isTaskId('task-0000000042'));
  assert.ok(!isTaskId('task-42'));
});

test('worker info: bad data means "not ready", never a crash', () => {
  assert.equal(parseWorkerInfo(Buffer.from('nope')), undefined);
  assert.equal(parseWorkerInfo(Buffer.from('{"capacity":0}')), undefined);
  const info = parseWorkerInfo(Buffer.from('{"capacity":4,"prefetch":2,"paused":false}'));
  assert.equal(info?.capacity, 4);
  assert.equal(parseWorkerInfo(Buffer.from('{"capacity":4,"draining":true}'))?.paused, true);
});

test('the fast task check never accepts what the schema refuses, and accepts the common tasks', () => {
  // Values for each field, good and bad, including the edges of every rule.
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
  const any = [
    undefined,
    null,
    '',
    'x',
    0,
    -1,
    1,
    1.5,
    100,
    101,
    2 ** 53,
    Number.NaN,
    true,
    [],
    ['a'],
    [1],
    {},
  ];
  const strings = ['', 'echo', 'sleep 1', ...any];
  const metaValues = [
    undefined,
    null,
    [],
    'meta',
    {},
    { attempts: 0 },
    { attempts: 2, lostOn: ['w1'], submittedAt: 1.5e12, notBefore: 1, lastError: 'boom' },
  ];
  let fastAccepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const v: Record<string, unknown> = {};
    const set = (k: string, x: unknown) => {
      if (x !== undefined) v[k] = x;
    };
    set('cmd', Math.random() < 0.5 ? undefined : pick(strings));
    set('handler', Math.random() < 0.3 ? undefined : pick(strings));
    if (Math.random() < 0.3) set('input', pick(any));
    if (Math.random() < 0.3) set('timeoutMs', pick(any));
    if (Math.random() < 0.3) set('maxAttempts', pick(any));
    if (Math.random() < 0.4) {
      let meta = pick(metaValues);
      if (meta && typeof meta === 'object' && !Array.isArray(meta) && Math.random() < 0.5) {
        meta = {
          ...meta,
          [pick(['attempts', 'notBefore', 'lastError', 'lostOn', 'submittedAt'])]: pick(any),
        };
      }
      set('_zkfarm', meta);
    }
    if (Math.random() < 0.2) set('owner', pick(any));
    // JSON first: a task only ever reaches the check as parsed JSON.
    const task = JSON.parse(JSON.stringify(v)) as Record<string, unknown>;
    if (isPlainValidTask(task)) {
      fastAccepted++;
      assert.ok(taskSchema().safeParse(task).success, `fast check accepted ${JSON.stringify(task)}`);
    }
  }
  assert.ok(fastAccepted > 200, `the fast check accepted only ${fastAccepted} tasks`);
  for (const ok of [
    { handler: 'noop' },
    { cmd: 'ls' },
    {
      handler: 'echo',
      input: { a: 1 },
      timeoutMs: 5,
      maxAttempts: 3,
      _zkfarm: { attempts: 1, submittedAt: 1 },
    },
  ]) {
    assert.equal(isPlainValidTask(ok), true, JSON.stringify(ok));
  }
});

test('statusPath: the six leading digits of the ten-digit sequence name the bucket', () => {
  assert.equal(statusPath('task-0000123456'), '/status/000012/task-0000123456');
  assert.equal(statusPath('task-0000000042'), '/status/000000/task-0000000042');
  assert.equal(statusPath('task-0000009999'), '/status/000000/task-0000009999');
  assert.equal(statusPath('task-0000010000'), '/status/000001/task-0000010000');
  assert.equal(statusPath('task-2147483647'), '/status/214748/task-2147483647');
  // A task created under another name (a foreign client's plain create) has the bucket `other`.
  assert.equal(statusPath('job-7'), '/status/other/job-7');
  assert.equal(statusBucket('nightly-0000000123'), '000000', 'any name that ends in a sequence number');
  assert.ok(isStatusBucket('000012') && isStatusBucket('other'));
  assert.ok(!isStatusBucket('task-0000000042') && !isStatusBucket('00001'));
});
