/**
 * The embedded ZooKeeper's heap holds what the farm admits (src/host/embedded-heap.ts): a few hundred
 * tasks of ~500 KiB, submitted at once to the embedded server as `runtime` starts it, all run, and the
 * server does not run out of memory. Real ZooKeeper, real role threads.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Submitter } from '../src/farm/submitter.js';
import { startEmbeddedZooKeeper } from '../src/host/embedded.js';
import { createLogger, Host } from '../src/host/index.js';
import { sourceThreads } from './helpers/faults.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-heap-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const xdg = join(tmp, 'xdg');
mkdirSync(xdg);

const TASKS = 300;
const TASK_BYTES = 500 * 1024;

test(`${TASKS} tasks of ${TASK_BYTES / 1024} KiB on the embedded ZooKeeper: every one runs, the server stays up`, async () => {
  const workdir = join(tmp, 'work');
  const embedded = await startEmbeddedZooKeeper({ workdir, env: { XDG_RUNTIME_DIR: xdg } });
  cleanups.push(() => embedded.stop());
  const host = await Host.start(
    {
      connect: embedded.connect,
      workdir,
      sessionTimeout: 20_000,
      roles: [
        { kind: 'master', name: 'm1' },
        { kind: 'worker', name: 'w1', capacity: 4 },
        { kind: 'worker', name: 'w2', capacity: 4 },
      ],
    },
    {
      logger: createLogger({ level: 'error', pretty: false, destination: process.stderr }),
      spawn: sourceThreads,
    },
  );
  cleanups.push(() => host.stop({ drain: false }));
  const sub = await Submitter.open({ connect: embedded.connect, sessionTimeout: 20_000 });
  cleanups.push(() => sub.close());
  const pad = 'x'.repeat(TASK_BYTES - 100);
  const ids = await sub.submitMany(
    Array.from({ length: TASKS }, (_, i) => ({ handler: 'noop', input: { i, pad } })),
  );
  assert.equal(ids.length, TASKS);
  assert.equal(new Set(ids).size, TASKS);
  const results = await sub.waitForAll(ids, { timeoutMs: 300_000 });
  assert.equal(results.filter((s) => s.state === 'succeeded').length, TASKS, 'every task accounted for');
  assert.ok(embedded.server.running, 'the embedded ZooKeeper is still running');
});
