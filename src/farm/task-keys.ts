/**
 * Idempotent submission: a task may carry a `key` of the submitter's choosing; while the key is
 * remembered (see key-sweeper.ts for the window), a second submission with the same key creates nothing
 * and returns the first task's id.
 *
 * Znodes (public, docs/protocol.md "Idempotent submission"):
 *   /keys/<xx>/<sha256 hex of the key>   persistent   {"key": K} at first, then {"key": K, "id": "task-…"}
 * `<xx>` is the hash's first two hex digits (256 buckets, made by the leading master and on demand), so
 * no listing nears ZooKeeper's 1 MB packet below a few million keys.
 *
 * The atomic step: one multi creates the key node and the task (`create -s /tasks/task-`, the task's JSON
 * holding `key`). A key node exists if and only if its task was created: a second multi with the key
 * fails on the key node (NODE_EXISTS) and creates nothing. A multi cannot write the sequential id into
 * the key node, so the id gets there afterwards, from whoever knows it first:
 * - the submitter, right after its multi is answered (setData at version 0: only the first fill);
 * - the worker that starts the task, when the key node is still without it (fillKeyId);
 * - a submitter that retries after its first answer was lost: it finds the task by its key in /tasks and
 *   /assign/* (the key node and the task were created in one transaction: same czxid and same ctime, the
 *   ctime being the `submittedAt` the master copies into the task), and fills it.
 * A retry that finds none of them (the task is further on and no worker started it yet) waits for the
 * fill, and past `waitMs` fails with ZKFARM_KEY_PENDING: nothing is ever created twice.
 *
 * Connection loss: a batch whose every task has a key is sent again after the connection comes back
 * (safe: the second send either creates it all or finds the keys). A batch with unkeyed tasks is not.
 *
 * SUSPENDED / LOST: requests fail and the retry loop above (or the caller) sends again.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../backoff.js';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { Stat, ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import { assignDir, encode, PATHS, TASK_PREFIX, type Task } from './protocol.js';

export const KEYS_PATH = PATHS.keys;
/** Keyed tasks read at once while searching for a task whose id was not filled. */
const SEARCH_CHUNK = 500;

/** The hash of a key: the name of its node. */
export function keyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export const keyBucketPath = (bucket: string) => `${KEYS_PATH}/${bucket}`;

/** `/keys/<first two hex digits>/<sha256 hex>` */
export function keyPath(key: string): string {
  const h = keyHash(key);
  return `${KEYS_PATH}/${h.slice(0, 2)}/${h}`;
}

/** The 256 bucket names, `00` … `ff`. */
export const KEY_BUCKETS: readonly string[] = Array.from({ length: 256 }, (_, i) =>
  i.toString(16).padStart(2, '0'),
);

export interface KeyRecord {
  key: string;
  /** The task's id, once filled in. */
  id?: string;
}

export function parseKeyRecord(data: Buffer | null | undefined): KeyRecord | undefined {
  try {
    const v = JSON.parse(data?.toString('utf8') ?? '') as Partial<KeyRecord>;
    if (typeof v.key !== 'string') return undefined;
    return typeof v.id === 'string' ? { key: v.key, id: v.id } : { key: v.key };
  } catch {
    return undefined;
  }
}

/** One task to create: its encoded JSON and its key, if any. */
export interface KeyedItem {
  data: Buffer;
  key?: string;
}

/** A created (or found) task: its id, and whether an earlier submission with its key made it. */
export interface KeyedOutcome {
  id: string;
  existed: boolean;
}

export interface KeyedOptions {
  /** How long to keep sending through connection trouble, and to wait for an id to be filled (ms). */
  waitMs: number;
  signal?: AbortSignal;
}

const isConnectionTrouble = (err: unknown) =>
  isZkError(err, 'CONNECTION_LOSS', 'OPERATION_TIMEOUT', 'SESSION_EXPIRED') ||
  (err as { code?: string })?.code === ErrorCodes.SESSION_LOST ||
  (err as { code?: string })?.code === ErrorCodes.ZK_TIMEOUT;

/**
 * Create `items` in one multi (with their key nodes), in order; a task whose key is already held gets
 * the id of the task that holds it, and nothing is created for it. `client` is asked again after
 * connection trouble (a new session's client). See the module comment.
 */
