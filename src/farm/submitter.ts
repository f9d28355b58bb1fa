/**
 * Submitter: puts tasks into /tasks and waits for their results in /status.
 *
 * Znodes: creates /tasks/task-NNNNNNNNNN (persistent sequential); many at once go in one multi per batch
 * (all of a batch is submitted, or none; submit-many.ts). Reads /tasks' child count for backpressure, and watches
 * /status/<bucket>/<id> to wait for a result (a watch, not polling; it survives a new session; many waits
 * in one bucket share a watch on the bucket: result-watches.ts).
 *
 * Waiting: a watch on /status/<id>, plus a check every few seconds that the task is still somewhere
 * (task-locator.ts): a task that is neither queued, assigned nor finished (deleted, or its result
 * already removed by retention) fails the wait with ZKFARM_TASK_NOT_FOUND instead of waiting for ever.
 *
 * Backpressure: when /tasks holds `maxQueue` tasks or more, submitting waits until it drains below
 * (or fails with ZKFARM_QUEUE_FULL after `queueWaitMs`). A very deep /tasks would make its listing exceed
 * ZooKeeper's 1 MB packet limit for every client.
 *
 * A caveat ZooKeeper imposes on every client: if the connection drops while a sequential create is in
 * flight, the server may have created the task without the client learning its name. Such a submit
 * fails with CONNECTION_LOSS and a message that says so; it is not retried, which could duplicate it.
 * A task with a `key` is the exception: its multi also creates its key node, so sending it again cannot
 * make a second task, and it is sent again (task-keys.ts).
 *
 * Traces: each call is a `zkfarm submit` span whose W3C context goes into its tasks (tracing.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../backoff.js';
import { ErrorCodes, hasCode, ZkfarmError } from '../errors.js';
import type { TraceCarrier } from '../exec/trace-context.js';
import type { ConnectOptions } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import { connect, type Supervisor } from '../zk/supervisor.js';
import { type CancelOptions, type CancelResult, cancelTasks, waitingTasksOf } from './cancel-client.js';
import { type FailedFilter, type FailedResult, failedResults, rerunOf } from './dead-letters.js';
import { type EventStream, type EventStreamOptions, watchEvents } from './event-stream.js';
import { checkSubmitterOptions } from './options.js';
import { type ProgressRecord, readTaskProgress } from './progress.js';
import { encodeTask, PATHS, parseStatus, TASK_PREFIX, type Task, type TaskStatus } from './protocol.js';
import { ResultWatches } from './result-watches.js';
import { readResult } from './status-store.js';
import { type BatchHost, lossCaveat, submitMany } from './submit-many.js';
import { type StreamResult, StreamSubmit, type SubmitStreamOptions } from './submit-stream.js';
import { ensureFreshTaskIds, idsChecked } from './task-ids.js';
import { createKeyed, type KeyedOutcome } from './task-keys.js';
import { TaskLocator } from './task-locator.js';
import { inSubmitSpan, stamped } from './tracing.js';

export interface SubmitterOptions extends Omit<ConnectOptions, 'connect'> {
  /** @defaultValue 127.0.0.1:2181 */
  connect?: string;
  /** Most tasks waiting in /tasks before submitting waits. @defaultValue 20000 */
  maxQueue?: number;
  /** How long a submit waits for room before failing with ZKFARM_QUEUE_FULL. @defaultValue 60000 */
  queueWaitMs?: number;
  /** Tasks per multi when submitting many (at most 200). @defaultValue 100 */
  batchSize?: number;
  /**
   * Keyed tasks: how long a submit keeps sending through connection trouble, and waits for the id of a
   * task its key already holds (task-keys.ts). @defaultValue 60000
   */
  keyWaitMs?: number;
}

// submitMany's batching lives in submit-many.ts; its names stay importable from here.
export { SUBMIT_WINDOW, type SubmitManyError } from './submit-many.js';

