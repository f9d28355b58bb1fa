/**
 * Where waited-for tasks are: delayed (/delayed/<slot>/<id>, due later: delayed-area.ts), queued
 * (/tasks/<id>, or in its queue's backlog /queues/<q>/p<p>/<bucket>/<id>), assigned (/assign/<w>/<id>), finished
 * (/status/<bucket>/<id>, or the flat /status/<id> before an upgrade), or nowhere: deleted, or finished and its result already removed by retention. A
 * waiter that is not told would wait for ever.
 *
 * Znodes: reads only. A few ids: `exists` on each place, in the order a task moves forward (queued,
 * assigned, finished); the backlog's places are one per lane (a listing of /queues and of each queue),
 * the due-time area's one per slot (a listing of /delayed: one slot per hour that has delayed tasks).
 * Many ids: listings of /tasks and /assign/<w> first (a waited-for task is mostly still queued or
 * running), then their results read a hundred to a request (a finished one's waiter may not be told
 * yet), then the backlog buckets they could be in and the due-time slots listed, then `exists` on each
 * place for the ids none of these showed.
 *
 * Guarantees: reads of several nodes are not one snapshot; a task that moves forward between two reads
 * is still seen (it is read in its new place later), but one given back (from /assign to /tasks) between
 * two reads can be missed once. So a task is declared nowhere only after two checks, `everyMs` apart,
 * found it in none of the three places.
 *
 * SUSPENDED / LOST: a check that fails counts for nothing; the next one tries again.
 */
import type { ZkClient } from '../zk/client.js';
import { childrenIfExists as children } from '../zk/compound.js';
import { isZkError } from '../zk/errors.js';
import { DELAYED_ROOT, slotOfName } from './due-time.js';
import {
  assignPath,
  backlogLanePath,
  backlogPath,
  flatStatusPath,
  lanePriority,
  PATHS,
  queuePath,
  statusBucket,
  statusPath,
  taskPath,
} from './protocol.js';

export interface TaskLocatorOptions {
  /** Between two checks (ms). @defaultValue 5000 */
  everyMs?: number;
  /** The first check after an id is added (ms). @defaultValue 2000 */
  firstMs?: number;
}

/** Ids checked one by one at most; beyond, listings first. */
const FEW = 32;

export class TaskLocator {
  readonly #client: () => ZkClient | undefined;
  readonly #onNowhere: (id: string) => void;
  readonly #everyMs: number;
  readonly #firstMs: number;
  /** id → checks in a row that found it nowhere. */
  readonly #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(
    client: () => ZkClient | undefined,
    onNowhere: (id: string) => void,
    options: TaskLocatorOptions = {},
  ) {
    this.#client = client;
    this.#onNowhere = onNowhere;
    this.#everyMs = options.everyMs ?? 5000;
    this.#firstMs = options.firstMs ?? 2000;
  }

  add(id: string): void {
    if (this.#pending.has(id)) return;
    this.#pending.set(id, 0);
    this.#schedule(this.#firstMs);
  }

  remove(id: string): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.close();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    if (this.#timer || this.#checking || this.#pending.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#check();
    }, ms);
    this.#timer.unref?.();
  }

  async #check(): Promise<void> {
    const client = this.#client();
    this.#checking = true;
    try {
      if (client) {
        const ids = [...this.#pending.keys()];
        const nowhere = await this.#nowhere(client, ids);
        for (const id of ids) {
          if (!this.#pending.has(id)) continue;
          const strikes = nowhere.has(id) ? this.#pending.get(id)! + 1 : 0;
          this.#pending.set(id, strikes);
          if (strikes >= 2) {
            this.#pending.delete(id);
            this.#onNowhere(id);
          }
        }
      }
    } catch (err) {
      // A check that fails counts for nothing (connection trouble, a lost or closed session): the next
      // one tries, if the locator is still open.
      const code = (err as { code?: string })?.code;
      if (!isZkError(err) && code !== 'ZKFARM_SESSION_LOST' && code !== 'ZKFARM_STOPPED') throw err;
    } finally {
      this.#checking = false;
      this.#schedule(this.#everyMs);
    }
  }

  /** The ids found in none of the three places. */
  async #nowhere(client: ZkClient, ids: string[]): Promise<Set<string>> {
    let suspects = ids;
    if (ids.length > FEW) {
      const seen = new Set<string>(await children(client, PATHS.tasks));
      const dirs = await children(client, PATHS.assign);
      for (const list of await Promise.all(dirs.map((w) => children(client, `${PATHS.assign}/${w}`))))
        for (const id of list) seen.add(id);
      suspects = ids.filter((id) => !seen.has(id));
      if (suspects.length > FEW) suspects = await notFinished(client, suspects);
      if (suspects.length > FEW) suspects = await notInBacklog(client, suspects);
      if (suspects.length > FEW) suspects = await notDelayed(client, suspects);
    }
    const out = new Set<string>();
    if (suspects.length === 0) return out;
    const [workers, lanes, slots] = await Promise.all([
      children(client, PATHS.assign),
      backlogLanes(client),
      delayedSlots(client),
    ]);
    await Promise.all(
      suspects.map(async (id) => {
        // The flat path last: a result of a farm not yet upgraded (the leader moves it to its bucket).
        const places = [
          ...slots.map((s) => `${s}/${id}`),
          taskPath(id),
          ...lanes.map((l) => backlogPath(l.queue, l.priority, id)),
          ...workers.map((w) => assignPath(w, id)),
          statusPath(id),
          flatStatusPath(id),
        ];
        // Sent together, answered in order: the order a task moves forward.
        const found = await Promise.all(places.map((p) => client.exists(p)));
        if (found.every((s) => s === null)) out.add(id);
      }),
    );
    return out;
  }
}

