import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INBOX_SHARE, MAX_SLEEP_MS, QueueView, READ_AHEAD_TASKS } from '../../src/farm/queue-view.js';

const id = (n: number) => `task-${String(n).padStart(10, '0')}`;
const ids = (...ns: number[]) => ns.map(id);
const always = (_q: string, _need: string) => true;
const noLimit = () => Number.POSITIVE_INFINITY;
const data = Buffer.from('{"handler":"echo"}');

/** Read `ns` into the view as tasks of `queue` with `priority` and `need`. */
function read(v: QueueView, ns: number[], queue = 'default', priority = 0, need = 'handler:echo'): void {
  for (const n of ns) v.ready(id(n), { queue, priority, need, data, version: 0 });
}

/** The ids `pick` offers for `queue`. */
const picked = (v: QueueView, queue = 'default', limit = noLimit, room: typeof always = always, now = 0) =>
  (v.pick(now, limit, room).get(queue) ?? []).map((c) => c.id);

test('unread tasks are read oldest first; ready ones go by priority, then oldest first', () => {
  const v = new QueueView();
  v.listed(ids(1, 2, 3, 4, 5), 0);
  assert.deepEqual(v.toRead(3, 0), ids(1, 2, 3));
  read(v, [1, 2], 'default', 0);
  read(v, [3], 'default', 7);
  assert.deepEqual(v.toRead(10, 0), ids(4, 5), 'what was read is not read again');
  read(v, [4], 'default', 7);
  read(v, [5], 'default', 9);
  assert.deepEqual(picked(v), ids(5, 3, 4, 1, 2));
});

test('a task given back (an older id) goes ahead of newer ones of its priority', () => {
  const v = new QueueView();
  v.listed(ids(3, 4, 5), 0);
  read(v, [3, 4, 5]);
  v.moved(id(3), 1);
  v.listed(ids(1, 4, 5, 6), 2);
  assert.deepEqual(v.toRead(10, 0), ids(1, 6));
  read(v, [6, 1]);
  assert.deepEqual(picked(v), ids(1, 4, 5, 6));
});

test('a listing sent before our move does not bring the moved task back; a later one does', () => {
  const v = new QueueView();
  v.listed(ids(1, 2), 10);
  v.moved(id(1), 12); // our multi, request number 12
  v.listed(ids(1, 2), 11); // sent before the multi: stale about task 1
  assert.deepEqual(v.toRead(10, 0), ids(2));
  v.listed(ids(1, 2), 13); // sent after: task 1 is back (given back meanwhile)
  assert.deepEqual(v.toRead(10, 0), ids(1, 2));
});

test('queues are apart: each is picked in its own order, within its own limit', () => {
  const v = new QueueView();
  v.listed(ids(1, 2, 3, 4, 5, 6), 0);
  read(v, [1, 3, 5], 'a');
  read(v, [2, 4], 'b', 1);
  read(v, [6], 'b', 2);
  const limit = (q: string) => (q === 'a' ? 2 : 0);
  const p = v.pick(0, limit, always);
  assert.deepEqual(
    p.get('a')?.map((c) => c.id),
    ids(1, 3),
  );
  assert.equal(p.has('b'), false, 'a queue with no allowance is not picked from');
  assert.deepEqual(picked(v, 'b'), ids(6, 2, 4));
});

test('in flight, delayed and set-aside tasks are passed over until their time', () => {
  const v = new QueueView();
  v.listed(ids(1, 2, 3, 4), 0);
  read(v, [1, 3, 4]);
  v.begin([id(1)]);
  v.delay(id(2), 3000, 'default');
  const aside = v.setAside(id(3), 'it has child nodes', 0)!;
  assert.ok(aside.retryAt > 3000);
  assert.deepEqual(picked(v, 'default', noLimit, always, 1000), ids(4));
  assert.deepEqual(v.toRead(10, 1000), [], 'the delayed task is not read before its time');
  v.end([id(1)]);
  assert.deepEqual(v.toRead(10, 3000), ids(2), 'due: read again');
  read(v, [2]);
  assert.deepEqual(picked(v, 'default', noLimit, always, 3000), ids(1, 2, 4));
  assert.deepEqual(picked(v, 'default', noLimit, always, aside.retryAt), ids(1, 2, 3, 4));
  // Set aside again: the next retry is later (backoff).
  const again = v.setAside(id(3), 'it has child nodes', aside.retryAt)!;
  assert.ok(again.retryAt - aside.retryAt > aside.retryAt);
});

