/**
 * Entry of one measurement process (spawned by child.ts): reads its job from argv, runs it, sends the
 * result over IPC and exits. SIGINT/SIGTERM or losing the parent stop the measurement, and its
 * `finally` blocks stop the farm (a second signal exits at once).
 */
import { describeError } from '../../src/errors.js';
import type { BenchIo } from './farm-fixture.js';
import { measureCeiling } from './scenarios/ceiling.js';
import { measureFailover } from './scenarios/failover.js';
import { measureLatency } from './scenarios/latency.js';
import { measureBullLatency } from './scenarios/latency-bullmq.js';
import { measureMultiHost } from './scenarios/multi-host.js';
import { measureBullmq } from './scenarios/peer.js';
import { measureScale } from './scenarios/scale.js';
import { measureRss } from './scenarios/scaling.js';
import { measureServices } from './scenarios/services.js';
import { measureFarm } from './scenarios/throughput.js';
import type { ChildMessage, Job } from './types.js';

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

async function run(job: Job, io: BenchIo): Promise<unknown> {
  switch (job.kind) {
    case 'ceiling':
      return measureCeiling(job, io);
    case 'farm':
      return measureFarm(job, io);
    case 'bullmq':
      return measureBullmq(job, io);
    case 'latency':
      return measureLatency(job, io);
    case 'bullmq-latency':
      return measureBullLatency(job, io);
    case 'rss':
      return measureRss(job, io);
    case 'failover':
      return measureFailover(job, io);
    case 'services':
      return measureServices(job, io);
    case 'scale':
      return measureScale(job, io);
    case 'multi-host':
      return measureMultiHost(job, io);
  }
}

async function main(): Promise<number> {
  const text = process.argv[2];
  if (!text) {
    process.stderr.write(
      'worker-scenario: runs one benchmark measurement; start it through `runtime bench` (benchmarks/harness/main.ts)\n',
    );
    return 2;
  }
  const job = JSON.parse(text) as Job;
  const abort = new AbortController();
  let signals = 0;
  const stop = () => {
    if (++signals > 1) process.exit(130);
    abort.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('disconnect', () => abort.abort());
  let lastProgress = 0;
  const io: BenchIo = {
    signal: abort.signal,
    progress(done, total, label) {
      const now = Date.now();
      if (now - lastProgress < 200 && done < total) return;
      lastProgress = now;
      void send({ type: 'progress', done, total, label });
    },
  };
  try {
    const result = await run(job, io);
    await send({ type: 'result', result });
    return 0;
  } catch (err) {
    await send({ type: 'error', message: describeError(err), stack: (err as Error)?.stack });
    return 1;
  }
}

// Exit explicitly: a role thread or a client library may hold a handle open after a measurement.
main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${describeError(err)}\n`);
    process.exit(1);
  },
);
