/**
 * Upgrade in place against a real ZooKeeper: a farm whose results are at the old flat /status/<id>
 * (with tasks queued and assigned by the old code) is started with the bucketed layout; the leader
 * moves every flat result into its bucket, each exactly once, the queued tasks run, and every result
 * is readable throughout.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  assignDir,
  assignPath,
  encode,
  flatStatusPath,
  PATHS,
  statusPath,
  taskPath,
} from '../src/farm/protocol.js';
import { allResultIds, countResults, statusChildren } from '../src/farm/status-store.js';
import { isMarked } from '../src/farm/status-upgrade.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-upgrade-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

/** Results in the old layout: more than one bucket's worth, so they land in two buckets. */
const OLD_RESULTS = 10_050;
const QUEUED = 40;

test('a farm with results at flat /status paths is upgraded in place: nothing lost, every result readable', async () => {
  const root = await zk.chroot('upgrade');
  const raw = await zk.rawClient(root);
  for (const p of [PATHS.tasks, PATHS.status, PATHS.assign]) await raw.create(p);
  // What the old code left: tasks numbered by /tasks, the finished ones moved to /status/<id> (one
  // multi each: create the status, delete the task), a dead worker's assignment, tasks still queued.
  const ids: string[] = [];
  for (let i = 0; i < OLD_RESULTS + QUEUED + 2; i += 200) {
    const tx = raw.transaction();
    for (let k = i; k < Math.min(i + 200, OLD_RESULTS + QUEUED + 2); k++)
      tx.create(`${PATHS.tasks}/task-`, encode({ handler: 'echo', input: k }), 2);
    ids.push(...(await tx.commit()).map((r) => r.path!.slice(PATHS.tasks.length + 1)));
  }
  const finished = ids.slice(0, OLD_RESULTS);
  const oldStatus = (id: string) =>
    encode({ state: 'succeeded', worker: 'old-w', attempts: 1, startedAt: 1, finishedAt: 2, result: id });
  for (let i = 0; i < finished.length; i += 100) {
    const tx = raw.transaction();
    for (const id of finished.slice(i, i + 100))
      tx.create(flatStatusPath(id), oldStatus(id)).remove(taskPath(id));
    await tx.commit();
  }
  const [held1, held2] = ids.slice(OLD_RESULTS, OLD_RESULTS + 2) as [string, string];
  await raw.create(assignDir('old-w'));
  for (const id of [held1, held2]) {
    const tx = raw.transaction();
    tx.create(assignPath('old-w', id), (await raw.getData(taskPath(id))).data).remove(taskPath(id));
    await tx.commit();
  }
  const queued = ids.slice(OLD_RESULTS + 2);

  // A new-code client reads an old result before the upgrade, and waits for one across it.
  const sub = await farm.submitter(root);
  assert.equal((await sub.result(finished[0]!))?.result, finished[0]);
  const waited = sub.waitFor(finished.at(-1)!, { timeoutMs: 120_000 });

  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { capacity: 8 });
  assert.equal((await waited).result, finished.at(-1), 'a waiter on an old result gets it once moved');
  await until(
    async () =>
      (await statusChildren(raw)).flat.length === 0 && isMarked((await raw.getData(PATHS.status)).data),
    120_000,
    'every flat result moved and /status marked',
  );
  const statuses = await sub.waitForAll([...queued, held1, held2], { timeoutMs: 120_000 });
  assert.ok(statuses.every((s) => s.state === 'succeeded'));

  // Exactly one result per task, each where statusPath says, old ones unchanged.
  assert.equal(await countResults(raw), ids.length);
  assert.deepEqual((await allResultIds(raw)).sort(), [...ids].sort());
  assert.deepEqual((await raw.getChildren(PATHS.status)).sort(), ['000000', '000001']);
  const reads = await raw.getDataMany(finished.map(statusPath));
  reads.forEach((r, i) => {
    assert.ok(!(r instanceof Error), `${finished[i]}: ${String(r)}`);
    assert.deepEqual(r.data, oldStatus(finished[i]!), `${finished[i]} moved unchanged`);
  });
});