export async function createKeyed(
  client: () => ZkClient,
  items: readonly KeyedItem[],
  options: KeyedOptions,
): Promise<KeyedOutcome[]> {
  const out: Array<KeyedOutcome | undefined> = new Array(items.length);
  // The same key twice in one call: the later ones get the first one's id.
  const firstOf = new Map<string, number>();
  const pending: number[] = [];
  items.forEach((it, i) => {
    const first = it.key === undefined ? undefined : firstOf.get(it.key);
    if (first === undefined) {
      if (it.key !== undefined) firstOf.set(it.key, i);
      pending.push(i);
    }
  });
  const retryable = items.every((it) => it.key !== undefined);
  const deadline = Date.now() + options.waitMs;
  const backoff = new Backoff({ initialMs: 50, maxMs: 2000 });
  let left = pending;
  while (left.length > 0) {
    try {
      left = await sendOnce(client(), items, left, out, options, deadline);
    } catch (err) {
      if (!retryable || !isConnectionTrouble(err) || Date.now() > deadline || options.signal?.aborted)
        throw err;
      await sleep(backoff.next());
    }
  }
  return items.map((it, i) => {
    const own = out[i];
    if (own) return own;
    const first = out[firstOf.get(it.key!)!]!;
    return { id: first.id, existed: true };
  });
}

/** One multi for the items of `left`; returns the ones still to send (their key nodes were missing a bucket). */
async function sendOnce(
  zk: ZkClient,
  items: readonly KeyedItem[],
  left: readonly number[],
  out: Array<KeyedOutcome | undefined>,
  options: KeyedOptions,
  deadline: number,
): Promise<number[]> {
  const tx = zk.transaction();
  for (const i of left) {
    const it = items[i]!;
    if (it.key !== undefined) tx.create(keyPath(it.key), encode({ key: it.key }));
    tx.create(`${PATHS.tasks}/${TASK_PREFIX}`, it.data, 2);
  }
  try {
    const results = await tx.commit();
    let r = 0;
    const fills: Array<Promise<unknown>> = [];
    for (const i of left) {
      const it = items[i]!;
      if (it.key !== undefined) r++;
      const id = results[r++]!.path!.slice(PATHS.tasks.length + 1);
      out[i] = { id, existed: false };
      // Version 0: only the first fill (a worker may have been quicker).
      if (it.key !== undefined)
        fills.push(zk.setData(keyPath(it.key), encode({ key: it.key, id }), 0).catch(() => {}));
    }
    await Promise.all(fills);
    return [];
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) {
      // A key bucket not made yet (no master has led since /keys was made): make them, send again.
      await Promise.all(
        left.flatMap((i) => {
          const key = items[i]!.key;
          return key === undefined ? [] : [zk.ensurePath(keyPath(key).slice(0, KEYS_PATH.length + 3))];
        }),
      );
      return [...left];
    }
    if (!isZkError(err, 'NODE_EXISTS')) throw err;
    // Some keys are held: find which, take their ids, and send the rest again.
    const keyed = left.filter((i) => items[i]!.key !== undefined);
    const reads = await zk.getDataMany(keyed.map((i) => keyPath(items[i]!.key!)));
    const held = new Set<number>();
    await Promise.all(
      keyed.map(async (i, k) => {
        const read = reads[k]!;
        if (read instanceof Error) {
          if (isZkError(read, 'NO_NODE')) return;
          throw read;
        }
        held.add(i);
        const id = await idOfHeldKey(zk, items[i]!.key!, read.data, read.stat, options, deadline);
        out[i] = { id, existed: true };
      }),
    );
    // NODE_EXISTS on no key node: a task node of that name exists, which a sequential create cannot meet.
    if (held.size === 0) throw err;
    return left.filter((i) => !held.has(i));
  }
}

/** The id of the task holding `key` (its key node read as `data`/`stat`), filling it in when missing. */
async function idOfHeldKey(
  zk: ZkClient,
  key: string,
  data: Buffer,
  stat: Stat,
  options: KeyedOptions,
  deadline: number,
): Promise<string> {
  const record = parseKeyRecord(data);
  if (record && record.key !== key) {
    throw new ZkfarmError(
      ErrorCodes.INVALID_TASK,
      `the key ${JSON.stringify(key)} has the same hash as the key ${JSON.stringify(record.key)} held in ${keyPath(key)}: ` +
        'choose another key',
    );
  }
  if (record?.id) return record.id;
  const found = await findKeyedTask(zk, key, stat);
  if (found) {
    await zk.setData(keyPath(key), encode({ key, id: found }), stat.version).catch(() => {});
    return found;
  }
  return waitForFill(zk, key, deadline, options.signal);
}

