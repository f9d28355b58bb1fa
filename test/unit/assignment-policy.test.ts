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
import type { Candidate } from '../../src/farm/queue-view.js';
import { servedQueues } from '../../src/farm/queues.js';

const w = (name: string, capacity: number, outstanding = 0, extra: Partial<WorkerLoad> = {}): WorkerLoad => ({
  name,
  capacity,
  prefetch: 0,
  outstanding,
  paused: false,
  queues: servedQueues(undefined),
  queueOrder: 'weighted',
  ...extra,
});

const tasks = (n: number) => Array.from({ length: n }, (_, i) => `task-${String(i).padStart(10, '0')}`);

/** Tasks of the default queue, in order, each with the need `needOf(id)`. */
const one = (ids: string[], needOf: (id: string) => string = () => 'handler:echo') =>
  new Map([['default', ids.map((id): Candidate => ({ id, need: needOf(id), priority: 0 }))]]);
const unassigned = (ids: string[], plan: ReturnType<typeof planAssignments>) =>
  ids.filter((id) => !plan.assignments.some((a) => a.task === id));
const placed = (plan: ReturnType<typeof planAssignments>) =>
  plan.assignments.map((a) => `${a.task}:${a.worker}`).sort();

test('least-loaded: tasks go to the worker with the lowest load ratio', () => {
  const plan = planAssignments(one(tasks(3)), [w('a', 4, 3), w('b', 4, 0), w('c', 4, 1)]);
  assert.deepEqual(
    plan.assignments.map((a) => a.worker),
    ['b', 'b', 'c'],
  );
});

test('load is a ratio: a worker with twice the capacity takes twice the tasks', () => {
  const plan = planAssignments(one(tasks(9)), [w('small', 2), w('big', 4), w('huge', 6)]);
  const count = (n: string) => plan.assignments.filter((a) => a.worker === n).length;
  assert.deepEqual([count('small'), count('big'), count('huge')], [2, 3, 4]);
});

test('never beyond capacity + prefetch; the rest stay unassigned (tasks wait)', () => {
  const plan = planAssignments(one(tasks(10)), [w('a', 2, 1), w('b', 1, 0, { prefetch: 1 })]);
  assert.equal(plan.assignments.length, 3);
  assert.deepEqual(unassigned(tasks(10), plan), tasks(10).slice(3));
});

test('no workers, or only paused ones: nothing is assigned', () => {
  assert.deepEqual(planAssignments(one(tasks(2)), []).assignments, []);
  const plan = planAssignments(one(tasks(2)), [w('p', 8, 0, { paused: true })]);
  assert.equal(plan.assignments.length, 0);
  assert.equal(freeSlots(w('p', 8, 0, { paused: true })), 0);
});

test('equal workers share evenly, and the rotation spreads single tasks', () => {
  const workers = [w('a', 4), w('b', 4), w('c', 4), w('d', 4)];
  const plan = planAssignments(one(tasks(8)), workers);
  for (const n of ['a', 'b', 'c', 'd'])
    assert.equal(plan.assignments.filter((a) => a.worker === n).length, 2);
  const firsts = [0, 1, 2, 3].map((r) => planAssignments(one(tasks(1)), workers, r).assignments[0]?.worker);
  assert.equal(new Set(firsts).size, 4, `single tasks rotate over all workers: ${firsts.join(',')}`);
});

test('input is not modified, and free slots add up', () => {
  const workers = [w('a', 3, 1), w('b', 2, 0, { prefetch: 2 })];
  const copy = structuredClone(workers);
  planAssignments(one(tasks(5)), workers);
  assert.deepEqual(workers, copy);
  assert.equal(totalFreeSlots(workers), 2 + 4);
});

test('shell tasks go to shell workers when there are any; otherwise to anyone (who will refuse them)', () => {
  const shellTask = (id: string) => (id.endsWith('s') ? SHELL : 'handler:echo');
  const mixed = [w('plain', 4), w('sh', 4, 0, { shell: true })];
  const plan = planAssignments(one(['t1s', 't2s', 't3'], shellTask), mixed);
  assert.deepEqual(placed(plan), ['t1s:sh', 't2s:sh', 't3:plain']);
  const full = [w('plain', 4), w('sh', 1, 1, { shell: true })];
  const waiting = planAssignments(one(['t1s'], shellTask), full);
  assert.deepEqual(
    unassigned(['t1s'], waiting),
    ['t1s'],
    'a busy shell worker makes shell tasks wait, not go elsewhere',
  );
  const none = planAssignments(one(['t1s'], shellTask), [w('plain', 4)]);
  assert.equal(none.assignments[0]?.worker, 'plain');
});

