/**
 * The dashboard's pure parts: the submit clock (task id → submit time), the history's rates and
 * percentiles, listen addresses, loopback checks, and naming added workers. No servers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextWorkerName } from '../src/web/controls.js';
import { History, percentile } from '../src/web/history.js';
import { describeHttpError, hostName, isLoopback, parseListen } from '../src/web/http.js';
import { SubmitClock, taskSequence } from '../src/web/submit-clock.js';

test('submit clock: a task number between two readings of /tasks cversion gets a time between them', () => {
  const c = new SubmitClock();
  assert.equal(c.timeOf(5), undefined, 'no readings: unknown');
  c.record(10, 1000);
  c.record(10, 1250); // unchanged: the interval starts at the last time it was seen
  c.record(20, 1500);
  c.record(20, 1750);
  assert.equal(c.timeOf(9), undefined, 'created before the first reading: unknown');
  const t = c.timeOf(15)!;
  assert.ok(t > 1250 && t <= 1500, `15 lies in (1250, 1500], got ${t}`);
  assert.ok(c.timeOf(10)! < c.timeOf(19)!, 'later numbers, later times');
  assert.equal(c.timeOf(25), 1750, 'after the newest reading: its time is the best bound');
  c.record(3, 2000); // /tasks was made again: start over
  assert.equal(c.timeOf(15), 2000);
  assert.equal(c.size, 1);
  assert.equal(taskSequence('task-0000000042'), 42);
  assert.ok(Number.isNaN(taskSequence('task-42')));
});

test('history: tasks/s over a window, failures in the last 5 minutes, percentiles by nearest rank', () => {
  const h = new History({}, 0);
  for (let i = 1; i <= 20; i++) {
    h.push({ at: i * 1000, completed: 10, failed: i % 2, s2s: [i * 10], run: [i], queue: i, inFlight: 1 });
  }
  assert.equal(h.rate(20_000), 10, '10 a second over the last 10 s');
  assert.equal(h.failedSince(20_000), 10);
  const last = h.points().at(-1)!;
  assert.equal(last.queue, 20);
  assert.equal(last.rate, 10);
  assert.equal(last.p50, 150, 'median of the last 10 s (110..200), nearest rank');
  assert.equal(last.p99, 200);
  assert.equal(h.latency(20_000).count, 20);
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([1, 2, 3, 4], 50), 2);
  assert.equal(percentile([1, 2, 3, 4], 100), 4);
  // Old buckets go.
  const short = new History({ keepMs: 5000 }, 0);
  for (let i = 1; i <= 20; i++)
    short.push({ at: i * 1000, completed: 1, failed: 0, s2s: [], run: [], queue: 0, inFlight: 0 });
  assert.ok(short.points().length <= 6);
});

test('listen addresses, loopback names and error statuses', () => {
  assert.deepEqual(parseListen('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen('localhost:9000'), { host: 'localhost', port: 9000 });
  for (const bad of ['8080', '127.0.0.1', '127.0.0.1:99999', '[nothex]:80', 'a b:80', ':80']) {
    assert.throws(() => parseListen(bad), /expected host:port/, bad);
  }
  assert.ok(
    isLoopback('127.0.0.1') && isLoopback('127.1.2.3') && isLoopback('::1') && isLoopback('localhost'),
  );
  assert.ok(!isLoopback('0.0.0.0') && !isLoopback('192.168.1.4') && !isLoopback('evil.example'));
  assert.equal(hostName('[::1]:8080'), '::1');
  assert.equal(hostName('localhost:8080'), 'localhost');
  assert.equal(
    describeHttpError(
      Object.assign(new Error('no role named x on this host'), { code: 'ZKFARM_INVALID_ARGUMENT' }),
    ).status,
    404,
  );
  assert.equal(
    describeHttpError(Object.assign(new Error('taken'), { code: 'ZKFARM_NAME_TAKEN' })).status,
    409,
  );
  assert.equal(describeHttpError(new Error('boom')).status, 500);
});

test('added workers continue the naming of the last one', () => {
  assert.equal(nextWorkerName(['m1', 'w1', 'w2'], ['w1', 'w2']), 'w3');
  assert.equal(
    nextWorkerName(['gpu-worker-9', 'gpu-worker-10'], ['gpu-worker-9', 'gpu-worker-10']),
    'gpu-worker-11',
  );
  assert.equal(nextWorkerName(['m1'], []), 'worker-1');
  assert.equal(nextWorkerName(['w1', 'w2', 'w3'], ['w1', 'w2']), 'w4', 'skips names in use');
});
