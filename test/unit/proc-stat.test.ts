/** A thread's CPU time from /proc: precise enough for the few milliseconds a role thread spends in a short pass. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { statCpuMs, threadCpuMs, threadCpuMsOf } from '../../src/host/proc-stat.js';

const linux = existsSync('/proc/thread-self/schedstat');

/** Spin until this process has used `ms` more CPU (process.cpuUsage counts microseconds). */
function spin(ms: number): void {
  const start = process.cpuUsage();
  let x = 0;
  for (;;) {
    for (let i = 0; i < 10_000; i++) x += i;
    const d = process.cpuUsage(start);
    if ((d.user + d.system) / 1000 >= ms) break;
  }
  assert.ok(x > 0);
}

test('a thread that works 3 ms reads about 3 ms, not 0 or a whole clock tick', {
  skip: !linux && 'no /proc',
}, () => {
  // Clock ticks (10 ms) would read 0 or 10 here: eight worker threads of a short pass each read 0.
  const deltas: number[] = [];
  for (let k = 0; k < 5; k++) {
    const before = threadCpuMs();
    spin(3);
    deltas.push(threadCpuMs() - before);
  }
  for (const d of deltas) assert.ok(d > 0 && d < 10, `a 3 ms spin read ${d} ms (all: ${deltas.join(', ')})`);
});

test('the same thread read through its /proc/<pid>/task/<tid> directory agrees; a missing one is NaN', {
  skip: !linux && 'no /proc',
}, () => {
  const viaTask = threadCpuMsOf(`/proc/self/task/${process.pid}`);
  const viaSelf = threadCpuMs();
  assert.ok(Math.abs(viaSelf - viaTask) < 50, `${viaSelf} vs ${viaTask}`);
  assert.ok(Number.isNaN(threadCpuMsOf('/proc/self/task/0')));
  assert.ok(Number.isNaN(statCpuMs('/proc/0/stat')));
});
