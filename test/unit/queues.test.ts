import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTask } from '../../src/farm/protocol.js';
import { queueOverview } from '../../src/farm/queue-admin.js';
import type { QueueSummary } from '../../src/farm/queue-view.js';
import {
  checkControls,
  parseControls,
  parseServedQueue,
  readServed,
  servedQueues,
  TokenBucket,
} from '../../src/farm/queues.js';

test('a worker serves `name` or `name:weight`; a bad entry is refused naming it', () => {
  assert.deepEqual(servedQueues(undefined), [{ name: 'default', weight: 1 }]);
  assert.deepEqual(servedQueues(['a', 'b:3']), [
    { name: 'a', weight: 1 },
    { name: 'b', weight: 3 },
  ]);
  for (const bad of ['', 'a:0', 'a:101', '-a', 'a b', 'a:x', `${'q'.repeat(65)}`])
    assert.equal(parseServedQueue(bad), undefined, bad);
  assert.throws(() => servedQueues(['a', 'a:2']), /listed twice/);
  assert.throws(() => servedQueues(['a:0']), { code: 'ZKFARM_INVALID_ARGUMENT', message: /"a:0"/ });
  // What a reader finds in /workers/<name>: no field (an older worker) is the default queue.
  assert.deepEqual(readServed(undefined), [{ name: 'default', weight: 1 }]);
  assert.deepEqual(readServed([{ name: 'x', weight: 500 }, { name: '../bad' }]), [
    { name: 'x', weight: 100 },
  ]);
});

test('a task names its queue and priority; bad ones are bad task data, with what was wrong', () => {
  assert.equal(parseTask('{"handler":"echo","queue":"mail.out","priority":9}').ok, true);
  const bad = (json: string) => {
    const r = parseTask(json);
    assert.equal(r.ok, false, json);
    return (r as { error: string }).error;
  };
  assert.match(bad('{"handler":"echo","queue":"a/b"}'), /"queue": must be a queue name/);
  assert.match(bad('{"handler":"echo","queue":""}'), /"queue"/);
  assert.match(bad('{"handler":"echo","priority":10}'), /"priority": must be a whole number from 0 to 9/);
  assert.match(bad('{"handler":"echo","priority":1.5}'), /"priority"/);
  assert.match(bad('{"handler":"echo","priority":"high"}'), /"priority"/);
});

test('controls: valid values pass; a bad field in the node counts as unset and is named', () => {
  assert.equal(checkControls({ paused: true, rateLimit: 0.5, concurrency: 3 }), undefined);
  assert.match(checkControls({ rateLimit: 0 })!, /rateLimit/);
  assert.match(checkControls({ concurrency: 1.5 })!, /concurrency/);
  assert.deepEqual(parseControls(Buffer.from('{"paused":true,"rateLimit":5,"concurrency":null}')), {
    controls: { paused: true, rateLimit: 5, concurrency: null },
  });
  const r = parseControls(Buffer.from('{"paused":"yes","concurrency":2}'));
  assert.deepEqual(r.controls, { paused: false, rateLimit: null, concurrency: 2 });
  assert.match(r.problem!, /paused/);
  assert.match(parseControls(Buffer.from('[1]')).problem!, /not a JSON object/);
  assert.deepEqual(parseControls(null).controls, { paused: false, rateLimit: null, concurrency: null });
});

test('token bucket: starts empty, earns `rate` a second, holds a tenth of a second (at least one)', () => {
  const b = new TokenBucket(10, 0);
  assert.equal(b.available(0), 0, 'a new bucket (a new leader) lets nothing through at once');
  assert.equal(b.msUntilToken(0), 100);
  assert.equal(b.available(100), 1);
  assert.equal(b.available(60_000), 1, 'an idle queue does not save up a burst');
  b.take(1, 60_000);
  assert.equal(b.available(60_000), 0);
  const fast = new TokenBucket(1000, 0);
  assert.equal(fast.available(1000), 100);
  fast.setRate(2, 1000);
  assert.equal(fast.available(1000), 1, 'a lower rate keeps at most its own burst');
});

test('queue overview: every queue known from controls, the leader or a worker, with who serves it', () => {
  const controls = new Map([
    ['mail', { controls: { paused: true, rateLimit: 5, concurrency: null } }],
    [
      'bad',
      {
        controls: { paused: false, rateLimit: null, concurrency: null },
        problem: 'paused: expected true or false',
      },
    ],
  ]);
  const summary: QueueSummary = {
    blocked: [],
    delayed: 0,
    setAside: [],
    setAsideCount: 0,
    queues: [
      {
        queue: 'mail',
        byPriority: { 9: 1, 0: 2 },
        waiting: 3,
        delayed: 0,
        blocked: [{ reason: 'queue "mail" is paused', tasks: 3 }],
      },
      { queue: 'video', byPriority: { 0: 4 }, waiting: 4, delayed: 1, blocked: [] },
    ],
    running: { mail: 2, old: 1 },
  };
  const worker = (queues: string[]) => ({
    capacity: 1,
    prefetch: 0,
    paused: false,
    host: 'h',
    pid: 1,
    startedAt: 0,
    queues: servedQueues(queues),
    queueOrder: 'weighted' as const,
  });
  const out = queueOverview(controls, summary, [
    ['w2', worker(['mail', 'default'])],
    ['w1', worker(['mail:3'])],
  ]);
  assert.deepEqual(
    out.map((q) => [q.queue, q.waiting, q.running, q.servedBy.join(','), q.controls.paused]),
    [
      ['bad', 0, 0, '', false],
      ['default', 0, 0, 'w2', false],
      ['mail', 3, 2, 'w1,w2', true],
      ['old', 0, 1, '', false],
      ['video', 4, 0, '', false],
    ],
  );
  assert.equal(out[0]!.problem, 'paused: expected true or false');
  assert.deepEqual(out[2]!.blocked, [{ reason: 'queue "mail" is paused', tasks: 3 }]);
  assert.deepEqual(out[2]!.byPriority, { 9: 1, 0: 2 });
});