test('what a task needs: shell, or a handler; a worker that names its handlers runs only those', () => {
  assert.equal(needOf({ cmd: 'true' }), SHELL);
  assert.equal(needOf({ handler: 'resize' }), 'handler:resize');
  const resizer = w('resizer', 2, 0, { handlers: new Set(['echo', 'resize']) });
  const plain = w('plain', 2, 0, { handlers: new Set(['echo']) });
  const unsaid = w('unsaid', 2, 0);
  const need = (id: string) => (id.startsWith('r') ? 'handler:resize' : 'handler:echo');
  const plan = planAssignments(one(['r1', 'r2', 'r3', 'e1'], need), [plain, resizer]);
  assert.deepEqual(placed(plan), ['e1:plain', 'r1:resizer', 'r2:resizer']);
  assert.deepEqual(unassigned(['r1', 'r2', 'r3', 'e1'], plan), ['r3']);
  // A worker that does not say which handlers it has is taken to have them all.
  assert.equal(planAssignments(one(['r1'], need), [plain, unsaid]).assignments[0]?.worker, 'unsaid');
  // No live worker has it: anyone takes it (and fails it with a reason: never a silent wait).
  assert.equal(
    planAssignments(
      one(['x'], () => 'handler:nothing'),
      [plain],
    ).assignments[0]?.worker,
    'plain',
  );
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

const c = (id: string, priority = 0, need = 'handler:echo'): Candidate => ({ id, need, priority });
const serving = (specs: string[], order: 'weighted' | 'strict' = 'weighted') => ({
  queues: servedQueues(specs),
  queueOrder: order,
});

test('queues: a worker takes only from the queues it serves; a queue nobody serves gets nothing', () => {
  const picked = new Map([
    ['a', [c('a1'), c('a2')]],
    ['b', [c('b1'), c('b2')]],
    ['c', [c('c1')]],
  ]);
  const plan = planAssignments(picked, [w('wa', 4, 0, serving(['a'])), w('wb', 4, 0, serving(['b']))]);
  assert.deepEqual(placed(plan), ['a1:wa', 'a2:wa', 'b1:wb', 'b2:wb']);
  assert.deepEqual(plan.assignments.map((a) => a.queue).sort(), ['a', 'a', 'b', 'b']);
});

test("queues: weighted order shares one worker's slots by weight (smooth round robin, over rounds too)", () => {
  const many = (q: string) => Array.from({ length: 40 }, (_, i) => c(`${q}${String(i).padStart(2, '0')}`));
  const picked = new Map([
    ['a', many('a')],
    ['b', many('b')],
  ]);
  const worker = w('w', 8, 0, serving(['a:3', 'b']));
  const plan = planAssignments(picked, [worker]);
  const queues = plan.assignments.map((a) => a.queue).join('');
  assert.equal(queues, 'aabaaaba', 'three of a for one of b, interleaved');
  // The earned weights carry over from round to round: one slot a round still shares 3:1.
  const rr = new Map();
  const order = Array.from(
    { length: 8 },
    (_, i) => planAssignments(picked, [w('w', 1, 0, serving(['a:3', 'b']))], i, rr).assignments[0]!.queue,
  ).join('');
  assert.equal(order, 'aabaaaba');
  // A queue without a task for it does not hold the others back.
  const onlyB = planAssignments(new Map([['b', many('b')]]), [worker]);
  assert.equal(onlyB.assignments.length, 8);
});

test('queues: strict order takes the first listed queue that has a task the worker may take', () => {
  const picked = new Map([
    ['low', [c('l1'), c('l2'), c('l3')]],
    ['high', [c('h1', 0, SHELL), c('h2')]],
  ]);
  const worker = w('w', 4, 0, serving(['high', 'low'], 'strict'));
  const plan = planAssignments(picked, [worker, w('sh', 1, 1, { shell: true, ...serving(['high']) })]);
  // h1 needs shell: the shell worker is busy, so it waits and h2 goes first; then the low queue.
  assert.deepEqual(
    plan.assignments.map((a) => a.task),
    ['h2', 'l1', 'l2', 'l3'],
  );
});

test('priorities: a worker takes the highest priority first, the lowest id within one', () => {
  // Candidates come in queue order (queue-view.ts); by need, a worker takes the first of those it may take.
  const picked = new Map([['default', [c('t5', 9, SHELL), c('t3', 5), c('t1', 0), c('t2', 0)]]]);
  const plan = planAssignments(picked, [w('w', 4, 0, { shell: true })]);
  assert.deepEqual(
    plan.assignments.map((a) => a.task),
    ['t5', 't3', 't1', 't2'],
  );
});
