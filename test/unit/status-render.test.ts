/** `runtime status` as text, from a farm state put together here (rendering only: no ZooKeeper). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FarmState } from '../../src/cli/farm-state.js';
import { renderStatus } from '../../src/cli/status.js';
import type { QueueOverview } from '../../src/farm/queue-admin.js';

const queue = (waiting: number, running: number): QueueOverview => ({
  queue: 'default',
  controls: { paused: false, rateLimit: null, concurrency: null },
  byPriority: waiting > 0 ? { '0': waiting } : {},
  waiting,
  delayed: 0,
  running,
  servedBy: ['w1'],
  blocked: waiting > 0 ? [{ reason: 'every worker is busy', tasks: waiting, needs: 'handler:noop' }] : [],
});

const state = (live: { queued: number; assigned: number }, q: QueueOverview): FarmState => ({
  leader: { name: 'm1', host: 'h', pid: 1, since: 0 },
  standbys: [],
  workers: [],
  backlog: 0,
  statuses: 0,
  queues: [q],
  recentFailures: [],
  recentWindow: 0,
  ...live,
});

const NOTE = /the leader's last count/;

test("status says so when the leader's per-queue count is behind the live one (right after a burst)", () => {
  const lines = renderStatus('zk', state({ queued: 0, assigned: 0 }, queue(336, 64)));
  assert.ok(
    lines.some((l) => NOTE.test(l)),
    lines.join('\n'),
  );
});

test('status adds nothing when the per-queue count can be current', () => {
  for (const [live, q] of [
    [{ queued: 400, assigned: 64 }, queue(336, 64)],
    [{ queued: 0, assigned: 0 }, queue(0, 0)],
    [{ queued: 0, assigned: 3 }, queue(0, 3)],
  ] as const) {
    const lines = renderStatus('zk', state(live, q));
    assert.ok(!lines.some((l) => NOTE.test(l)), lines.join('\n'));
  }
});
