/**
 * Submitting a stream (Submitter.submitStream, and the NDJSON reader of `runtime submit --file`) against
 * a real ZooKeeper: backpressure keeps the inbox within its bound while the farm drains, a bad task
 * stops the stream or is skipped, and a big file is read only as fast as it is submitted.
 */
import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readLines } from '../src/cli/submit-file.js';
import { PATHS, type Task } from '../src/farm/protocol.js';
import { QueueAdmin } from '../src/farm/queue-admin.js';
import { countResults } from '../src/farm/status-store.js';
import type { StreamProgress, SubmitStreamError } from '../src/farm/submit-stream.js';
import type { ZkClient } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-stream-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir: join(tmp, 'work') });

/** The most children /tasks had, as a child watch saw them (re-armed on every change). */
function watchDepth(c: ZkClient): { max: () => number; stop: () => void } {
  let max = 0;
  let stopped = false;
  const look = async (): Promise<void> => {
    if (stopped) return;
    try {
      const kids = await c.getChildren(PATHS.tasks, () => void look());
      max = Math.max(max, kids.length);
    } catch {
      if (!stopped) setTimeout(() => void look(), 50);
    }
  };
  void look();
  return { max: () => max, stop: () => (stopped = true) };
}

async function* noops(n: number): AsyncGenerator<Task> {
  for (let i = 0; i < n; i++) yield { handler: 'noop', input: i };
}

test('30,000 tasks streamed with an inbox bound of 1,000: the stream waits, the inbox stays within the bound, all run', async () => {
  const root = await zk.chroot('stream-backpressure');
  const raw = await zk.rawClient(root);
  // Every result is counted at the end, so none may be removed: more than the default 10,000 of them.
  await farm.master(root, 'm1', { retention: { maxCount: 100_000 } });
  const sub = await farm.submitter(root, { batchSize: 100 });
  const depth = watchDepth(raw);
  cleanups.push(() => depth.stop());
  let waited = 0;
  const seen: StreamProgress[] = [];
  const onProgress = (p: StreamProgress) => {
    if (p.waiting) waited++;
    if (seen.length < 5) seen.push({ ...p });
  };
  let confirmed = 0;
  const done = sub.submitStream(noops(30_000), {
    maxInbox: 1000,
    onProgress,
    onSubmitted: (ids, first) => {
      assert.equal(first, confirmed, 'batches are confirmed in order');
      confirmed += ids.length;
    },
  });
  // No worker yet: the inbox fills to its bound and the stream waits.
  await until(() => waited > 0, 60_000, 'the stream to wait for room');
  assert.ok(depth.max() <= 1000 + 100, `inbox reached ${depth.max()}`);
  await farm.worker(root, 'w1', { capacity: 64 });
  const r = await done;
  assert.deepEqual(r, { submitted: 30_000, skipped: 0, read: 30_000 });
  await until(async () => (await countResults(raw)) === 30_000, 300_000, 'every task has its result');
  depth.stop();
  assert.ok(
    depth.max() <= 1000 + 100,
    `the inbox never passed the bound plus one batch (max ${depth.max()})`,
  );
  assert.deepEqual((await raw.getChildren(PATHS.status)).sort(), ['000000', '000001', '000002']);
});

test('a bad task stops the stream after what came before it is confirmed; with onBad skip it is reported and skipped', async () => {
  const root = await zk.chroot('stream-bad');
  const raw = await zk.rawClient(root);
  const sub = await farm.submitter(root, { batchSize: 10 });
  const tasks = (bad: number): Task[] =>
    Array.from({ length: 50 }, (_, i) =>
      i === bad ? ({ input: 'no handler' } as Task) : { handler: 'noop', input: i },
    );
  const err = await sub.submitStream(tasks(25)).then(
    () => assert.fail('a bad task must stop the stream'),
    (e: unknown) => e as SubmitStreamError,
  );
  assert.equal(err.code, 'ZKFARM_INVALID_TASK');
  assert.match(err.message, /^task #26: /);
  assert.equal(err.position, 25);
  assert.equal(err.submitted, 25, 'the 25 tasks before it are submitted');
  assert.equal((await raw.getChildren(PATHS.tasks)).length, 25);
  const skipped: number[] = [];
  const r = await sub.submitStream(tasks(7), { onBad: 'skip', onSkipped: (p) => skipped.push(p) });
  assert.deepEqual(r, { submitted: 49, skipped: 1, read: 50 });
  assert.deepEqual(skipped, [7]);
  assert.equal((await raw.getChildren(PATHS.tasks)).length, 25 + 49);
});

test('a big file is read only as fast as it is submitted: while the stream waits, most of it is unread', async () => {
  const root = await zk.chroot('stream-memory');
  await farm.master(root, 'm1');
  const sub = await farm.submitter(root);
  const file = join(tmp, 'big.ndjson');
  // 400,000 lines, about 20 MB: far more than the bound lets in while no worker drains.
  const line = (i: number) => `{"handler":"noop","input":{"i":${i},"pad":"${'x'.repeat(16)}"}}\n`;
  const parts: string[] = [];
  for (let i = 0; i < 400_000; i++) parts.push(line(i));
  writeFileSync(file, parts.join(''));
  const size = statSync(file).size;
  const input = createReadStream(file);
  const abort = new AbortController();
  let waiting = false;
  const tasks = async function* () {
    for await (const l of readLines(input)) yield JSON.parse(l.text) as Task;
  };
  const done = sub
    .submitStream(tasks(), {
      maxInbox: 2000,
      signal: abort.signal,
      onProgress: (p) => (waiting ||= p.waiting),
    })
    .catch(() => undefined);
  await until(() => waiting, 60_000, 'the stream to wait for room');
  const read = input.bytesRead;
  abort.abort();
  await done;
  input.destroy();
  assert.ok(read < size / 10, `read ${read} of ${size} bytes while the inbox was full`);
});

test('per-queue backpressure: a stream to a paused queue over its depth waits, and says why, while a stream to another queue flows', async () => {
  const root = await zk.chroot('stream-per-queue');
  const raw = await zk.rawClient(root);
  await new QueueAdmin(raw).pause('a');
  await farm.master(root, 'm1');
  await farm.worker(root, 'wb', { queues: ['b'], capacity: 64 });
  const sub = await farm.submitter(root, { batchSize: 100 });
  const stop = new AbortController();
  let aWaits: string | undefined;
  const of = (queue: string, n: number) =>
    (async function* () {
      for (let i = 0; i < n; i++) yield { handler: 'noop', input: i, queue } satisfies Task;
    })();
  // Queue a's bound (3,000) is over the inbox bound (2,000): only the backlog lets the inbox drain.
  const a = sub.submitStream(of('a', 20_000), {
    maxInbox: 2000,
    maxQueueDepth: 3000,
    signal: stop.signal,
    onProgress: (p) => {
      if (p.waiting && /queue "a"/.test(p.waitingFor ?? '')) aWaits = p.waitingFor;
    },
  });
  await until(() => aWaits !== undefined, 60_000, 'the stream of the paused queue to wait for it');
  assert.match(aWaits!, /queue "a" holds \d+ tasks waiting \(this stream keeps it under 3000\)/);
  const b = await sub.submitStream(of('b', 3000), { maxInbox: 2000, maxQueueDepth: 3000 });
  assert.equal(b.submitted, 3000, 'the other queue flowed');
  await until(async () => (await countResults(raw)) === 3000, 60_000, 'every task of b has its result');
  stop.abort();
  const r = await a;
  assert.ok(
    r.submitted < 20_000 && r.submitted >= 3000,
    `queue a's stream stopped near its bound (${r.submitted})`,
  );
});