export class Submitter {
  readonly supervisor: Supervisor;
  readonly #maxQueue: number;
  readonly #queueWaitMs: number;
  readonly #batchSize: number;
  readonly #keyWaitMs: number;
  /** Estimated depth of /tasks: last read plus what we added since. */
  #depth = 0;
  #depthReadAt = 0;
  readonly #locator: TaskLocator;
  readonly #results: ResultWatches;
  /** Waiters by task id, told when the task is nowhere. */
  readonly #nowhere = new Map<string, Array<(err: Error) => void>>();
  /** What submitMany (submit-many.ts) needs of this submitter. */
  readonly #batchHost: BatchHost;

  private constructor(supervisor: Supervisor, options: ReturnType<typeof checkSubmitterOptions>) {
    this.supervisor = supervisor;
    this.#results = new ResultWatches(supervisor);
    this.#locator = new TaskLocator(
      () => supervisor.session?.client,
      (id) => {
        const err = new ZkfarmError(
          ErrorCodes.TASK_NOT_FOUND,
          `task ${id} is neither queued, assigned nor finished: it was deleted, or it finished and its result ` +
            'was removed by retention (retention.maxCount, retention.maxAgeMs); submit it again if it is still needed',
        );
        for (const fail of this.#nowhere.get(id) ?? []) fail(err);
      },
    );
    this.#maxQueue = options.maxQueue;
    this.#queueWaitMs = options.queueWaitMs;
    this.#batchSize = Math.min(options.batchSize, 200);
    this.#keyWaitMs = options.keyWaitMs;
    this.#batchHost = {
      client: () => this.#client(),
      room: (n) => this.#room(n),
      added: (n) => {
        this.#depth += n;
      },
      batchSize: this.#batchSize,
      keyWaitMs: this.#keyWaitMs,
    };
  }

  /** Connect (pass-through mode: the session stays open until `close()`). */
  static async open(options: SubmitterOptions = {}): Promise<Submitter> {
    // Checked before connecting: a batch size of NaN would loop for ever, a queue limit of 0 never admit.
    const checked = checkSubmitterOptions(options);
    // The chroot is not created here: a chroot that does not exist means no farm runs there (a typo in
    // the connect string), and the session check reports it (ZKFARM_CHROOT_MISSING) instead of letting
    // tasks wait in a place no master reads.
    const opts: ConnectOptions = { ...options, ...checked };
    const sup = connect(opts, async (session) => {
      await Promise.all([session.client.ensurePath(PATHS.tasks), session.client.ensurePath(PATHS.status)]);
      await ensureFreshTaskIds(session.client);
    });
    try {
      await sup.ready;
    } catch (err) {
      await sup.stop();
      throw err;
    }
    return new Submitter(sup, checked);
  }

  #client() {
    const s = this.supervisor.session;
    if (!s) throw new ZkfarmError(ErrorCodes.SESSION_LOST, 'not connected to ZooKeeper right now; try again');
    return s.client;
  }

  /**
   * Submit one task; returns its id (`task-NNNNNNNNNN`). A task with a `key` is created at most once
   * while its key is remembered: a second submit returns the first task's id (see submitKeyed).
   */
  submit(task: Task): Promise<string> {
    if (task?.key !== undefined) return this.submitKeyed(task).then((o) => o.id);
    return inSubmitSpan({ 'zkfarm.tasks': 1 }, (carrier) => this.#submitOne(stamped(task, carrier)));
  }

  async #submitOne(task: Task): Promise<string> {
    const data = encodeTask(task);
    await this.#room(1);
    try {
      const path = await this.#client().createSequential(`${PATHS.tasks}/${TASK_PREFIX}`, data);
      this.#depth++;
      return path.slice(PATHS.tasks.length + 1);
    } catch (err) {
      throw lossCaveat(err);
    }
  }

  /**
   * Submit a task with a `key` (task-keys.ts): `existed` says an earlier submission with the key made
   * it, and nothing was created now. Connection trouble in the middle is retried (safe with a key) for up
   * to `keyWaitMs`; ZKFARM_KEY_PENDING when the key is held but its task's id cannot be learnt in time.
   */
  submitKeyed(task: Task): Promise<KeyedOutcome> {
    if (typeof task?.key !== 'string')
      return Promise.reject(new ZkfarmError(ErrorCodes.INVALID_TASK, 'submitKeyed: the task has no "key"'));
    const attributes = { 'zkfarm.tasks': 1, 'zkfarm.key': task.key };
    return inSubmitSpan(attributes, (carrier) => this.#submitKeyed(stamped(task, carrier)));
  }

  async #submitKeyed(task: Task): Promise<KeyedOutcome> {
    const data = encodeTask(task);
    await this.#room(1);
    const [outcome] = await createKeyed(() => this.#client(), [{ data, key: task.key }], {
      waitMs: this.#keyWaitMs,
    });
    if (!outcome!.existed) this.#depth++;
    return outcome!;
  }

  /**
   * Submit many tasks in batched multis; returns their ids in order. All are checked before any is sent.
   * Up to SUBMIT_WINDOW multis are in flight at once (ZooKeeper answers one session's requests in order,
   * so the ids keep the order of `tasks`). If it fails part-way, the error carries `submitted`: the ids
   * ZooKeeper confirmed, in order, which are in /tasks and will run; see its message for the rest.
   */
  submitMany(tasks: Iterable<Task>): Promise<string[]> {
    const list = [...tasks];
    // One span for the call: its context goes into every task (a span per task would cost more than the task).
    return inSubmitSpan({ 'zkfarm.tasks': list.length }, (carrier) =>
      submitMany(
        this.#batchHost,
        list.map((t) => stamped(t, carrier)),
      ),
    );
  }

  /**
   * Submit a stream of tasks (a generator, lines of a file) with bounded memory: batched multis, ids
   * handed to `onSubmitted` as batches are confirmed (not kept), and backpressure that waits while the
   * inbox /tasks holds `maxInbox` tasks (default: maxQueue) instead of failing; see submit-stream.ts.
   * A bad task stops it (default; the error's `submitted` and `position` say where to resume) or is
   * skipped (`onBad: 'skip'`).
   */
  submitStream(
    tasks: AsyncIterable<Task> | Iterable<Task>,
    options: SubmitStreamOptions = {},
  ): Promise<StreamResult> {
    const host = {
      client: () => this.#client(),
      batchSize: this.#batchSize,
      maxInbox: this.#maxQueue,
      keyWaitMs: this.#keyWaitMs,
    };
    return inSubmitSpan({ 'zkfarm.stream': true }, (carrier) =>
      new StreamSubmit(host, options).run(carrier.traceparent ? stampAll(tasks, carrier) : tasks),
    );
  }

  /** Wait for room in /tasks (see Backpressure in the module comment). */
  async #room(n: number): Promise<void> {
    const deadline = Date.now() + this.#queueWaitMs;
    const backoff = new Backoff({ initialMs: 50, maxMs: 1000 });
    for (;;) {
      const fresh = Date.now() - this.#depthReadAt < 1000;
      if (fresh && this.#depth + n <= this.#maxQueue * 0.8) return;
      const stat = await this.#client().exists(PATHS.tasks);
      // /tasks made again since we last looked: no id may be handed out before its counter is checked.
      if (!idsChecked(stat)) await ensureFreshTaskIds(this.#client());
      this.#depth = stat?.numChildren ?? 0;
      this.#depthReadAt = Date.now();
      if (this.#depth + n <= this.#maxQueue) return;
      if (Date.now() > deadline) {
        throw new ZkfarmError(
          ErrorCodes.QUEUE_FULL,
          `the queue holds ${this.#depth} tasks (limit ${this.#maxQueue}) and did not drain within ${this.#queueWaitMs} ms; ` +
            'add workers, or wait and submit again',
        );
      }
      await sleep(backoff.next());
    }
  }

  /** A running task's latest progress (progress.ts), or undefined when it reported none or is not running. */
  progress(id: string): Promise<ProgressRecord | undefined> {
    return readTaskProgress(this.#client(), id);
  }

  /**
   * The farm's task events as an async iterator, on a session of its own (event-stream.ts): await
   * `ready`, then `for await (const ev of stream)`; `break` or `close()` ends it.
   */
  events(filter: EventStreamOptions = {}): EventStream {
    return watchEvents(this.supervisor.options, filter);
  }

  /**
   * Re-run failed tasks: each is submitted again as it was first submitted, linked to the original
   * (dead-letters.ts). One answer per id, in order: the new task's id, or why it was not re-run.
   */
  async retry(ids: readonly string[]): Promise<Array<{ id: string; retry?: string; error?: string }>> {
    const out: Array<{ id: string; retry?: string; error?: string }> = [];
    for (const id of ids) {
      try {
        out.push({ id, retry: await this.submit(rerunOf(id, await this.result(id))) });
      } catch (err) {
        if (!hasCode(err, ErrorCodes.NOT_RETRYABLE)) throw err;
        out.push({ id, error: (err as Error).message });
      }
    }
    return out;
  }

  /**
   * Cancel tasks: one answer per id, in order: `cancelled`, `finished-first`, `not-found` or `pending`
   * (no final status within `waitMs`; the request stands). See cancel-client.ts.
   */
  cancel(ids: readonly string[], options: CancelOptions = {}): Promise<CancelResult[]> {
    const waitFor = (id: string, timeoutMs: number) => this.waitFor(id, { timeoutMs });
    return cancelTasks({ client: () => this.#client(), waitFor }, ids, options);
  }

  /** The ids of a queue's tasks still waiting (not handed to a worker), in id order. */
  waiting(queue: string): Promise<string[]> {
    return waitingTasksOf(this.#client(), queue);
  }

  /** The kept failed results that match, in id order (dead-letters.ts). */
  failed(filter: FailedFilter = {}): AsyncGenerator<FailedResult> {
    return failedResults(this.#client(), filter);
  }

  /** Read a task's result, or undefined when it has none yet. */
  async result(id: string): Promise<TaskStatus | undefined> {
    try {
      const found = await readResult(this.#client(), id);
      return found ? parseStatus(found.data) : undefined;
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return undefined;
      throw err;
    }
  }

  /**
   * Wait for a task's result (a watch on /status/<id>; survives reconnects and new sessions). Fails
   * with ZKFARM_TASK_NOT_FOUND when the task is nowhere (see the module comment), ZKFARM_WAIT_TIMEOUT
   * after `timeoutMs`, ZKFARM_STOPPED when `signal` aborts.
   */
  waitFor(id: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TaskStatus> {
    return new Promise<TaskStatus>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (err: Error | undefined, status?: TaskStatus) => {
        clearTimeout(timer);
        watch.close();
        options.signal?.removeEventListener('abort', onAbort);
        const waiters = this.#nowhere.get(id)?.filter((w) => w !== onNowhere) ?? [];
        if (waiters.length > 0) this.#nowhere.set(id, waiters);
        else if (this.#nowhere.delete(id)) this.#locator.remove(id);
        if (err) reject(err);
        else resolve(status!);
      };
      const onAbort = () => finish(new ZkfarmError(ErrorCodes.STOPPED, `stopped waiting for ${id}`));
      const onNowhere = (err: Error) => finish(err);
      const watch = this.#results.watch(id, (data) => {
        try {
          finish(undefined, parseStatus(data));
        } catch (err) {
          finish(
            new ZkfarmError(
              ErrorCodes.INVALID_TASK,
              `the status of ${id} is not a valid status: ${(err as Error).message}`,
            ),
          );
        }
      });
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            finish(
              new ZkfarmError(ErrorCodes.WAIT_TIMEOUT, `no result for ${id} within ${options.timeoutMs} ms`),
            ),
          options.timeoutMs,
        );
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#nowhere.set(id, [...(this.#nowhere.get(id) ?? []), onNowhere]);
      this.#locator.add(id);
    });
  }

  /** Wait for the results of many tasks. */
  waitForAll(
    ids: readonly string[],
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<TaskStatus[]> {
    return Promise.all(ids.map((id) => this.waitFor(id, options)));
  }

  close(): Promise<void> {
    this.#locator.close();
    this.#results.close();
    return this.supervisor.stop();
  }
}

/** The tasks of a stream, each with the stream's trace context (pulled one at a time, as the stream does). */
async function* stampAll(
  tasks: AsyncIterable<Task> | Iterable<Task>,
  carrier: TraceCarrier,
): AsyncGenerator<Task> {
  for await (const t of tasks) yield stamped(t, carrier);
}
