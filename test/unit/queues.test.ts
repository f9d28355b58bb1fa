import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTask } from '../../src/farm/protocol.js';
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
