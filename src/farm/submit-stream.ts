/**
 * Submitting a stream of tasks (a file of a million lines, a generator): batched multis, bounded memory,
 * and backpressure that waits for the farm instead of refusing.
 *
 * Znodes: creates /tasks/task-NNNNNNNNNN (persistent sequential), many per multi; reads /tasks' stat
 * (its child count) and /master (the leader's per-queue summary) for backpressure.
 *
 * Memory: the tasks of the batch being filled and of at most SUBMIT_WINDOW multis in flight; the source
 * is pulled one task at a time (an async iterator is not read ahead), and ids are handed to
 * `onSubmitted` batch by batch, not kept.
 *
 * Backpressure: the inbox /tasks never holds more than `maxInbox` tasks because of this stream. A batch
 * goes when the depth last read plus what this stream sent since, plus the batch, fits; otherwise the
 * stream lets its multis in flight settle, reads the depth again, and waits (a backoff from 50 ms to
 * 1 s, src/backoff.ts) while it does not fit, for as long as it takes the farm to drain. Other clients'
 * tasks count in the depth read but not in between: the bound holds for this stream, and the inbox may
 * pass it by what others add meanwhile.
 * Per queue: a queue's own depth (its tasks read and waiting, in the inbox or the deep-queue backlog, as
 * the leading master last published them in /master, plus what this stream sent of it since) is kept
 * under `maxQueueDepth`: a batch holding tasks of a queue over it waits the same way, and the progress
 * says which queue it waits for. Since the leader drains the inbox into the backlog (even for a paused
 * queue), a deep or paused queue holds back only the streams of that queue, never those of the others.
 * Without a leader (no /master) only the inbox bound holds.
 *
 * Keys: a batch with keyed tasks goes through task-keys.ts (a task whose key is held is not created; it
 * gets the holder's id), alone in flight, so that ids keep the source's order.
 *
 * Order and failure: multis are answered in order, so ids keep the source's order. A bad task stops the
 * stream (after what was sent is confirmed) or is skipped (`onBad: 'skip'`), reported with its position.
 * A multi that fails (connection loss) stops the stream; its batch may or may not be in /tasks; the error
 * says how many tasks were confirmed before it, so a caller can resume after them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../backoff.js';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import {
  encodeTask,
  type MasterInfo,
  PATHS,
  queueOf,
  TASK_MAX_BYTES,
  TASK_PREFIX,
  type Task,
} from './protocol.js';
import { ensureFreshTaskIds, idsChecked } from './task-ids.js';
import { createKeyed } from './task-keys.js';

/** Multis in flight at once (see submit-many.ts SUBMIT_WINDOW for why a few). */
const WINDOW = 4;
/** The default bound of one queue's depth: the million tasks the layout is sized for (docs/configuration.md). */
export const MAX_QUEUE_DEPTH = 1_000_000;

export interface SubmitStreamOptions {
  /** A bad task stops the stream (what was sent before it stays submitted) or is skipped. @defaultValue 'stop' */
  onBad?: 'stop' | 'skip';
  /** Most tasks in /tasks this stream lets it reach. @defaultValue the submitter's maxQueue (20000) */
  maxInbox?: number;
  /**
   * Most tasks waiting in one queue (inbox and backlog, as the leader publishes them) this stream lets it
   * reach: a batch of a queue over it waits. @defaultValue 1000000
   */
  maxQueueDepth?: number;
  /** Each confirmed batch's ids, in order; `first` is the position (0-based) of the first in the source. */
  onSubmitted?: (ids: string[], first: number) => void;
  /** A skipped task: its position (0-based) and why (with `onBad: 'skip'`). */
  onSkipped?: (position: number, error: Error) => void;
  /** Called as the stream goes (after each batch, and while it waits for room). */
  onProgress?: (p: StreamProgress) => void;
  /** Stops the stream: nothing more is sent; what is in flight is confirmed first. */
  signal?: AbortSignal;
}

export interface StreamProgress {
  /** Tasks taken from the source (including skipped ones). */
  read: number;
  /** Tasks confirmed in /tasks. */
  submitted: number;
  skipped: number;
  /** The inbox depth last read. */
  inbox: number;
  /** Waiting for the farm to drain the inbox, or a queue. */
  waiting: boolean;
  /** While waiting: what for (the inbox, or which queue, with its depth and bound). */
  waitingFor?: string;
}

