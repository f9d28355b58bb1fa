import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BacklogIndex } from '../../src/farm/backlog-index.js';

const id = (n: number) => `task-${String(n).padStart(10, '0')}`;
const never = () => false;

test('a lane loads its lowest bucket first, in id order; the frontier is the lowest id not loaded', () => {
  const b = new BacklogIndex();
  b.known('q', 3, '000002', 2);
  b.known('q', 3, '000000', 3);
  assert.equal(b.frontier('q', 3), 'task-0000000000', 'before any listing: the lowest bucket starts it');
  assert.equal(b.toList('q', 3), '000000');
  b.listed('q', 3, '000000', [id(9), id(4), id(7)]);
  assert.equal(b.frontier('q', 3), id(4));
  assert.deepEqual(b.toLoad('q', 3, 2, never), [id(4), id(7)]);
  assert.equal(b.frontier('q', 3), id(9));
  assert.equal(b.toList('q', 3), undefined, 'the listing is not used up');
  assert.deepEqual(b.toLoad('q', 3, 5, never), [id(9)]);
  assert.equal(b.frontier('q', 3), 'task-0000020000', 'used up: the next bucket starts it');
  assert.equal(b.toList('q', 3), '000002');
  assert.equal(b.frontier('q', 1), undefined, 'no backlog: no frontier');
});

test('a task shelved into the listed bucket (or a lower one) is never passed by the frontier', () => {
  const b = new BacklogIndex();
  b.known('q', 0, '000001', 0);
  b.listed('q', 0, '000001', [id(10_005), id(10_009)]);
  assert.deepEqual(b.toLoad('q', 0, 1, never), [id(10_005)]);
  b.added('q', 0, id(10_001));
  assert.equal(b.frontier('q', 0), id(10_001), 'a lower id than one loaded is next');
  b.added('q', 0, id(42));
  assert.equal(b.toList('q', 0), '000000', 'a lower bucket: listed again from the lowest');
  assert.equal(b.frontier('q', 0), 'task-0000000000');
});

test('a bucket is removed once its tasks left and it is not being listed; sizes per lane', () => {
  const b = new BacklogIndex();
  b.known('q', 9, '000000', 0);
  b.added('q', 9, id(1));
  b.added('q', 9, id(2));
  b.known('q', 0, '000003', 1);
  assert.deepEqual(
    [...b.lanes()],
    [
      { queue: 'q', priority: 9, tasks: 2 },
      { queue: 'q', priority: 0, tasks: 1 },
    ],
  );
  b.listed('q', 9, '000000', [id(1), id(2)]);
  b.toLoad('q', 9, 1, never);
  assert.equal(b.removed('q', 9, id(1)), undefined);
  assert.equal(b.removed('q', 9, id(3)), undefined, 'not all listed ids are loaded: kept');
  b.toLoad('q', 9, 1, never);
  b.added('q', 9, id(4));
  assert.equal(b.removed('q', 9, id(2)), undefined);
  assert.deepEqual(b.toLoad('q', 9, 5, never), [id(4)]);
  assert.equal(b.removed('q', 9, id(4)), '000000', 'empty and used up: remove it');
  assert.equal(b.frontier('q', 9), undefined);
  assert.deepEqual(
    [...b.lanes()].map((l) => l.priority),
    [0],
  );
  b.known('q', 0, '000004', 0);
  assert.deepEqual(b.emptyBuckets(), [{ queue: 'q', priority: 0, bucket: '000004' }]);
});

test('ids put back are loaded again, in order; ids loaded elsewhere are passed over', () => {
  const b = new BacklogIndex();
  b.known('q', 0, '000000', 3);
  b.listed('q', 0, '000000', [id(1), id(2), id(3)]);
  assert.deepEqual(
    b.toLoad('q', 0, 3, (x) => x === id(2)),
    [id(1), id(3)],
  );
  b.unload('q', 0, [id(3), id(1)]);
  assert.deepEqual(b.toLoad('q', 0, 3, never), [id(1), id(3)]);
});
