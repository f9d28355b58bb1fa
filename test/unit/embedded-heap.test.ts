/** The embedded ZooKeeper's heap plan (src/host/embedded-heap.ts): pure arithmetic on the admission figures. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes, hasCode } from '../../src/errors.js';
import {
  embeddedJavaOpts,
  GC_HEADROOM,
  MIB,
  NODE_BYTES,
  planEmbeddedHeap,
} from '../../src/host/embedded-heap.js';
import { DEFAULT_WARM_UP_MS, warmUpBudget } from '../../src/host/embedded-warm-up.js';
import { javaOptions, SERVER_GC_OPTS, withJavaOpts } from '../../src/zk/server-config.js';

const GIB = 1024 * MIB;

test('the heap covers what small limits admit, with headroom, when the machine has room', () => {
  const p = planEmbeddedHeap({ maxQueue: 300, keptResults: 300, queuedTasks: 0 }, 24 * GIB);
  assert.equal(p.capped, false);
  // 2 × 300 tasks × 512 KiB + 300 × 256 KiB + 500 × 512 KiB, and 300 result znodes
  assert.equal(p.admitted, 300 * MIB + 75 * MIB + 250 * MIB + 300 * NODE_BYTES);
  assert.ok(p.heapMb * MIB >= p.admitted * GC_HEADROOM, JSON.stringify(p));
  assert.ok(p.tasksThatFit >= 600, 'both the queue and the tasks held by workers fit');
});

test("the farm's default limits exceed a machine's memory: the heap is capped at half of it and says how many large tasks fit", () => {
  const p = planEmbeddedHeap({}, 24 * GIB);
  assert.equal(p.capped, true);
  assert.equal(p.heapMb, 12 * 1024);
  assert.ok(p.tasksThatFit > 5000 && p.tasksThatFit < 40_000, JSON.stringify(p));
  const small = planEmbeddedHeap({}, 2 * GIB);
  assert.equal(small.heapMb, 1024);
  assert.ok(small.tasksThatFit < p.tasksThatFit);
  assert.ok(planEmbeddedHeap({}, 0.5 * GIB).heapMb >= 512, 'never below 4 × the base');
});

test('a million small tasks queued and a million results kept: their znodes are in the plan', () => {
  const p = planEmbeddedHeap(
    { maxQueue: 300, keptResults: 1_000_000, statusBytes: 200, taskBytes: 200 },
    24 * GIB,
  );
  assert.equal(p.capped, false);
  assert.ok(p.admitted >= 2_000_000 * NODE_BYTES, JSON.stringify(p));
  assert.ok(
    p.heapMb * MIB >= 2_000_000 * NODE_BYTES * GC_HEADROOM,
    'room for two million znodes, with headroom',
  );
});

test('the warm-up budget: ZKFARM_ZK_WARM_UP_MS in whole ms, 0 turns it off, anything else is refused', () => {
  assert.equal(warmUpBudget({}), DEFAULT_WARM_UP_MS);
  assert.equal(warmUpBudget({ ZKFARM_ZK_WARM_UP_MS: ' ' }), DEFAULT_WARM_UP_MS);
  assert.equal(warmUpBudget({ ZKFARM_ZK_WARM_UP_MS: '0' }), 0);
  assert.equal(warmUpBudget({ ZKFARM_ZK_WARM_UP_MS: '1500' }), 1500);
  for (const bad of ['-1', '1.5', 'soon', '3s'])
    assert.throws(
      () => warmUpBudget({ ZKFARM_ZK_WARM_UP_MS: bad }),
      (e: unknown) => hasCode(e, ErrorCodes.INVALID_ARGUMENT) && (e as Error).message.includes(`"${bad}"`),
    );
});

test("the servers' collector: serial with a 32 MB young generation; an operator's collector replaces it, other options add", () => {
  const planned = embeddedJavaOpts(planEmbeddedHeap({}, 24 * GIB));
  assert.deepEqual(planned, ['-Xmx12288m', '-XX:+UseSerialGC', '-Xmn32m']);
  assert.ok(
    SERVER_GC_OPTS.every((o) => javaOptions(undefined).includes(o)),
    'the launcher default too',
  );
  // A JVM refuses two collectors: the operator's wins, with its own young generation.
  assert.deepEqual(withJavaOpts(planned, ['-XX:+UseG1GC', '-Xmx2g']), [
    '-Xmx12288m',
    '-XX:+UseG1GC',
    '-Xmx2g',
  ]);
  // Anything else comes after ours, so that it wins where the JVM takes the last (-Xmx, -Xmn).
  assert.deepEqual(withJavaOpts(planned, ['-Xmn64m', '-Xlog:gc']), [...planned, '-Xmn64m', '-Xlog:gc']);
  assert.deepEqual(withJavaOpts(planned, []), planned);
});
