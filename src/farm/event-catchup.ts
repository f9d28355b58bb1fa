/**
 * Catching an event stream up after notifications were lost: ZooKeeper keeps none for a persistent watch
 * while the connection is down, nor across a new session. The state the farm's nodes hold now says what
 * must have happened meanwhile; the events made from it have `seen: false`.
 *
 * Nodes read: the children of /tasks, /assign and each /assign/<w>; /tasks/<id> of the tasks found there;
 * the result of each task the stream followed that is neither queued nor assigned now; the listings of the
 * result buckets from the highest id the stream knew, and the results above it.
 *
 * What it can infer, per task (in order, so a consumer's view of a task stays queued → started → result):
 * - a task the stream followed: `started` on its worker now (assigned since), `retrying`/`queued` (back in
 *   /tasks since it started), or its result (finished since);
 * - a task newer than any the stream knew: `queued`, `started` (assigned now) and its result (finished).
 * What it cannot: progress reports made meanwhile (the latest is read again when it next changes), a run
 * started and given back during the gap (the task is simply queued), a task in the deep-queue backlog
 * (still queued), and results already removed by retention.
 */
import type { ZkClient } from '../zk/client.js';
import { childrenIfExists as children } from '../zk/compound.js';
import { isZkError } from '../zk/errors.js';
import {
  idNumber,
  OTHER_BUCKET,
  PATHS,
  parseStatus,
  statusBucket,
  type TaskStatus,
  taskIdOf,
  taskPath,
} from './protocol.js';
import { bucketIds, readResult, statusChildren } from './status-store.js';
import { eventOf, type NodeRead, resultEvent, type TaskEvent } from './task-events.js';

/** What a stream knows of a task it follows (not finished yet). */
export interface FollowedTask {
  last: string;
  worker?: string;
  queue?: string;
  /** The run its last event concerned. */
  attempt?: number;
}

/** A node's JSON and creation time; undefined when it is gone or not JSON. Connection trouble throws. */
export async function readNode(client: ZkClient, path: string): Promise<NodeRead | undefined> {
  try {
    const { data, stat } = await client.getData(path);
    return { json: JSON.parse(data.toString('utf8')), ctime: stat.ctime };
  } catch (err) {
    if (isZkError(err, 'NO_NODE') || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

async function readStatus(client: ZkClient, id: string): Promise<TaskStatus | undefined> {
  const found = await readResult(client, id);
  try {
    return found ? parseStatus(found.data) : undefined;
  } catch {
    return undefined; // not JSON: no event can be made of it
  }
}

/** Where every queued and assigned task is now. */
async function placesNow(client: ZkClient): Promise<{ queued: Set<string>; assigned: Map<string, string> }> {
  const [tasks, workers] = await Promise.all([children(client, PATHS.tasks), children(client, PATHS.assign)]);
  const queued = new Set(tasks.filter((n) => !n.startsWith('zkfarm-')));
  const assigned = new Map<string, string>();
  const lists = await Promise.all(workers.map((w) => children(client, `${PATHS.assign}/${w}`)));
  workers.forEach((w, i) => {
    for (const id of lists[i]!) assigned.set(id, w);
  });
  return { queued, assigned };
}

function inferred(ev: TaskEvent | undefined): TaskEvent[] {
  return ev ? [{ ...ev, seen: false }] : [];
}

async function followedNow(
  client: ZkClient,
  id: string,
  t: FollowedTask,
  places: Awaited<ReturnType<typeof placesNow>>,
) {
  const worker = places.assigned.get(id);
  const running = t.last === 'started' || t.last === 'progress';
  if (worker !== undefined) {
    if (running && t.worker === worker) return [];
    return [{ type: 'started', id, worker, at: Date.now(), seen: false } as TaskEvent];
  }
  if (places.queued.has(id)) {
    if (!running) return [];
    return inferred(
      eventOf({ kind: 'task', id, path: taskPath(id) }, await readNode(client, taskPath(id)), Date.now()),
    );
  }
  return inferred(resultEvent(id, await readStatus(client, id), Date.now(), false));
}

/** A task the stream never saw: what its nodes say happened to it. */
async function unseenNow(client: ZkClient, id: string, places: Awaited<ReturnType<typeof placesNow>>) {
  const now = Date.now();
  if (places.queued.has(id))
    return inferred(
      eventOf({ kind: 'task', id, path: taskPath(id) }, await readNode(client, taskPath(id)), now),
    );
  const worker = places.assigned.get(id);
  if (worker !== undefined) {
    return [
      { type: 'queued', id, at: now, seen: false },
      { type: 'started', id, worker, at: now, seen: false },
    ] as TaskEvent[];
  }
  const s = await readStatus(client, id);
  const end = resultEvent(id, s, now, false);
  if (!end) return [];
  const at = s!.submittedAt ?? end.at;
  const before: TaskEvent[] = [{ type: 'queued', id, at, seen: false }];
  if (s!.worker)
    before.push({ type: 'started', id, worker: s!.worker, at: s!.startedAt ?? end.at, seen: false });
  return [...before, end];
}

/** Ids of results above `above` (the highest id the stream knew), from its bucket up. */
async function newerResults(client: ZkClient, above: number): Promise<string[]> {
  const from = statusBucket(taskIdOf(Math.max(above, 0)));
  const buckets = (await statusChildren(client)).buckets.filter((b) => b !== OTHER_BUCKET && b >= from);
  const lists = await Promise.all(buckets.map((b) => bucketIds(client, b)));
  return lists.flat().filter((id) => idNumber(id) > above);
}

/**
 * The events that bring a stream up to date: for the tasks it follows, and for those above `highest`
 * (the highest id number it knew of; tasks at or below it were there before the stream began, or
 * followed). `accept` says which ids the stream wants. In task id order; each task's events in order.
 */
export async function catchUpEvents(
  client: ZkClient,
  followed: ReadonlyMap<string, FollowedTask>,
  highest: number,
  accept: (id: string) => boolean,
): Promise<TaskEvent[]> {
  const places = await placesNow(client);
  const unseen = new Set<string>();
  for (const id of [...places.queued, ...places.assigned.keys(), ...(await newerResults(client, highest))])
    if (!followed.has(id) && idNumber(id) > highest && accept(id)) unseen.add(id);
  const work = [
    ...[...followed].map(([id, t]) => ({ id, run: () => followedNow(client, id, t, places) })),
    ...[...unseen].map((id) => ({ id, run: () => unseenNow(client, id, places) })),
  ].sort((a, b) => idNumber(a.id) - idNumber(b.id));
  const out = await Promise.all(work.map((w) => w.run()));
  return out.flat();
}
