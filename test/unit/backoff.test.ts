/**
 * The backoff policy (src/backoff.ts): pure logic, fed a fixed random source.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff, backoffDelay } from '../../src/backoff.js';

test('grows by the factor from the initial delay and stops at the cap', () => {
  const policy = { initialMs: 100, maxMs: 1000, jitter: 'none' } as const;
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((n) => backoffDelay(policy, n)),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.equal(backoffDelay({ ...policy, factor: 3 }, 2), 900);
  // A huge attempt count overflows the power to Infinity: still the cap, never NaN.
  assert.equal(backoffDelay(policy, 5000), 1000);
});

test('full jitter spreads over [0, base], equal jitter over [base/2, base]', () => {
  const p = { initialMs: 100, maxMs: 1000 };
  assert.equal(
    backoffDelay({ ...p, jitter: 'full' }, 1, () => 0),
    0,
  );
  assert.equal(
    backoffDelay({ ...p, jitter: 'full' }, 1, () => 0.5),
    100,
  );
  assert.equal(
    backoffDelay({ ...p, jitter: 'equal' }, 1, () => 0),
    100,
  );
  assert.equal(
    backoffDelay({ ...p, jitter: 'equal' }, 1, () => 0.999999),
    199.9999,
  );
  // 'equal' is the default.
  assert.equal(
    backoffDelay(p, 0, () => 0),
    50,
  );
});

test('a Backoff counts failures and starts over after reset()', () => {
  const b = new Backoff({ initialMs: 10, maxMs: 40, jitter: 'none' });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next()], [10, 20, 40, 40]);
  assert.equal(b.attempts, 4);
  b.reset();
  assert.equal(b.attempts, 0);
  assert.equal(b.next(), 10);
});

test('a policy that makes no sense is refused with what was expected', () => {
  assert.throws(() => new Backoff({ initialMs: -1, maxMs: 10 }), /initialMs ≥ 0.*-1/);
  assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), /maxMs ≥ initialMs.*5/);
  assert.throws(() => new Backoff({ initialMs: 1, maxMs: 5, factor: 0.5 }), /factor ≥ 1/);
  assert.throws(() => new Backoff({ initialMs: Number.NaN, maxMs: 5 }), /initialMs/);
});
