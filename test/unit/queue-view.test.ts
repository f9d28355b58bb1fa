import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_SLEEP_MS, QueueView } from '../../src/farm/queue-view.js';

const id = (n: number) => `task-${String(n).padStart(10, '0')}`;
const ids = (...ns: number[]) => ns.map(id);
const always = () => true;

test('oldest first; a task given back (an older id) goes ahead of newer ones', () => {
  const v = new QueueView();
  v.listed(ids(3, 4, 5), 0);
  assert.deepEqual(v.pick(2, 0, always), ids(3, 4));
  v.moved(id(3), 1);
  v.listed(ids(1, 4, 5, 6), 2);
  assert.deepEqual(v.pick(10, 0, always), ids(1, 4, 5, 6));
});

test('a listing sent before our move does not bring the moved task back; a later one does', () => {
  const v = new QueueView();
  v.listed(ids(1, 2), 10);
  v.moved(id(1), 12); // our multi, request number 12
  v.listed(ids(1, 2), 11); // sent before the multi: stale about task 1
  assert.deepEqual(v.pick(10, 0, always), ids(2));
  v.listed(ids(1, 2), 13); // sent after: task 1 is back (given back meanwhile)
  assert.deepEqual(v.pick(10, 0, always), ids(1, 2));
});

test('in flight, delayed and set-aside tasks are passed over until their time', () => {
  const v = new QueueView();
  v.listed(ids(1, 2, 3, 4), 0);
  v.begin([id(1)]);
  v.delay(id(2), 3000);
  const aside = v.setAside(id(3), 'it has child nodes', 0)!;
  assert.ok(aside.retryAt > 3000);
  assert.deepEqual(v.pick(10, 1000, always), ids(4));
  v.end([id(1)]);
  assert.deepEqual(v.pick(10, 3000, always), ids(1, 2, 4));
  assert.deepEqual(v.pick(10, aside.retryAt, always), ids(1, 2, 3, 4));
  // Set aside again: the next retry is later (backoff).
  const again = v.setAside(id(3), 'it has child nodes', aside.retryAt)!;
  assert.ok(again.retryAt - aside.retryAt > aside.retryAt);
});

test('tasks whose need has no room are passed over: they do not hold back the ones behind them', () => {
  const v = new QueueView();
  v.listed(ids(1, 2, 3, 4, 5), 0);
  v.need(id(1), 'shell');
  v.need(id(2), 'shell');
  v.need(id(3), 'handler:echo');
  const shellPaused = (need: string) => need !== 'shell';
  assert.deepEqual(v.pick(2, 0, shellPaused), ids(3, 4));
  assert.deepEqual(v.pick(10, 0, always), ids(1, 2, 3, 4, 5));
  const s = v.summary(0, (need) =>
    need === 'shell' ? 'every worker that runs shell tasks is paused' : undefined,
  );
  assert.deepEqual(s.blocked, [
    { needs: 'shell', tasks: 2, reason: 'every worker that runs shell tasks is paused' },
  ]);
});

test('a wait beyond the timer range is bounded; a task that left the queue is forgotten', () => {
  const v = new QueueView();
  v.listed(ids(1, 2), 0);
  v.delay(id(1), 30 * 86_400_000);
  assert.equal(v.nextWake(0), MAX_SLEEP_MS);
  v.delay(id(2), 1500);
  assert.equal(v.nextWake(0), 1500);
  assert.equal(v.summary(0, () => undefined).delayed, 2);
  v.setAside(id(2), 'refused', 0);
  v.listed(ids(1), 1);
  assert.equal(v.nextWake(0), MAX_SLEEP_MS, 'task 2 left: its delay and set-aside are gone');
  assert.equal(v.summary(0, () => undefined).setAsideCount, 0);
  v.listed([], 2);
  assert.equal(v.nextWake(0), undefined);
});

test('the summary lists set-aside tasks oldest first, at most 20, with an exact count', () => {
  const v = new QueueView();
  const all = Array.from({ length: 30 }, (_, i) => id(i));
  v.listed(all, 0);
  for (const t of [...all].reverse()) v.setAside(t, `reason ${t}`, 0);
  const s = v.summary(0, () => undefined);
  assert.equal(s.setAsideCount, 30);
  assert.equal(s.setAside.length, 20);
  assert.deepEqual(s.setAside[0], { id: id(0), reason: `reason ${id(0)}` });
  assert.equal(v.asideReason(id(5)), `reason ${id(5)}`);
});