/**
 * Of these ids, those without a result in their bucket (multiReads of a hundred): a waiter that lags a
 * busy farm holds many finished tasks not yet told, and an `exists` on each place for each of them
 * was most of a long wait's requests.
 */
async function notFinished(client: ZkClient, ids: string[]): Promise<string[]> {
  const reads = await client.getDataMany(ids.map(statusPath));
  return ids.filter((_, i) => reads[i] instanceof Error);
}

/** Of these ids, those not in a backlog bucket (one listing per bucket they could be in). */
async function notInBacklog(client: ZkClient, ids: string[]): Promise<string[]> {
  const wanted = new Set(ids.map(statusBucket));
  const seen = new Set<string>();
  for (const l of await backlogLanes(client)) {
    const lane = backlogLanePath(l.queue, l.priority);
    const buckets = (await children(client, lane)).filter((b) => wanted.has(b));
    for (const list of await Promise.all(buckets.map((b) => children(client, `${lane}/${b}`))))
      for (const id of list) seen.add(id);
  }
  return ids.filter((id) => !seen.has(id));
}

/** Of these ids, those not in the due-time area (one listing per slot). */
async function notDelayed(client: ZkClient, ids: string[]): Promise<string[]> {
  const seen = new Set<string>();
  for (const slot of await delayedSlots(client)) for (const id of await children(client, slot)) seen.add(id);
  return ids.filter((id) => !seen.has(id));
}

/** Where a task waits in the due-time area (`/delayed/<slot>/<id>`), or undefined (one listing, a stat per slot). */
export async function findDelayed(client: ZkClient, id: string): Promise<string | undefined> {
  const places = (await delayedSlots(client)).map((slot) => `${slot}/${id}`);
  const found = await Promise.all(places.map((p) => client.exists(p)));
  return places[found.findIndex((st) => st !== null)];
}

/** The paths of the due-time area's slots (/delayed/<slot>), from a listing. */
export async function delayedSlots(client: ZkClient): Promise<string[]> {
  const names = await children(client, DELAYED_ROOT);
  return names.filter((n) => slotOfName(n) !== undefined).map((n) => `${DELAYED_ROOT}/${n}`);
}

/** Every lane of the deep-queue backlog (a queue's priority that has a node), from listings. */
export async function backlogLanes(client: ZkClient): Promise<Array<{ queue: string; priority: number }>> {
  const queues = await children(client, PATHS.queues);
  const lists = await Promise.all(queues.map((q) => children(client, queuePath(q))));
  return queues.flatMap((queue, i) =>
    lists[i]!.flatMap((name) => {
      const priority = lanePriority(name);
      return priority === undefined ? [] : [{ queue, priority }];
    }),
  );
}

/** Where one task is now, read with its data where it waits (to move it from there at that version). */
export type TaskPlace =
  | { kind: 'waiting'; path: string; data: Buffer; version: number }
  | { kind: 'assigned'; worker: string; path: string; data: Buffer; version: number }
  | { kind: 'finished'; path: string }
  | { kind: 'nowhere' };

/**
 * The places a task waits before a worker holds it: /tasks/<id>, its queue's backlog lanes, the due-time
 * area's slots. Every
 * place a task can wait in is listed here, so whoever acts on waiting tasks (cancel-desk.ts) covers a
 * new one by its addition here.
 */
export async function waitingPaths(client: ZkClient, id: string): Promise<string[]> {
  const [lanes, slots] = await Promise.all([backlogLanes(client), delayedSlots(client)]);
  return [
    taskPath(id),
    ...lanes.map((l) => backlogPath(l.queue, l.priority, id)),
    ...slots.map((slot) => `${slot}/${id}`),
  ];
}

/**
 * Where `id` is, read place by place in the order a task moves forward (waiting, assigned, finished), so
 * a task that moves forward between two reads is still found. Reads only; one that is given back (from
 * /assign to /tasks) between two reads can be missed: call again before concluding `nowhere`.
 */
export async function whereIs(client: ZkClient, id: string): Promise<TaskPlace> {
  for (const path of await waitingPaths(client, id)) {
    const got = await getData(client, path);
    if (got) return { kind: 'waiting', path, data: got.data, version: got.version };
  }
  for (const worker of await children(client, PATHS.assign)) {
    const path = assignPath(worker, id);
    const got = await getData(client, path);
    if (got) return { kind: 'assigned', worker, path, data: got.data, version: got.version };
  }
  for (const path of [statusPath(id), flatStatusPath(id)])
    if ((await client.exists(path)) !== null) return { kind: 'finished', path };
  return { kind: 'nowhere' };
}

async function getData(
  client: ZkClient,
  path: string,
): Promise<{ data: Buffer; version: number } | undefined> {
  try {
    const r = await client.getData(path);
    return { data: r.data, version: r.stat.version };
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return undefined;
    throw err;
  }
}
