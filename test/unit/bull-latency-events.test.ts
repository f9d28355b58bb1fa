/**
 * How the latency scenario's BullMQ reference reads its figures (benchmarks/harness/scenarios/latency-bullmq.ts):
 * a job's `active` and `completed` times come from the ids of its entries in the queue's event stream,
 * and each latency is that time minus the job's send time.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type JobEvents, latencyOf, takeEvents } from '../../benchmarks/harness/scenarios/latency-bullmq.js';

const empty = (): JobEvents => ({ active: new Map(), completed: new Map() });

test('the time of an event is the millisecond part of its stream id, by job', () => {
  const events = empty();
  takeEvents(
    [
      ['1000-0', ['event', 'added', 'jobId', '1', 'name', 'noop']],
      ['1002-0', ['event', 'active', 'jobId', '1', 'prev', 'waiting']],
      ['1002-1', ['event', 'active', 'jobId', '2', 'prev', 'waiting']],
      ['1005-3', ['event', 'completed', 'jobId', '1', 'returnvalue', 'null', 'prev', 'active']],
      ['1007-0', ['event', 'drained']],
      ['1009-0', ['jobId', '2', 'event', 'completed', 'returnvalue', 'null']],
    ],
    events,
  );
  assert.deepEqual(
    [...events.active],
    [
      ['1', 1002],
      ['2', 1002],
    ],
  );
  assert.deepEqual(
    [...events.completed],
    [
      ['1', 1005],
      ['2', 1009],
    ],
  );
});

test("a job's first activation counts, its last completion too", () => {
  // A stalled job is made active again; the wait the client saw runs from the first hand-out.
  const events = empty();
  takeEvents(
    [
      ['10-0', ['event', 'active', 'jobId', '7']],
      ['30-0', ['event', 'active', 'jobId', '7']],
      ['40-0', ['event', 'completed', 'jobId', '7']],
    ],
    events,
  );
  assert.equal(events.active.get('7'), 10);
  assert.equal(events.completed.get('7'), 40);
});

test('latency is completion − send, time to start is activation − send; jobs without a completion are left out', () => {
  const events = empty();
  events.active.set('1', 105).set('2', 210);
  events.completed.set('1', 109).set('2', 230).set('4', 400);
  const { lat, toStart } = latencyOf(
    [
      { id: '1', sentAt: 100 },
      { id: '2', sentAt: 200 },
      { id: '3', sentAt: 300 },
      { id: '4', sentAt: 390 },
    ],
    events,
  );
  assert.deepEqual(lat, [9, 30, 10]);
  assert.deepEqual(toStart, [5, 10]);
});