export interface StreamResult {
  submitted: number;
  skipped: number;
  read: number;
}

/** A stream that stopped: the tasks confirmed before it stopped, so that a caller can resume after them. */
export type SubmitStreamError = Error & { code?: string; submitted: number; position?: number };

/** What a stream needs of its submitter. */
export interface StreamHost {
  client(): ZkClient;
  batchSize: number;
  maxInbox: number;
  /** Keyed tasks: see SubmitterOptions.keyWaitMs. */
  keyWaitMs: number;
}

interface Batch {
  first: number;
  data: Buffer[];
  bytes: number;
  /** Tasks per queue. */
  queues: Map<string, number>;
  /** Each task's key, when any has one (task-keys.ts). */
  keys: Array<string | undefined>;
}

export class StreamSubmit {
  readonly #host: StreamHost;
  readonly #opts: SubmitStreamOptions;
  readonly #bound: number;
  readonly #queueBound: number;
  /** Per queue: its depth as the leader last published it, plus what this stream sent of it since. */
  #depths = new Map<string, number>();
  readonly #progress: StreamProgress = { read: 0, submitted: 0, skipped: 0, inbox: 0, waiting: false };
  readonly #inFlight = new Set<Promise<void>>();
  /** Depth last read plus what was sent since. */
  #estimate = 0;
  #estimateKnown = false;
  #failed: { err: unknown } | undefined;
  /** Confirmations are reported in order: each waits for the one before. */
  #reported: Promise<void> = Promise.resolve();

