/**
 * Automatic prefetch (src/farm/prefetch.ts): pure logic, fed made-up durations and clock times.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AUTO_PREFETCH_MAX_FACTOR, AutoPrefetch } from '../../src/farm/prefetch.js';
import { Worker } from '../../src/farm/worker.js';

/** Feed `n` tasks of `ms` each, one every `gap` ms from `t0`; return the values published. */
function feed(p: AutoPrefetch, n: number, ms: number, t0 = 0, gap = 1): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const v = p.observe(ms, t0 + i * gap);
    if (v !== undefined) out.push(v);
  }
  return out;
}

test('starts at capacity and stays there until capacity tasks have finished', () => {
  const p = new AutoPrefetch(4);
  assert.equal(p.value, 4);
  assert.deepEqual(feed(p, 3, 0), []);
  assert.equal(p.value, 4);
});

test('sub-millisecond tasks take it to the upper bound (MAX_FACTOR × capacity) in one step', () => {
  const p = new AutoPrefetch(4);
  assert.deepEqual(feed(p, 10, 0), [4 * AUTO_PREFETCH_MAX_FACTOR]);
  assert.equal(p.value, 4 * AUTO_PREFETCH_MAX_FACTOR);
  // A task of 0.9 ms is not a task of 0 ms: 4 × 25 ÷ 0.9 = 111.
  assert.deepEqual(feed(new AutoPrefetch(4), 10, 0.9), [111]);
});

test('tasks of 100 ms or more keep it at capacity', () => {
  const p = new AutoPrefetch(4);
  assert.deepEqual(feed(p, 50, 100), []);
  assert.deepEqual(feed(p, 50, 5000, 100_000), []);
  assert.equal(p.value, 4);
});

test('in between it follows capacity × 25 ms ÷ duration', () => {
  const p = new AutoPrefetch(4);
  // 5 ms tasks: 4 × 25 / 5 = 20.
  feed(p, 40, 5);
  assert.equal(p.value, 20);
});

test('when tasks get long it comes back down (no faster than every 250 ms)', () => {
  const p = new AutoPrefetch(2);
  feed(p, 10, 0);
  assert.equal(p.value, 2 * AUTO_PREFETCH_MAX_FACTOR);
  // Long tasks right after: the first change waits for the interval since the last one.
  assert.equal(p.observe(1000, 100), undefined);
  const later = feed(p, 20, 1000, 400, 1000);
  assert.equal(later.at(-1), 2);
  assert.equal(p.value, 2);
});

test('small moves of the target are not published (hysteresis)', () => {
  const p = new AutoPrefetch(4);
  feed(p, 40, 5); // 20
  // 4 ms tasks: target 25, within a factor of 2 of 20: no change however long it lasts.
  assert.deepEqual(feed(p, 100, 4, 10_000, 1000), []);
  assert.equal(p.value, 20);
});

test('a bad duration counts as a very short task, never as NaN', () => {
  const p = new AutoPrefetch(1);
  feed(p, 5, Number.NaN);
  assert.equal(p.value, AUTO_PREFETCH_MAX_FACTOR);
  assert.equal(Number.isFinite(p.target()), true);
});

test('a worker refuses a prefetch that is neither a whole number nor "auto", saying what it takes', () => {
  for (const bad of ['lots', -1, 1.5]) {
    assert.throws(
      () => new Worker({ name: 'w', connect: '127.0.0.1:1', prefetch: bad as never }),
      (err: Error & { code?: string }) =>
        err.code === 'ZKFARM_INVALID_ARGUMENT' &&
        /^prefetch: expected a whole number from 0 to 65536, or "auto", got /.test(err.message),
    );
  }
  assert.equal(new Worker({ name: 'w', connect: '127.0.0.1:1', capacity: 3 }).prefetch, 3);
  assert.equal(new Worker({ name: 'w', connect: '127.0.0.1:1', prefetch: 0 }).prefetch, 0);
});