/**
 * Look for the task created with the key node `keyStat` in /tasks and /assign/*: its JSON holds `key`,
 * and it is the node created in the same transaction (same czxid) or, moved since, a task whose
 * `submittedAt` (the original node's ctime) is the key node's ctime. Reads every queued and assigned task:
 * this is the rare path (an answer lost with the connection).
 */
export async function findKeyedTask(zk: ZkClient, key: string, keyStat: Stat): Promise<string | undefined> {
  const paths = (await zk.getChildren(PATHS.tasks)).map((c) => `${PATHS.tasks}/${c}`);
  const workers = await zk.getChildren(PATHS.assign).catch(() => [] as string[]);
  const assigned = await Promise.all(
    workers.map((w) =>
      zk.getChildren(assignDir(w)).then(
        (ids) => ids.map((id) => `${assignDir(w)}/${id}`),
        () => [] as string[],
      ),
    ),
  );
  paths.push(...assigned.flat());
  for (let i = 0; i < paths.length; i += SEARCH_CHUNK) {
    const chunk = paths.slice(i, i + SEARCH_CHUNK);
    const reads = await zk.getDataMany(chunk);
    for (let k = 0; k < chunk.length; k++) {
      const r = reads[k]!;
      if (r instanceof Error) continue;
      if (isTaskOfKey(r.data, r.stat, key, keyStat)) return chunk[k]!.slice(chunk[k]!.lastIndexOf('/') + 1);
    }
  }
  return undefined;
}

function isTaskOfKey(data: Buffer, stat: Stat, key: string, keyStat: Stat): boolean {
  // A cheap test before parsing: the key's JSON must be in the data.
  if (!data.includes(JSON.stringify(key).slice(1, -1))) return false;
  try {
    const task = JSON.parse(data.toString('utf8')) as Task;
    if (task.key !== key) return false;
    return stat.czxid === keyStat.czxid || task._zkfarm?.submittedAt === keyStat.ctime;
  } catch {
    return false;
  }
}

/** Wait (with a data watch) until the key node holds an id; ZKFARM_KEY_PENDING past the deadline. */
async function waitForFill(
  zk: ZkClient,
  key: string,
  deadline: number,
  signal?: AbortSignal,
): Promise<string> {
  const path = keyPath(key);
  for (;;) {
    let changed!: () => void;
    const fired = new Promise<void>((resolve) => {
      changed = resolve;
    });
    const { data } = await zk.getData(path, () => changed());
    const id = parseKeyRecord(data)?.id;
    if (id) return id;
    const left = deadline - Date.now();
    if (left <= 0 || signal?.aborted) {
      throw new ZkfarmError(
        ErrorCodes.KEY_PENDING,
        `a task with the key ${JSON.stringify(key)} exists (${path}) but its id is not known yet: the answer to ` +
          'its submission was lost, and it is neither queued nor assigned; a worker fills the id in when it starts ' +
          'the task. Nothing was created twice: submit again later to learn the id',
      );
    }
    await Promise.race([fired, sleep(Math.min(left, 1000))]);
  }
}

/**
 * Fill in the id of a keyed task when its key node is still without it (called when a worker starts
 * the task). Only the key node made with this very task (same ctime as the task's `submittedAt`) is
 * filled: a key node made again after the window for a newer task is not this task's.
 */
export async function fillKeyId(zk: ZkClient, task: Task, id: string): Promise<boolean> {
  const key = task.key;
  if (typeof key !== 'string') return false;
  const submittedAt = task._zkfarm?.submittedAt;
  let read: { data: Buffer; stat: Stat };
  try {
    read = await zk.getData(keyPath(key));
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return false;
    throw err;
  }
  const record = parseKeyRecord(read.data);
  if (!record || record.key !== key || record.id) return false;
  if (submittedAt !== undefined && read.stat.ctime !== submittedAt) return false;
  try {
    await zk.setData(keyPath(key), encode({ key, id }), read.stat.version);
    return true;
  } catch (err) {
    if (isZkError(err, 'BAD_VERSION', 'NO_NODE')) return false;
    throw err;
  }
}
