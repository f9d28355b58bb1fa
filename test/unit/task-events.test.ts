/**
 * task-events.ts, pure: which node changes make which event (and which make none), what each event
 * carries from the node's data, and the one-line form `runtime watch` prints.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { idNumber } from '../../src/farm/protocol.js';
import {
  classifyChange,
  eventOf,
  formatEvent,
  isFinal,
  notAhead,
  queueInData,
} from '../../src/farm/task-events.js';

const CREATED = 1;
const DELETED = 2;
const CHANGED = 3;
const ID = 'task-0000000042';

test('node changes that make events, and those that make none', () => {
  assert.deepEqual(classifyChange(CREATED, `/tasks/${ID}`), { kind: 'task', id: ID, path: `/tasks/${ID}` });
  assert.deepEqual(classifyChange(CREATED, `/assign/w1/${ID}`), {
    kind: 'assign',
    id: ID,
    worker: 'w1',
    path: `/assign/w1/${ID}`,
  });
  assert.deepEqual(classifyChange(CREATED, `/status/000000/${ID}`), {
    kind: 'status',
    id: ID,
    path: `/status/000000/${ID}`,
  });
  assert.equal(classifyChange(CREATED, `/progress/${ID}`)?.kind, 'progress');
  assert.equal(classifyChange(CHANGED, `/progress/${ID}`)?.kind, 'progress', 'a later report');
  assert.deepEqual(classifyChange(CREATED, `/queues/mail/p3/000000/${ID}`), {
    kind: 'backlog',
    id: ID,
    queue: 'mail',
  });

  for (const [type, path] of [
    [DELETED, `/tasks/${ID}`], // every delete goes with a create in the same multi: that one is the event
    [DELETED, `/assign/w1/${ID}`],
    [CHANGED, `/tasks/${ID}`],
    [CHANGED, '/tasks'], // the id mark
    [CREATED, '/tasks/zkfarm-id-floor'], // the id floor's scratch node
    [CREATED, '/assign/w1'], // a worker's own node
    [CREATED, '/status/000001'], // a bucket
    [CREATED, `/status/${ID}`], // a flat result being moved into its bucket
    [CREATED, '/queues/mail'], // controls
    [CREATED, '/queues/mail/p3/000000'], // a backlog bucket
    [CHANGED, '/queues/mail'],
    [CREATED, '/workers/w1'],
    [CREATED, '/keys/ab/abcdef'],
  ] as const)
    assert.equal(classifyChange(type, path), undefined, `${type} ${path}`);
});

test('what each event carries from the data read', () => {
  const task = { kind: 'task', id: ID, path: '' } as const;
  assert.deepEqual(eventOf(task, { json: { handler: 'echo' }, ctime: 5 }, 9), {
    type: 'queued',
    id: ID,
    at: 5,
    seen: true,
    attempt: 1,
  });
  assert.deepEqual(
    eventOf(task, { json: { handler: 'echo', _zkfarm: { attempts: 1, lastError: 'boom' } }, ctime: 5 }, 9),
    { type: 'retrying', id: ID, at: 5, seen: true, attempt: 2, error: 'boom' },
  );
  assert.deepEqual(
    eventOf(task, undefined, 9),
    { type: 'queued', id: ID, at: 9, seen: true, attempt: 1 },
    'gone before read',
  );
  const assign = { kind: 'assign', id: ID, worker: 'w2', path: '' } as const;
  assert.deepEqual(eventOf(assign, { json: { handler: 'x', _zkfarm: { attempts: 2 } }, ctime: 7 }, 9), {
    type: 'started',
    id: ID,
    at: 7,
    seen: true,
    worker: 'w2',
    attempt: 3,
  });
  const progress = { kind: 'progress', id: ID, path: '' } as const;
  assert.deepEqual(
    eventOf(
      progress,
      { json: { worker: 'w2', attempt: 1, value: 40, message: 'copying', at: 6 }, ctime: 3 },
      9,
    ),
    {
      type: 'progress',
      id: ID,
      at: 6,
      seen: true,
      worker: 'w2',
      attempt: 1,
      value: 40,
      message: 'copying',
    },
  );
  assert.equal(eventOf(progress, undefined, 9), undefined, 'a report gone before it was read: superseded');
  const status = { kind: 'status', id: ID, path: '' } as const;
  const failed = {
    state: 'failed',
    worker: 'w2',
    attempts: 2,
    finishedAt: 8,
    error: 'no',
    errorCode: 'ZKFARM_HANDLER_FAILED',
  };
  assert.deepEqual(eventOf(status, { json: failed, ctime: 9 }, 10), {
    type: 'failed',
    id: ID,
    at: 8,
    seen: true,
    worker: 'w2',
    attempt: 2,
    error: 'no',
    errorCode: 'ZKFARM_HANDLER_FAILED',
  });
  const cancelled = eventOf(
    status,
    { json: { state: 'cancelled', worker: null, attempts: 0, finishedAt: 8 }, ctime: 9 },
    10,
  )!;
  assert.equal(cancelled.type, 'cancelled', "a result's state passes as it is");
  assert.ok(isFinal(cancelled));
  assert.ok(!isFinal({ type: 'retrying', id: ID, at: 0, seen: true }));
  assert.equal(eventOf({ kind: 'backlog', id: ID, queue: 'q' }, undefined, 1), undefined);
});

test('the queue a node says, and the line runtime watch prints', () => {
  assert.equal(queueInData({ kind: 'task', id: ID, path: '' }, { handler: 'x' }), 'default');
  assert.equal(
    queueInData({ kind: 'assign', id: ID, worker: 'w', path: '' }, { handler: 'x', queue: 'mail' }),
    'mail',
  );
  assert.equal(
    queueInData({ kind: 'status', id: ID, path: '' }, { state: 'succeeded' }),
    undefined,
    'a success keeps no task',
  );
  assert.equal(
    queueInData({ kind: 'status', id: ID, path: '' }, { state: 'failed', task: { queue: 'q' } }),
    'q',
  );
  assert.equal(queueInData({ kind: 'backlog', id: ID, queue: 'deep' }, undefined), 'deep');
  assert.equal(
    formatEvent({
      type: 'progress',
      id: ID,
      at: 0,
      seen: false,
      worker: 'w1',
      queue: 'mail',
      attempt: 1,
      value: 40,
      message: 'copying',
    }),
    `1970-01-01T00:00:00.000Z  ${ID}  progress   on w1  queue mail  attempt 1  40  copying  (inferred)`,
  );
  assert.equal(idNumber(ID), 42);
  assert.equal(idNumber('job-7'), -1);
});

test('after a catch-up, a notification it already reflected is told only if it takes the task further', () => {
  const ev = (type: string, attempt?: number) => ({
    type,
    id: ID,
    at: 0,
    seen: true,
    ...(attempt ? { attempt } : {}),
  });
  // The catch-up told `started` for a task it had never seen: the notifications of its queueing and
  // assignment, still in the pipeline, are behind it.
  assert.ok(notAhead(ev('queued', 1), { last: 'started' }));
  assert.ok(notAhead(ev('started'), { last: 'started' }));
  // Its result, or a later run, goes further.
  assert.ok(!notAhead(ev('succeeded'), { last: 'started' }));
  assert.ok(!notAhead(ev('retrying', 2), { last: 'started', attempt: 1 }));
  assert.ok(!notAhead(ev('started', 2), { last: 'retrying', attempt: 2 }));
  assert.ok(notAhead(ev('started', 1), { last: 'retrying', attempt: 2 }), 'an earlier run');
  assert.ok(!notAhead(ev('started'), { last: 'queued' }));
  assert.ok(!notAhead(ev('progress'), { last: 'queued' }));
});

test('a delayed task: its node in the due-time area makes `delayed` until its due time; a slot makes none', () => {
  const path = `/delayed/0000493000/${ID}`;
  assert.deepEqual(classifyChange(CREATED, path), { kind: 'delayed', id: ID, path });
  assert.equal(classifyChange(CREATED, '/delayed/0000493000'), undefined, 'a slot');
  assert.equal(
    classifyChange(DELETED, path),
    undefined,
    'moved back when due: the /tasks create is the event',
  );
  const raw = classifyChange(CREATED, path)!;
  const json = {
    handler: 'echo',
    queue: 'mail',
    delayMs: 60_000,
    _zkfarm: { attempts: 0, notBefore: 1_775_000_060_000 },
  };
  const ev = eventOf(raw, { json, ctime: 1_775_000_000_100 }, 0)!;
  assert.equal(ev.type, 'delayed');
  assert.equal(ev.until, 1_775_000_060_000);
  assert.equal(ev.attempt, 1);
  assert.equal(ev.at, 1_775_000_000_100);
  assert.equal(queueInData(raw, json), 'mail');
  assert.equal(isFinal(ev), false);
});
