import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cancelledStatus, encodeCancelRequest, parseCancelRequest } from '../../src/farm/cancel-request.js';
import { cancel } from '../../src/farm/moves.js';
import { assignPath, backlogPath, statusPath, taskPath } from '../../src/farm/protocol.js';

test('a cancel request: who and why read leniently; bad data still a request, with a note', () => {
  assert.deepEqual(parseCancelRequest(Buffer.from('{"by":"ops","reason":"typo"}')), {
    by: 'ops',
    reason: 'typo',
  });
  assert.deepEqual(parseCancelRequest(Buffer.alloc(0)), {});
  assert.deepEqual(parseCancelRequest(null), {});
  assert.deepEqual(parseCancelRequest(Buffer.from('{"by": 7, "other": true}')), {}, 'non-strings left out');
  assert.match(parseCancelRequest(Buffer.from('[1]')).reason!, /not a JSON object/);
  assert.match(parseCancelRequest(Buffer.from('{oops')).reason!, /not a JSON object/);
  assert.equal(
    parseCancelRequest(Buffer.from(JSON.stringify({ reason: 'x'.repeat(5000) }))).reason!.length,
    1024,
  );
  assert.deepEqual(parseCancelRequest(encodeCancelRequest({ by: 'a', reason: undefined })), { by: 'a' });
});

test('the cancelled status: where the task was, who, why, the task as submitted; a run counts as an attempt', () => {
  const task = { handler: 'echo', input: 1, _zkfarm: { attempts: 1, submittedAt: 5 } };
  const queued = cancelledStatus({ task, request: { by: 'a' }, while: 'queued', worker: null, now: 9 });
  assert.deepEqual(queued, {
    state: 'cancelled',
    worker: null,
    attempts: 1,
    submittedAt: 5,
    startedAt: null,
    finishedAt: 9,
    cancelledBy: 'a',
    reason: undefined,
    cancelledWhile: 'queued',
    task: { handler: 'echo', input: 1 },
    retryOf: undefined,
  });
  const ran = cancelledStatus({ task, request: {}, while: 'running', worker: 'w', startedAt: 7 });
  assert.equal(ran.attempts, 2);
  assert.equal(ran.startedAt, 7);
});

test('the cancel move: status create and delete where the task was, at the version read', () => {
  const task = { handler: 'echo' };
  const id = 'task-0000000042';
  const fromInbox = cancel(id, task, {}, { from: taskPath(id), version: 3, while: 'queued' });
  assert.deepEqual(
    fromInbox.ops.map((o) => [o.op, o.path, 'version' in o ? o.version : undefined]),
    [
      ['create', statusPath(id), undefined],
      ['delete', taskPath(id), 3],
    ],
  );
  assert.equal(fromInbox.from, undefined, 'from /tasks: no backlog bookkeeping');
  const fromBacklog = cancel(id, task, {}, { from: backlogPath('q', 2, id), version: 0, while: 'queued' });
  assert.equal(fromBacklog.from, backlogPath('q', 2, id), 'the leader forgets it in its backlog index');
  const held = cancel(
    id,
    task,
    {},
    { from: assignPath('w', id), version: 1, while: 'assigned', worker: 'w' },
  );
  assert.equal(held.worker, 'w');
  assert.equal(held.from, undefined);
  assert.equal(held.status?.cancelledWhile, 'assigned');
});
