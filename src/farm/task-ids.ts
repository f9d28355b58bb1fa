/**
 * Task ids are never reused.
 *
 * A task id is the sequence number ZooKeeper gives a child of /tasks. If /tasks is deleted and made
 * again, the counter starts over at 0 while /status still holds results under the old numbers: a new
 * task would get the id of a kept result (its own result could then not be recorded, and a waiter would
 * read the old one).
 *
 * Reading the counter: ZooKeeper numbers a sequential child with the count of children ever created
 * under the node, while `stat.cversion` counts creates and deletes; so the counter is
 * (cversion + numChildren) / 2 (checked against ZooKeeper 3.8 in test/task-ids.test.ts). Should a server
 * number by cversion instead, this reads low, and the repair only skips more ids than needed.
 *
 * The mark: the farm writes a small JSON object into /tasks' own data once it knows the counter is past
 * every id in use. A /tasks made again by anyone has no data, so `stat.dataLength === 0` says the counter
 * must be checked before ids are trusted again. The check costs nothing on the hot path: a submitter's
 * backpressure read of /tasks (an `exists`) already returns the stat.
 *
 * The repair: list the ids in use (the highest non-empty bucket of /status, /assign/<w>, /tasks), and if the counter is not past the
 * highest, advance it with multis that create and delete one scratch child each pair (+1 per pair,
 * TASK_ID_BUMP_PAIRS pairs per multi, BUMP_WINDOW multis in flight; the scratch node is made and removed inside one multi, so no
 * listing ever sees it). Then write the mark (setData at the version read: a /tasks made again meanwhile
 * is checked again by the next reader). Several farm processes may repair at once: ids then skip more
 * numbers, and none is reused.
 *
 * Foreign clients keep working unchanged: they `create -s /tasks/task-` as before, and get fresh ids
 * once any farm process has run the check (a master runs it when it takes the lead; a zkfarm submitter
 * before it submits). Znodes: reads /tasks, /status and its highest buckets, /assign/*; writes /tasks' data; creates and deletes
 * /tasks/zkfarm-id-floor inside multis.
 */
import { describeError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import { encode, OTHER_BUCKET, PATHS } from './protocol.js';
import { bucketIds, statusChildren } from './status-store.js';

/** Create/delete pairs per multi while advancing the counter (2 operations each). */
export const TASK_ID_BUMP_PAIRS = 100;
/** Multis in flight at once while advancing. */
const BUMP_WINDOW = 8;
const SCRATCH = `${PATHS.tasks}/zkfarm-id-floor`;

export interface TaskIdCheck {
  /** Highest task number in use (in /status, /assign or /tasks), -1 when none. */
  highest: number;
  /** /tasks' counter before the check. */
  counter: number;
  /** How much the counter was advanced (0 when it was already past every id in use). */
  advanced: number;
}

/** The number of a task id (`task-0000000042` → 42), or -1 for a name that is not one. */
export function taskNumber(name: string): number {
  const m = /^task-(\d{10})$/.exec(name);
  return m ? Number(m[1]) : -1;
}

/** The number the next sequential child of a node gets, as far as its stat tells (see the module comment). */
export function sequenceCounter(stat: { cversion: number; numChildren: number }): number {
  return Math.floor((stat.cversion + stat.numChildren) / 2);
}

/** True when /tasks carries the mark (the cheap test: from any stat of /tasks). */
export function idsChecked(stat: { dataLength: number } | null): boolean {
  return stat !== null && stat.dataLength > 0;
}

/**
 * Make sure the next task id is past every id in use, and mark /tasks as checked. Cheap (one `exists`)
 * when the mark is there; see the module comment for the rest.
 */
export async function ensureFreshTaskIds(client: ZkClient, log?: Logger): Promise<TaskIdCheck | undefined> {
  const stat = await client.exists(PATHS.tasks);
  if (!stat || idsChecked(stat)) return undefined;
  const highest = await highestInUse(client);
  const counter = sequenceCounter(stat);
  let now = counter;
  while (now <= highest) now = await advance(client, highest + 1 - now);
  const advanced = now - counter;
  try {
    const mark = { zkfarm: 'task ids checked', counterAtLeast: highest + 1, checkedAt: Date.now() };
    await client.setData(PATHS.tasks, encode(mark), stat.version);
  } catch (err) {
    // Changed or made again meanwhile: whoever reads it next checks again.
    if (!isZkError(err, 'BAD_VERSION', 'NO_NODE')) throw err;
  }
  if (advanced > 0)
    log?.warn(
      { highest, counter, advanced },
      `/tasks was made again (its id counter was at ${counter}, ids up to ${highest} are in use): advanced it ` +
        'past them so that no task id is reused',
    );
  return { highest, counter, advanced };
}

/**
 * For a leader: check now, and again whenever /tasks is made again while it leads (a data watch on
 * /tasks: it fires on the node's delete, create and data changes, not on its children). Resolves after
 * the first check; the watch ends with the session, or with `until` (a leader's term).
 */
export async function watchTaskIds(
  session: Session,
  log: Logger,
  until: AbortSignal = session.signal,
): Promise<void> {
  const check = () =>
    ensureFreshTaskIds(session.client, log).catch((err: unknown) => {
      if (session.alive) log.warn({ err }, `checking the task id counter failed: ${describeError(err)}`);
    });
  await check();
  const watch = session.watchData(PATHS.tasks, ({ data }) => {
    if (data && data.length === 0) return check().then(() => {});
  });
  if (until.aborted) watch.close();
  else until.addEventListener('abort', () => watch.close(), { once: true });
}

async function highestInUse(client: ZkClient): Promise<number> {
  const list = (path: string) =>
    client.getChildren(path).catch((err: unknown) => {
      if (isZkError(err, 'NO_NODE')) return [] as string[];
      throw err;
    });
  const [statuses, tasks, workers] = await Promise.all([
    highestResults(client),
    list(PATHS.tasks),
    list(PATHS.assign),
  ]);
  const assigned = await Promise.all(workers.map((w) => list(`${PATHS.assign}/${w}`)));
  let highest = -1;
  for (const names of [statuses, tasks, ...assigned])
    for (const n of names) {
      const k = taskNumber(n);
      if (k > highest) highest = k;
    }
  return highest;
}

/**
 * The result ids that can hold the highest id: those of the highest bucket that has any (bucket names
 * grow with the ids), and any still at flat paths (a farm not yet upgraded).
 */
async function highestResults(client: ZkClient): Promise<string[]> {
  const { buckets, flat } = await statusChildren(client);
  for (let i = buckets.length - 1; i >= 0; i--) {
    if (buckets[i] === OTHER_BUCKET) continue;
    const ids = await bucketIds(client, buckets[i]!);
    if (ids.length > 0) return [...flat, ...ids];
  }
  return flat;
}

/** Advance /tasks' counter by `by`; returns the counter after. */
async function advance(client: ZkClient, by: number): Promise<number> {
  const multis = Math.ceil(by / TASK_ID_BUMP_PAIRS);
  for (let i = 0; i < multis; i += BUMP_WINDOW) {
    const sent: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(multis, i + BUMP_WINDOW); j++) {
      const pairs = j === multis - 1 ? by - j * TASK_ID_BUMP_PAIRS : TASK_ID_BUMP_PAIRS;
      const tx = client.transaction();
      for (let k = 0; k < pairs; k++) tx.create(SCRATCH).remove(SCRATCH);
      sent.push(tx.commit());
    }
    await Promise.all(sent);
  }
  const stat = await client.exists(PATHS.tasks);
  return stat ? sequenceCounter(stat) : Number.POSITIVE_INFINITY;
}
