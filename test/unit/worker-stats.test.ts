/**
 * A worker's counters and the ring of its last runs' durations (pure logic).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentDurations } from '../../src/farm/worker-stats.js';

test('recent durations: empty, then in the order recorded, doubles kept as they are', () => {
  const d = new RecentDurations(4);
  assert.deepEqual(d.list(), []);
  d.record(0.25);
  d.record(3);
  d.record(1.5);
  assert.deepEqual(d.list(), [0.25, 3, 1.5]);
});

test('recent durations: past its size it keeps the newest, oldest first, across many wraps', () => {
  const d = new RecentDurations(4);
  for (let i = 1; i <= 4; i++) d.record(i);
  assert.deepEqual(d.list(), [1, 2, 3, 4], 'exactly full');
  d.record(5);
  assert.deepEqual(d.list(), [2, 3, 4, 5]);
  for (let i = 6; i <= 1003; i++) d.record(i);
  assert.deepEqual(d.list(), [1000, 1001, 1002, 1003]);
});

test('recent durations: the default keeps the last 1000', () => {
  const d = new RecentDurations();
  for (let i = 0; i < 2500; i++) d.record(i / 2);
  const list = d.list();
  assert.equal(list.length, 1000);
  assert.equal(list[0], 1500 / 2);
  assert.equal(list.at(-1), 2499 / 2);
});