  constructor(host: StreamHost, options: SubmitStreamOptions) {
    this.#host = host;
    this.#opts = options;
    this.#bound = options.maxInbox ?? host.maxInbox;
    if (!Number.isSafeInteger(this.#bound) || this.#bound < 1)
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `maxInbox: expected a whole number ≥ 1, got ${String(options.maxInbox)}`,
      );
    this.#queueBound = options.maxQueueDepth ?? MAX_QUEUE_DEPTH;
    if (!Number.isSafeInteger(this.#queueBound) || this.#queueBound < 1)
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `maxQueueDepth: expected a whole number ≥ 1, got ${String(options.maxQueueDepth)}`,
      );
  }

  async run(source: AsyncIterable<Task> | Iterable<Task>): Promise<StreamResult> {
    let batch: Batch = { first: 0, data: [], bytes: 0, queues: new Map(), keys: [] };
    let stop: SubmitStreamError | undefined;
    for await (const task of source) {
      const position = this.#progress.read++;
      if (this.#failed || this.#opts.signal?.aborted) break;
      let data: Buffer;
      try {
        data = encodeTask(task);
      } catch (err) {
        const e = err as Error;
        e.message = `task #${position + 1}: ${e.message}`;
        if (this.#opts.onBad === 'skip') {
          this.#progress.skipped++;
          this.#opts.onSkipped?.(position, e);
          continue;
        }
        stop = Object.assign(e, { submitted: 0, position });
        break;
      }
      if (
        batch.data.length > 0 &&
        (batch.data.length >= this.#host.batchSize || batch.bytes + data.length > TASK_MAX_BYTES)
      ) {
        await this.#send(batch);
        batch = { first: position, data: [], bytes: 0, queues: new Map(), keys: [] };
      }
      if (batch.data.length === 0) batch.first = position;
      batch.data.push(data);
      batch.keys.push(task.key);
      batch.bytes += data.length;
      const q = queueOf(task);
      batch.queues.set(q, (batch.queues.get(q) ?? 0) + 1);
    }
    if (batch.data.length > 0 && !this.#failed && !this.#opts.signal?.aborted) await this.#send(batch);
    await Promise.all(this.#inFlight);
    await this.#reported;
    const p = this.#progress;
    if (this.#failed) throw streamLoss(this.#failed.err, p.submitted);
    if (stop) {
      stop.submitted = p.submitted;
      throw stop;
    }
    this.#opts.onProgress?.(p);
    return { submitted: p.submitted, skipped: p.skipped, read: p.read };
  }

  async #send(batch: Batch): Promise<void> {
    await this.#room(batch);
    const keyed = batch.keys.some((k) => k !== undefined);
    if (keyed) await Promise.all(this.#inFlight);
    if (this.#failed || this.#opts.signal?.aborted) return;
    this.#estimate += batch.data.length;
    for (const [q, n] of batch.queues) this.#depths.set(q, (this.#depths.get(q) ?? 0) + n);
    const sent = this.#commit(batch).then(
      (ids) => {
        this.#reported = this.#reported.then(() => {
          this.#progress.submitted += ids.length;
          this.#opts.onSubmitted?.(ids, batch.first);
          this.#opts.onProgress?.(this.#progress);
        });
      },
      (err: unknown) => {
        this.#failed ??= { err };
      },
    );
    this.#inFlight.add(sent);
    void sent.finally(() => this.#inFlight.delete(sent));
    // Keyed batches one at a time (see Submitter.submitMany): ids keep the order of the tasks.
    if (keyed) await Promise.all(this.#inFlight);
    else if (this.#inFlight.size >= WINDOW) await Promise.race(this.#inFlight);
  }

  /** One batch in one multi; with keys through task-keys.ts (a task whose key is held is not created). */
  async #commit(batch: Batch): Promise<string[]> {
    if (batch.keys.some((k) => k !== undefined)) {
      const items = batch.data.map((data, k) => ({ data, key: batch.keys[k] }));
      const outcomes = await createKeyed(() => this.#host.client(), items, { waitMs: this.#host.keyWaitMs });
      return outcomes.map((o) => o.id);
    }
    const tx = this.#host.client().transaction();
    for (const d of batch.data) tx.create(`${PATHS.tasks}/${TASK_PREFIX}`, d, 2);
    const results = await tx.commit();
    return results.map((r) => r.path!.slice(PATHS.tasks.length + 1));
  }

  /** Wait until the batch fits in the inbox and in its queues (see Backpressure in the module comment). */
  async #room(batch: Batch): Promise<void> {
    if (this.#estimateKnown && this.#blocker(batch) === undefined) return;
    const backoff = new Backoff({ initialMs: 50, maxMs: 1000 });
    // Our multis in flight settle first, so that the depth read counts them.
    await Promise.all(this.#inFlight);
    for (;;) {
      if (this.#failed || this.#opts.signal?.aborted) return;
      const client = this.#host.client();
      const stat = await client.exists(PATHS.tasks);
      // /tasks made again since we last looked: no id may be handed out before its counter is checked.
      if (!idsChecked(stat)) await ensureFreshTaskIds(client);
      this.#estimate = stat?.numChildren ?? 0;
      this.#estimateKnown = true;
      this.#progress.inbox = this.#estimate;
      this.#depths = await queueDepths(client);
      const blocker = this.#blocker(batch);
      if (blocker === undefined) {
        this.#progress.waiting = false;
        delete this.#progress.waitingFor;
        return;
      }
      this.#progress.waiting = true;
      this.#progress.waitingFor = blocker;
      this.#opts.onProgress?.(this.#progress);
      await sleep(
        backoff.next(),
        undefined,
        this.#opts.signal ? { signal: this.#opts.signal } : undefined,
      ).catch(() => {});
    }
  }

  /** What the batch waits for (the inbox, or one of its queues), or undefined: it fits. */
  #blocker(batch: Batch): string | undefined {
    const n = batch.data.length;
    if (this.#estimate + n > this.#bound)
      return `the inbox /tasks holds ${this.#estimate} tasks (this stream keeps it under ${this.#bound})`;
    for (const [q, k] of batch.queues) {
      const depth = this.#depths.get(q) ?? 0;
      if (depth + k > this.#queueBound)
        return `queue "${q}" holds ${depth} tasks waiting (this stream keeps it under ${this.#queueBound})`;
    }
    return undefined;
  }
}

/** Each queue's tasks waiting (read, or in its backlog) as the leading master last published them. */
async function queueDepths(client: ZkClient): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const master = await client.getJson<MasterInfo>(PATHS.master).catch(() => undefined);
  for (const q of master?.value.queue?.queues ?? []) out.set(q.queue, q.waiting + q.delayed);
  return out;
}

function streamLoss(err: unknown, submitted: number): SubmitStreamError {
  const e = (err instanceof Error ? err : new Error(String(err))) as SubmitStreamError;
  e.message +=
    `; ${submitted} tasks were confirmed in order from the start of the stream; the batch that failed may or ` +
    'may not be in /tasks: check before submitting the rest again';
  e.submitted = submitted;
  return e;
}
