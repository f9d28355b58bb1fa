/**
 * Submitter.submitMany's machinery: a list of tasks checked and encoded, cut into batches (at most
 * batchSize tasks and TASK_MAX_BYTES of data each), each batch created in one multi, a few multis in
 * flight at once.
 *
 * Znodes: creates /tasks/task-NNNNNNNNNN (persistent sequential), one multi per batch: all of a batch is
 * created, or none. A batch with keyed tasks goes through task-keys.ts (its multi also creates each
 * task's key node under /keys), and keyed batches go one at a time.
 *
 * SUSPENDED and LOST: nothing is sent again here but keyed batches (task-keys.ts, safe with a key). A multi
 * that fails with the connection (CONNECTION_LOSS, OPERATION_TIMEOUT, SESSION_LOST) may or may not have
 * created its batch: the error says so (lossCaveat) and carries `submitted`, the ids ZooKeeper confirmed
 * before it, in order. Submitter.submit uses lossCaveat for its single create too.
 */
import { ErrorCodes } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import { encodeTask, PATHS, TASK_MAX_BYTES, TASK_PREFIX, type Task } from './protocol.js';
import { createKeyed } from './task-keys.js';

/**
 * Multis one submitMany() keeps in flight. Each waits for ZooKeeper's commit (an fsync shared with other
 * requests): with one at a time, submitting runs at one batch per commit round trip, below what the farm
 * drains (benchmarks/README.md has the measurements); a few in flight keep the commits busy.
 */
export const SUBMIT_WINDOW = 4;

/** The error of a submitMany() that failed part-way: `submitted` are the ids confirmed, in order. */
export type SubmitManyError = Error & { submitted: string[] };

/** What submitMany needs of its submitter. */
export interface BatchHost {
  client(): ZkClient;
  /** Wait for room in /tasks for `n` more tasks (the submitter's backpressure). */
  room(n: number): Promise<void>;
  /** `n` tasks were sent to /tasks (the submitter's estimate of its depth). */
  added(n: number): void;
  /** Tasks per multi (at most 200). */
  batchSize: number;
  /** Keyed tasks: see SubmitterOptions.keyWaitMs. */
  keyWaitMs: number;
}

interface Batch {
  from: number;
  to: number;
  ids?: string[];
}

/**
 * Submit many tasks in batched multis; returns their ids in order. All are checked before any is sent.
 * Up to SUBMIT_WINDOW multis are in flight at once (ZooKeeper answers one session's requests in order,
 * so the ids keep the order of `list`). If it fails part-way, the error carries `submitted` (SubmitManyError).
 */
export async function submitMany(host: BatchHost, list: Task[]): Promise<string[]> {
  const encoded = list.map((t, i) => {
    try {
      return encodeTask(t);
    } catch (err) {
      (err as Error).message = `task #${i + 1}: ${(err as Error).message}`;
      throw err;
    }
  });
  // A key twice in one call: its first task is sent, the later ones get its id.
  const firstOfKey = new Map<string, number>();
  const send: number[] = [];
  list.forEach((t, i) => {
    if (t.key !== undefined && firstOfKey.has(t.key)) return;
    if (t.key !== undefined) firstOfKey.set(t.key, i);
    send.push(i);
  });
  const ids = await submitEncoded(
    host,
    send.map((i) => encoded[i]!),
    send.map((i) => list[i]!.key),
  );
  if (send.length === list.length) return ids;
  const idOf = new Map(send.map((i, k) => [i, ids[k]!]));
  return list.map((t, i) => idOf.get(i) ?? idOf.get(firstOfKey.get(t.key!)!)!);
}

/** submitMany's tasks, encoded, with their keys (none twice): batched multis, a window in flight. */
async function submitEncoded(
  host: BatchHost,
  encoded: Buffer[],
  keys: Array<string | undefined>,
): Promise<string[]> {
  const batches = batchesOf(encoded, host.batchSize);
  // Keyed batches one at a time: one whose key is held is sent again without it, before the next goes,
  // so that ids keep the order of the tasks.
  const window = keys.some((k) => k !== undefined) ? 1 : SUBMIT_WINDOW;
  const inFlight = new Set<Promise<void>>();
  /** A multi that failed (its batch may or may not be in /tasks), and a failure before sending one. */
  let lost: { err: unknown } | undefined;
  let refused: { err: unknown } | undefined;
  for (const batch of batches) {
    if (lost) break;
    try {
      await host.room(batch.to - batch.from);
      if (lost) break;
      const sent: Promise<void> = sendBatch(host, encoded, keys, batch.from, batch.to).then(
        (ids) => {
          batch.ids = ids;
        },
        (err: unknown) => {
          lost ??= { err };
        },
      );
      inFlight.add(sent);
      void sent.finally(() => inFlight.delete(sent));
    } catch (err) {
      refused = { err };
      break;
    }
    host.added(batch.to - batch.from);
    if (inFlight.size >= window) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const ids = batches.flatMap((b) => b.ids ?? []);
  // A multi that failed outranks a refusal: its batch's fate is unknown, and the message must say so.
  if (lost || refused) {
    const err = lost ? lossCaveat(lost.err, ids.length) : refused!.err;
    if (!lost && ids.length > 0 && err instanceof Error)
      err.message += ` (the first ${ids.length} tasks of this call were submitted: their ids are in the error's \`submitted\`)`;
    if (typeof err === 'object' && err !== null) Object.assign(err, { submitted: ids });
    throw err;
  }
  return ids;
}

/** Consecutive runs of tasks for one multi each: at most batchSize tasks and TASK_MAX_BYTES of data. */
function batchesOf(encoded: readonly Buffer[], batchSize: number): Batch[] {
  const batches: Batch[] = [];
  for (let i = 0; i < encoded.length; ) {
    let bytes = 0;
    let j = i;
    while (
      j < encoded.length &&
      j - i < batchSize &&
      (j === i || bytes + encoded[j]!.length <= TASK_MAX_BYTES)
    ) {
      bytes += encoded[j]!.length;
      j++;
    }
    batches.push({ from: i, to: j });
    i = j;
  }
  return batches;
}

/** One batch in one multi; with keys through task-keys.ts (tasks whose key is held are not created). */
async function sendBatch(
  host: BatchHost,
  encoded: readonly Buffer[],
  keys: ReadonlyArray<string | undefined>,
  from: number,
  to: number,
): Promise<string[]> {
  if (keys.slice(from, to).some((k) => k !== undefined)) {
    const items = encoded.slice(from, to).map((data, k) => ({ data, key: keys[from + k] }));
    const outcomes = await createKeyed(() => host.client(), items, { waitMs: host.keyWaitMs });
    return outcomes.map((o) => o.id);
  }
  const tx = host.client().transaction();
  for (let k = from; k < to; k++) tx.create(`${PATHS.tasks}/${TASK_PREFIX}`, encoded[k], 2);
  const results = await tx.commit();
  return results.map((r) => r.path!.slice(PATHS.tasks.length + 1));
}

/** A create that failed with the connection may have created its task: the message says so. */
export function lossCaveat(err: unknown, submittedBefore?: number): unknown {
  if (
    isZkError(err, 'CONNECTION_LOSS', 'OPERATION_TIMEOUT') ||
    (err as { code?: string })?.code === ErrorCodes.SESSION_LOST
  ) {
    const e = err as Error;
    const before =
      submittedBefore !== undefined
        ? ` (${submittedBefore} tasks were confirmed: their ids are in the error's \`submitted\`)`
        : '';
    e.message += `; the connection dropped while submitting, so the task may or may not be in /tasks${before}: check before submitting again`;
  }
  return err;
}
