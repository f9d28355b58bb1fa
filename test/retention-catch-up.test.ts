/**
 * Status retention keeps up with a fast farm, against a real ZooKeeper: one pass of the leader's
 * housekeeping removes every result over `maxCount`, even when more finished in an interval than one
 * sweep removes (SWEEP_MAX), sweeping again until it has caught up; passes never overlap; a leader
 * that has assigned many tasks gets a pass before the interval is up; no result goes before it is
 * `minAgeMs` old, whatever the count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type HousekeepingHooks, LeaderHousekeeping } from '../src/farm/leader-housekeeping.js';
import { PATHS, statusBucketPath, statusPath, taskIdOf } from '../src/farm/protocol.js';
import { RetentionSweeper, SWEEP_MAX } from '../src/farm/retention.js';
import { countResults } from '../src/farm/status-store.js';
import { MultiBatcher } from '../src/recipes/multi-batcher.js';
import type { ZkClient } from '../src/zk/client.js';
import { silentLogger } from '../src/zk/connect-options.js';
import { useCleanups } from './helpers/cleanups.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();

/** `n` results of tasks from..from+n-1, in their buckets, written in multis. */
async function putResults(c: ZkClient, n: number, from = 0): Promise<void> {
  const ids = Array.from({ length: n }, (_, i) => taskIdOf(from + i));
  await c.ensurePath(PATHS.status);
  for (const bucket of new Set(ids.map((id) => id.slice(5, 11))))
    await c.ensurePath(statusBucketPath(bucket));
  const data = Buffer.from('{"state":"succeeded","worker":"w","attempts":1,"startedAt":1,"finishedAt":1}');
  const r = await new MultiBatcher(c).write(
    ids.map((id) => ({ id, ops: [{ op: 'create' as const, path: statusPath(id), data }] })),
  );
  assert.equal(r.written.length, n, 'every result written');
}

/** The housekeeping's first pass: resolves with what it logged it removed. */
function firstPass(
  c: ZkClient,
  maxCount: number,
  hooks: HousekeepingHooks = {},
  intervalMs = 1000,
): Promise<number> {
  const term = new AbortController();
  return new Promise<number>((resolve, reject) => {
    const log = {
      ...silentLogger,
      info: (obj: object, msg?: string) => {
        if (msg === 'removed old statuses') resolve((obj as { removed: number }).removed);
      },
      warn: (obj: object, msg?: string) => reject(new Error(`${msg}: ${JSON.stringify(obj)}`)),
    };
    // Results written a moment ago: no grace (minAgeMs), or none would be removed.
    const retention = { maxCount, intervalMs, minAgeMs: 0 };
    const hk = new LeaderHousekeeping(c, retention, log, term.signal, () => true, hooks);
    hk.start();
    cleanups.push(() => {
      hk.stop();
      term.abort();
    });
  });
}

test('one housekeeping pass removes every result over the count, more than one sweep holds', async () => {
  const root = await zk.chroot('retention-catch-up');
  const c = await zk.rawClient(root);
  const keep = 1000;
  const n = SWEEP_MAX + 2 * keep;
  await putResults(c, n);
  assert.equal(await countResults(c), n);
  assert.equal(await firstPass(c, keep), n - keep, 'the first pass removed all the excess');
  assert.equal(await countResults(c), keep);
  // The ones kept are the results that finished last.
  assert.equal((await c.exists(statusPath(taskIdOf(n - keep)))) !== null, true);
  assert.equal(await c.exists(statusPath(taskIdOf(n - keep - 1))), null);
});

test('a pass sweeps again while its sweeper is behind, a few removals at a time', async () => {
  const root = await zk.chroot('retention-sweeps');
  const c = await zk.rawClient(root);
  await putResults(c, 300);
  assert.equal(await firstPass(c, 100, { sweepMax: 40, catchUpPauseMs: 1 }), 200);
  assert.equal(await countResults(c), 100);
});

test('passes never overlap: a tick that finds the last pass still sweeping is skipped', async () => {
  const root = await zk.chroot('retention-one-pass');
  const c = await zk.rawClient(root);
  await putResults(c, 300);
  // Every sweep lists /status first: count the listings in flight at once (after the term's first
  // layout check, which lists it too, at start).
  const from = Date.now() + 100;
  let inFlight = 0;
  let most = 0;
  const list = c.getChildren.bind(c);
  c.getChildren = async (path, ...rest) => {
    if (path !== PATHS.status || Date.now() < from) return list(path, ...rest);
    most = Math.max(most, ++inFlight);
    try {
      return await list(path, ...rest);
    } finally {
      inFlight--;
    }
  };
  // A pass of five sweeps with pauses between them, and a tick every 20 ms meanwhile.
  assert.equal(await firstPass(c, 100, { sweepMax: 40, catchUpPauseMs: 100 }, 20), 200);
  assert.equal(most, 1, 'one listing of /status at a time');
});

test('a leader that has assigned many tasks since the last pass sweeps before the interval is up', async () => {
  const root = await zk.chroot('retention-busy');
  const c = await zk.rawClient(root);
  await putResults(c, 300);
  let assigned = 0;
  const hour = 3_600_000;
  const pass = firstPass(c, 100, { assigned: () => assigned }, hour);
  // Under the threshold (max(1000, maxCount) assigned): nothing yet.
  assigned = 999;
  await sleep(1500);
  assert.equal(await countResults(c), 300, 'no pass below the threshold');
  assigned = 1000;
  const removed = await Promise.race([pass, sleep(15_000).then(() => 'no pass within 15 s')]);
  assert.equal(removed, 200);
  assert.equal(await countResults(c), 100);
});

test('a result younger than minAgeMs is kept over the count, and goes once it has aged', async () => {
  const root = await zk.chroot('retention-min-age');
  const c = await zk.rawClient(root);
  await putResults(c, 150);
  await sleep(1200);
  await putResults(c, 150, 150);
  const sweeper = new RetentionSweeper(c, { maxCount: 100, minAgeMs: 1000 });
  assert.equal(await sweeper.sweep(), 150, 'the 150 older than a second, not the 200 over the count');
  assert.equal(sweeper.behind, false, 'what is left over the count is young: no sweep again at once');
  assert.equal(await c.exists(statusPath(taskIdOf(149))), null);
  assert.notEqual(await c.exists(statusPath(taskIdOf(150))), null);
  assert.equal(await sweeper.sweep(), 0, 'still young');
  await sleep(1200);
  assert.equal(await sweeper.sweep(), 50);
  assert.equal(await countResults(c), 100);
  assert.notEqual(await c.exists(statusPath(taskIdOf(200))), null, 'the last to finish are kept');
});

test('a farm whose results are all younger than minAgeMs reads none of them, however many over the count', async () => {
  const root = await zk.chroot('retention-all-young');
  const c = await zk.rawClient(root);
  await putResults(c, 300);
  let reads = 0;
  const getDataMany = c.getDataMany.bind(c);
  c.getDataMany = (...args) => {
    reads++;
    return getDataMany(...args);
  };
  const sweeper = new RetentionSweeper(c, { maxCount: 100, minAgeMs: 60_000 });
  assert.equal(await sweeper.sweep(), 0);
  assert.equal(reads, 0, 'no result read: the buckets themselves are younger than minAgeMs');
  assert.equal(await sweeper.sweep(Date.now() + 61_000), 200, 'once they have aged, the excess goes');
  assert.ok(reads > 0);
});