test('tasks whose need has no room in their queue are passed over: they do not hold back the ones behind', () => {
  const v = new QueueView();
  v.listed(ids(1, 2, 3, 4, 5), 0);
  read(v, [1, 2], 'default', 0, 'shell');
  read(v, [3, 4, 5]);
  const shellPaused = (_q: string, need: string) => need !== 'shell';
  assert.deepEqual(
    picked(v, 'default', () => 2, shellPaused),
    ids(3, 4),
  );
  assert.deepEqual(picked(v), ids(1, 2, 3, 4, 5));
  const s = v.summary(0, (_q, need) =>
    need === 'shell' ? { reason: 'every worker that runs shell tasks is paused', byNeed: true } : undefined,
  );
  assert.deepEqual(s.blocked, [
    { needs: 'shell', tasks: 2, reason: 'every worker that runs shell tasks is paused' },
  ]);
  assert.deepEqual(s.queues, [
    {
      queue: 'default',
      byPriority: { 0: 5 },
      waiting: 5,
      delayed: 0,
      blocked: [{ reason: 'every worker that runs shell tasks is paused', tasks: 2, needs: 'shell' }],
    },
  ]);
});

test('the summary says per queue how many wait, by priority, and why', () => {
  const v = new QueueView();
  v.listed(ids(1, 2, 3, 4, 5, 6), 0);
  read(v, [1, 2], 'mail', 3);
  read(v, [3], 'mail', 0);
  read(v, [4], 'video');
  v.delay(id(5), 5000, 'video');
  const s = v.summary(0, (q) =>
    q === 'mail' ? { reason: 'queue "mail" is paused', byNeed: false } : undefined,
  );
  assert.equal(s.unread, 2);
  assert.equal(s.delayed, 1);
  assert.deepEqual(s.blocked, [], 'a queue-wide reason is not a need that waits');
  assert.deepEqual(s.queues, [
    {
      queue: 'mail',
      byPriority: { 0: 1, 3: 2 },
      waiting: 3,
      delayed: 0,
      blocked: [{ reason: 'queue "mail" is paused', tasks: 3 }],
    },
    { queue: 'video', byPriority: { 0: 1 }, waiting: 1, delayed: 1, blocked: [] },
  ]);
});

test('read ahead is bounded; a task read again (it changed) is unread until then', () => {
  const v = new QueueView();
  const inbox = READ_AHEAD_TASKS * INBOX_SHARE;
  const all = Array.from({ length: inbox + 5 }, (_, i) => id(i));
  v.listed(all, 0);
  const first = v.toRead(inbox + 5, 0);
  assert.equal(first.length, inbox, 'the inbox takes its share of the read-ahead');
  read(
    v,
    first.map((t) => Number(t.slice(5))),
  );
  assert.deepEqual(v.toRead(10, 0), [], 'no room to hold more');
  assert.equal(v.loadRoom, READ_AHEAD_TASKS - inbox, 'the rest is kept for the backlog');
  v.moved(id(0), 1);
  assert.deepEqual(v.toRead(10, 0), [id(inbox)]);
  v.reread(id(1));
  assert.equal(v.get(id(1)), undefined);
  assert.deepEqual(v.toRead(10, 0), ids(1, inbox));
});

test('backlog: loaded tasks go with the inbox in id order; nothing of a lane goes at or above its frontier', () => {
  const v = new QueueView();
  v.listed(ids(5, 20, 30), 0);
  read(v, [5, 20, 30]);
  const from = (n: number) => `/queues/default/p0/000000/${id(n)}`;
  for (const n of [10, 11])
    v.load(id(n), { queue: 'default', priority: 0, need: 'handler:echo', data, version: 0, from: from(n) });
  const frontier = (at: number | undefined) => () => (at === undefined ? undefined : id(at));
  const pick = (at: number | undefined) =>
    (v.pick(0, noLimit, always, frontier(at)).get('default') ?? []).map((c) => c.id);
  assert.deepEqual(pick(12), ids(5, 10, 11), 'backlog id 12 is not loaded yet: inbox 20 and 30 wait');
  assert.deepEqual(pick(undefined), ids(5, 10, 11, 20, 30));
  assert.equal(v.summary(0, () => undefined, [{ queue: 'default', priority: 0, tasks: 5 }]).unread, 0);
  const w = v.summary(0, () => ({ reason: 'paused', byNeed: false }), [
    { queue: 'default', priority: 0, tasks: 5 },
  ]).queues![0]!;
  assert.equal(w.backlog, 5);
  assert.equal(w.waiting, 3 + 5, 'the 2 loaded count once: 3 inbox + 5 in the backlog');
  assert.deepEqual(w.blocked, [{ reason: 'paused', tasks: 8 }]);
  assert.deepEqual(
    [...v.inboxReady()].map((e) => e[0]),
    ids(5, 20, 30),
    'only inbox tasks may be shelved',
  );
  v.moved(id(10));
  assert.equal(v.holds(id(10)), false);
  assert.equal(v.holds(id(11)), true);
});

test('a wait beyond the timer range is bounded; a task that left the queue is forgotten', () => {
  const v = new QueueView();
  v.listed(ids(1, 2), 0);
  v.delay(id(1), 30 * 86_400_000, 'default');
  assert.equal(v.nextWake(0), MAX_SLEEP_MS);
  v.delay(id(2), 1500, 'default');
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
