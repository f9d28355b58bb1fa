import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  blockedReason,
  freeSlots,
  needOf,
  planAssignments,
  roomFor,
  SHELL,
  totalFreeSlots,
  type WorkerLoad,
} from '../../src/farm/assignment-policy.js';

const w = (name: string, capacity: number, outstanding = 0, extra: Partial<WorkerLoad> = {}): WorkerLoad => ({
  name,
  capacity,
  prefetch: 0,
  outstanding,
  paused: false,
  ...extra,
});

const tasks = (n: number) => Array.from({ length: n }, (_, i) => `task-${String(i).padStart(10, '0')}`);

test('least-loaded: tasks go to the worker with the lowest load ratio', () => {
  const plan = planAssignments(tasks(3), [w('a', 4, 3), w('b', 4, 0), w('c', 4, 1)]);
  assert.deepEqual(
    plan.assignments.map((a) => a.worker),
    ['b', 'b', 'c'],
  );
});

test('load is a ratio: a worker with twice the capacity takes twice the tasks', () => {
  const plan = planAssignments(tasks(9), [w('small', 2), w('big', 4), w('huge', 6)]);
  const count = (n: string) => plan.assignments.filter((a) => a.worker === n).length;
  assert.deepEqual([count('small'), count('big'), count('huge')], [2, 3, 4]);
});

test('never beyond capacity + prefetch; the rest stay unassigned (tasks wait)', () => {
  const plan = planAssignments(tasks(10), [w('a', 2, 1), w('b', 1, 0, { prefetch: 1 })]);
  assert.equal(plan.assignments.length, 3);
  assert.equal(plan.unassigned.length, 7);
  assert.deepEqual(plan.unassigned, tasks(10).slice(3));
});

test('no workers, or only paused ones: nothing is assigned', () => {
  assert.deepEqual(planAssignments(tasks(2), []).unassigned, tasks(2));
  const plan = planAssignments(tasks(2), [w('p', 8, 0, { paused: true })]);
  assert.equal(plan.assignments.length, 0);
  assert.equal(freeSlots(w('p', 8, 0, { paused: true })), 0);
});

test('equal workers share evenly, and the rotation spreads single tasks', () => {
  const workers = [w('a', 4), w('b', 4), w('c', 4), w('d', 4)];
  const plan = planAssignments(tasks(8), workers);
  for (const n of ['a', 'b', 'c', 'd'])
    assert.equal(plan.assignments.filter((a) => a.worker === n).length, 2);
  const firsts = [0, 1, 2, 3].map((r) => planAssignments(tasks(1), workers, r).assignments[0]?.worker);
  assert.equal(new Set(firsts).size, 4, `single tasks rotate over all workers: ${firsts.join(',')}`);
});

test('input is not modified, and free slots add up', () => {
  const workers = [w('a', 3, 1), w('b', 2, 0, { prefetch: 2 })];
  const copy = structuredClone(workers);
  planAssignments(tasks(5), workers);
  assert.deepEqual(workers, copy);
  assert.equal(totalFreeSlots(workers), 2 + 4);
});

test('shell tasks go to shell workers when there are any; otherwise to anyone (who will refuse them)', () => {
  const shellTask = (id: string) => (id.endsWith('s') ? SHELL : undefined);
  const mixed = [w('plain', 4), w('sh', 4, 0, { shell: true })];
  const plan = planAssignments(['t1s', 't2s', 't3'], mixed, 0, shellTask);
  assert.deepEqual(
    plan.assignments.map((a) => `${a.task}:${a.worker}`),
    ['t1s:sh', 't2s:sh', 't3:plain'],
  );
  const full = [w('plain', 4), w('sh', 1, 1, { shell: true })];
  const waiting = planAssignments(['t1s'], full, 0, shellTask);
  assert.deepEqual(
    waiting.unassigned,
    ['t1s'],
    'a busy shell worker makes shell tasks wait, not go elsewhere',
  );
  const none = planAssignments(['t1s'], [w('plain', 4)], 0, shellTask);
  assert.equal(none.assignments[0]?.worker, 'plain');
});

test('what a task needs: shell, or a handler; a worker that names its handlers runs only those', () => {
  assert.equal(needOf({ cmd: 'true' }), SHELL);
  assert.equal(needOf({ handler: 'resize' }), 'handler:resize');
  const resizer = w('resizer', 2, 0, { handlers: new Set(['echo', 'resize']) });
  const plain = w('plain', 2, 0, { handlers: new Set(['echo']) });
  const unsaid = w('unsaid', 2, 0);
  const need = (id: string) => (id.startsWith('r') ? 'handler:resize' : 'handler:echo');
  const plan = planAssignments(['r1', 'r2', 'r3', 'e1'], [plain, resizer], 0, need);
  assert.deepEqual(
    plan.assignments.map((a) => `${a.task}:${a.worker}`),
    ['r1:resizer', 'r2:resizer', 'e1:plain'],
  );
  assert.deepEqual(plan.unassigned, ['r3']);
  // A worker that does not say which handlers it has is taken to have them all.
  assert.equal(planAssignments(['r1'], [plain, unsaid], 0, need).assignments[0]?.worker, 'unsaid');
  // No live worker has it: anyone takes it (and fails it with a reason: never a silent wait).
  assert.equal(planAssignments(['x'], [plain], 0, () => 'handler:nothing').assignments[0]?.worker, 'plain');
});

test('room and the reason a need waits: paused, busy, or no worker at all', () => {
  const sh = w('sh', 1, 0, { shell: true, paused: true });
  const plain = w('plain', 2);
  assert.equal(roomFor([sh, plain], SHELL), 0);
  assert.equal(roomFor([sh, plain], 'handler:echo'), 3 - 1);
  assert.equal(blockedReason([sh, plain], SHELL), 'every worker that runs shell tasks is paused or draining');
  assert.equal(blockedReason([sh, plain], 'handler:echo'), undefined);
  const busy = w('sh', 1, 1, { shell: true });
  assert.equal(blockedReason([busy, plain], SHELL), 'every worker that runs shell tasks is busy');
  assert.equal(blockedReason([], SHELL), 'no worker is registered');
  assert.equal(
    blockedReason([w('p', 1, 0, { paused: true })], 'handler:echo'),
    'every worker is paused or draining',
  );
});
