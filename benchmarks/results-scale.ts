/**
 * What the result buckets and the streamed submit cost, on one standalone ZooKeeper (loopback):
 *
 *   npm run build && node --import tsx benchmarks/results-scale.ts [tasks] [flat]   (defaults 100000, 50000)
 *
 * - submit --file: `tasks` no-op tasks in an NDJSON file streamed by `runtime submit --file` (a child
 *   process, its peak RSS from /usr/bin/time) into a farm of one master and one worker (capacity 64) in
 *   this process: submit rate, drain rate, the deepest /tasks a child watch saw, the largest bucket;
 * - upgrade: `flat` results at flat /status/<id> paths moved into buckets by a master taking the lead
 *   (time until /status carries the layout mark);
 * - retention: one sweep over the results of both, keeping 10,000 (time, removed).
 * Bounded in count; the server and roles are stopped at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Master } from '../src/farm/master.js';
import { encode, flatStatusPath, PATHS, statusBucketPath } from '../src/farm/protocol.js';
import { sweepStatuses } from '../src/farm/retention.js';
import { countResults, statusChildren } from '../src/farm/status-store.js';
import { isMarked } from '../src/farm/status-upgrade.js';
import { Worker } from '../src/farm/worker.js';
import { openClient, startZkServer, type ZkClient } from '../src/zk/index.js';

const TASKS = Number(process.argv[2] ?? 100_000);
const FLAT = Number(process.argv[3] ?? 50_000);
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-results-scale-'));
const server = await startZkServer();
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 1_800_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** The deepest /tasks a child watch saw. */
function watchDepth(c: ZkClient): { max: () => number; stop: () => void } {
  let max = 0;
  let stopped = false;
  const look = async (): Promise<void> => {
    if (stopped) return;
    const kids = await c.getChildren(PATHS.tasks, () => void look()).catch(() => [] as string[]);
    max = Math.max(max, kids.length);
  };
  void look();
  return { max: () => max, stop: () => (stopped = true) };
}

async function submitFile(root: string, admin: ZkClient) {
  const file = join(tmp, 'tasks.ndjson');
  const lines: string[] = [];
  for (let i = 0; i < TASKS; i++) lines.push(`{"handler":"noop","input":${i}}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  const master = new Master({
    name: 'm1',
    connect: root,
    logger: quiet,
    retention: { maxCount: 10_000_000 },
  });
  const worker = new Worker({
    name: 'w1',
    connect: root,
    workdir: join(tmp, 'work'),
    capacity: 64,
    logger: quiet,
  });
  await Promise.all([master.start(), worker.start()]);
  await master.waitForLeadership();
  await admin.ensurePath(PATHS.tasks);
  const depth = watchDepth(admin);
  const t0 = performance.now();
  // A child process (not spawnSync: the farm runs on this process's event loop); ids to /dev/null.
  const child = spawn(
    '/usr/bin/time',
    ['-f', '%M', process.execPath, 'bin/runtime.js', 'submit', '--zk', root, '--file', file],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const submitMs = performance.now() - t0;
  if (code !== 0) throw new Error(`submit failed: ${stderr}`);
  const peakKb = Number(stderr.trim().split('\n').at(-1));
  await until(async () => (await countResults(admin)) >= TASKS, 'every result');
  const drainMs = performance.now() - t0;
  depth.stop();
  const { buckets } = await statusChildren(admin);
  const sizes = await Promise.all(buckets.map((b) => admin.exists(statusBucketPath(b))));
  await Promise.all([master.stop(), worker.stop({ drain: false })]);
  return {
    tasks: TASKS,
    submitPerSec: Math.round(TASKS / (submitMs / 1000)),
    drainPerSec: Math.round(TASKS / (drainMs / 1000)),
    submitPeakRssMb: Math.round(peakKb / 1024),
    deepestInbox: depth.max(),
    buckets: buckets.length,
    largestBucket: Math.max(...sizes.map((s) => s?.numChildren ?? 0)),
  };
}

async function upgrade(root: string, admin: ZkClient) {
  await admin.ensurePath(PATHS.status);
  const status = encode({ state: 'succeeded', worker: 'old', attempts: 1, startedAt: 1, finishedAt: 2 });
  for (let i = 0; i < FLAT; i += 200) {
    const tx = admin.transaction();
    for (let k = i; k < Math.min(FLAT, i + 200); k++)
      tx.create(flatStatusPath(`task-${String(k).padStart(10, '0')}`), status);
    await tx.commit();
  }
  const t0 = performance.now();
  const master = new Master({ name: 'm1', connect: root, logger: quiet });
  await master.start();
  await until(async () => isMarked((await admin.getData(PATHS.status)).data), 'the layout mark');
  const ms = performance.now() - t0;
  await master.stop();
  return { flat: FLAT, moveMs: Math.round(ms), movedPerSec: Math.round(FLAT / (ms / 1000)) };
}

async function retention(admin: ZkClient) {
  const before = await countResults(admin);
  const t0 = performance.now();
  let removed = 0;
  for (let n = -1; n !== 0; ) {
    n = await sweepStatuses(admin, { maxCount: 10_000 });
    removed += n;
  }
  return { kept: before, removed, sweepMs: Math.round(performance.now() - t0) };
}

try {
  const admin = await openClient(server.connectString);
  for (const c of ['/a', '/b']) await admin.create(c);
  const a = await openClient(`${server.connectString}/a`);
  const b = await openClient(`${server.connectString}/b`);
  console.log(`node ${process.version}`);
  console.table([await submitFile(`${server.connectString}/a`, a)]);
  console.table([await upgrade(`${server.connectString}/b`, b)]);
  console.table([await retention(a), await retention(b)]);
  for (const c of [a, b, admin]) c.connection.close();
} finally {
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
}
