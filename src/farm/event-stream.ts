/**
 * EventStream: a farm's task events (task-events.ts) as an async iterator, on a session of its own.
 *
 * Znodes: one persistent recursive watch (ZooKeeper 3.6+ `addWatch`) on each of /tasks, /assign,
 * /progress, /status and /queues; reads the node each notification names (one `getData`; the backlog's
 * path alone says its queue). Writes nothing: events cost the farm no write per task.
 *
 * Guarantees:
 * - Order: ZooKeeper sends a session's notifications in the order of its changes, and a task moves by one
 *   multi at a time. Reads are pipelined, but events leave in the order of their notifications (a read
 *   that is slow holds back the events after it), so each task's events are in the order of its moves:
 *   `queued` (or `retrying`) before `started`, `progress` between `started` and the result.
 * - A stream begins when `ready` resolves: it reports what happens from then on; a task already queued or
 *   running shows its later events only.
 * - A node gone before it was read still makes its event (a task that moved on at once: `queued` without
 *   its data's time, a result with its later data), except a progress report: the next, or the result,
 *   supersedes it.
 * - Bounded: at most `bufferSize` events wait for the consumer (and notifications for their reads). A
 *   consumer that falls further behind ends the stream: it has the events buffered, then the iterator
 *   throws ZKFARM_EVENTS_OVERFLOW (open a new stream, and read the state it missed with `runtime status`).
 *
 * SUSPENDED: the client registers the watches again when it reconnects, but ZooKeeper keeps no
 * notifications for them meanwhile: the stream reads the farm's state once the session resumes and makes
 * the events it infers, with `seen: false` (event-catchup.ts), in order with the rest.
 * LOST: a new session adds the watches again and catches up the same way.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import type { ConnectOptions } from '../zk/connect-options.js';
import type { Session } from '../zk/session.js';
import { connect, type Supervisor } from '../zk/supervisor.js';
import { catchUpEvents, type FollowedTask, readNode } from './event-catchup.js';
import { idNumber, PATHS } from './protocol.js';
import {
  classifyChange,
  EVENT_ROOTS,
  eventOf,
  isFinal,
  type NodeRead,
  notAhead,
  queueInData,
  type RawChange,
  type TaskEvent,
} from './task-events.js';

/** Which tasks a stream reports. Empty: every task of the farm. */
export interface EventFilter {
  /** Only tasks of these queues. */
  queue?: string | readonly string[];
  /** Only these tasks. */
  task?: string | readonly string[];
}

export interface EventStreamOptions extends EventFilter {
  /** Events (and notifications being read) held for a slow consumer before the stream overflows. @defaultValue 10000 */
  bufferSize?: number;
}

export const DEFAULT_EVENT_BUFFER = 10_000;

/** `seq`: the notification's place in the stream (see #stale). */
type Change = { raw: RawChange; read: Promise<NodeRead | undefined> | undefined; seq: number };
type Item = Change | { catchUp: Session };

const list = (v: string | readonly string[] | undefined) =>
  v === undefined ? undefined : new Set(typeof v === 'string' ? [v] : v);

export class EventStream implements AsyncIterable<TaskEvent> {
  /** Resolves once the watches are in place: events from then on are reported. */
  readonly ready: Promise<void>;
  readonly #supervisor: Supervisor;
  readonly #queues: Set<string> | undefined;
  readonly #tasks: Set<string> | undefined;
  readonly #limit: number;
  readonly #pending: Item[] = [];
  readonly #buffer: TaskEvent[] = [];
  /** Tasks seen and not finished: what a catch-up starts from, and each task's queue. */
  readonly #followed = new Map<string, FollowedTask>();
  #highest = -1;
  /** Notifications received so far; those before `#caughtUpAt` were sent before a catch-up's reads. */
  #seq = 0;
  #caughtUpAt = 0;
  readonly #inferred = new Set<string>();
  #draining = false;
  #error: Error | undefined;
  #ended = false;
  #wake: (() => void) | undefined;
  #resolveReady!: () => void;
  #rejectReady!: (err: Error) => void;
  readonly #unsubscribe: () => void;

  constructor(options: ConnectOptions, filter: EventStreamOptions = {}) {
    const size = filter.bufferSize ?? DEFAULT_EVENT_BUFFER;
    if (!Number.isInteger(size) || size < 1)
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `bufferSize must be a whole number ≥ 1, got ${size}`,
      );
    this.#limit = size;
    this.#queues = list(filter.queue);
    this.#tasks = list(filter.task);
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // A caller that only iterates learns of the failure there.
    this.ready.catch(() => {});
    let first = true;
    this.#supervisor = connect(options, async (session) => {
      await Promise.all(
        EVENT_ROOTS.map((p) => session.client.addWatch(p, 'persistentRecursive', this.#onChange)),
      );
      if (first) {
        first = false;
        await this.#markStart(session.client);
        this.#resolveReady();
      } else this.#enqueue({ catchUp: session });
    });
    this.#unsubscribe = this.#supervisor.onReconnect(() => {
      const s = this.#supervisor.session;
      if (s) this.#enqueue({ catchUp: s });
    });
    this.#supervisor.ready.catch((err: Error) => this.#end(err));
    this.#supervisor.done.then(
      () => this.#end(),
      (err: Error) => this.#end(err),
    );
  }

  /** The ids below the counter of /tasks existed before the stream: a catch-up leaves them out. */
  async #markStart(client: ZkClient): Promise<void> {
    const stat = await client.exists(PATHS.tasks);
    if (stat) this.#highest = Math.max(this.#highest, stat.cversion - 1);
  }

  #onChange = (type: number, path: string): void => {
    if (this.#ended) return;
    const raw = classifyChange(type, path);
    if (!raw || (this.#tasks && !this.#tasks.has(raw.id))) return;
    // An assignment's data says only the queue and the run, which its task's `queued` event told the
    // stream already: it is read when the event leaves, and only for a task the stream did not follow.
    const eager = raw.kind !== 'backlog' && raw.kind !== 'assign';
    this.#enqueue({ raw, read: eager ? this.#read(raw) : undefined, seq: this.#seq++ });
  };

  #enqueue(item: Item): void {
    if (this.#ended) return;
    this.#pending.push(item);
    if (!this.#overflowed()) void this.#drain();
  }

  /** More waits for the consumer than the buffer holds: end the stream with ZKFARM_EVENTS_OVERFLOW. */
  #overflowed(): boolean {
    if (this.#pending.length + this.#buffer.length <= this.#limit) return false;
    this.#end(
      new ZkfarmError(
        ErrorCodes.EVENTS_OVERFLOW,
        `the event stream fell more than ${this.#limit} events behind and stopped: consume events faster, ` +
          'raise bufferSize (runtime watch --buffer), or narrow the stream to a queue or tasks; then watch again',
      ),
    );
    return true;
  }

  async #drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    try {
      while (this.#pending.length > 0 && !this.#ended) {
        const item = this.#pending[0]!;
        if ('catchUp' in item) await this.#catchUp(item.catchUp);
        else await this.#emitChange(item);
        this.#pending.shift();
      }
    } catch (err) {
      this.#end(err as Error);
    } finally {
      this.#draining = false;
    }
  }

  #read(raw: RawChange): Promise<NodeRead | undefined> | undefined {
    const client = this.#supervisor.session?.client;
    // Undefined when the read fails too: connection trouble is covered by the catch-up after it, and a
    // read the stream's end cut short has nobody waiting for it.
    return raw.kind !== 'backlog' && client ? readNode(client, raw.path).catch(() => undefined) : undefined;
  }

  /** The data of a change, read now if it was left for later (see #onChange). */
  #dataOf(item: Change): Promise<NodeRead | undefined> | undefined {
    item.read ??= this.#read(item.raw);
    return item.read;
  }

  async #emitChange(item: Change): Promise<void> {
    const { raw } = item;
    const followed = this.#followed.get(raw.id);
    const known = raw.kind === 'assign' && followed?.queue !== undefined && followed.attempt !== undefined;
    const data = known ? undefined : await this.#dataOf(item);
    let queue = queueInData(raw, data?.json) ?? followed?.queue;
    if (queue !== undefined && followed) followed.queue = queue;
    const ev = eventOf(raw, data, Date.now());
    // An assignment read gone (the task finished first) says no run: its `queued` event told it.
    if (ev && raw.kind === 'assign' && ev.attempt === undefined && followed?.attempt !== undefined)
      ev.attempt = followed.attempt;
    if (!ev) {
      if (raw.kind === 'backlog' && queue !== undefined && !followed)
        this.#followed.set(raw.id, { last: 'queued', queue });
      return;
    }
    if (queue === undefined) queue = await this.#queueAhead(raw.id);
    if (queue !== undefined) ev.queue = queue;
    if (!this.#stale(ev, item.seq)) this.#deliver(ev);
  }

  /**
   * The queue of a task whose node was gone when read: its next node says it. ZooKeeper sends the
   * notification of that next node before the answer that found the first gone, so it is already here.
   */
  async #queueAhead(id: string): Promise<string | undefined> {
    // By index over the live queue: a notification that arrives while a read here is answered (the
    // result's, once the assignment is read gone) is looked at too.
    for (let i = 1; i < this.#pending.length; i++) {
      const item = this.#pending[i]!;
      if ('catchUp' in item || item.raw.id !== id) continue;
      const q = queueInData(item.raw, (await this.#dataOf(item))?.json);
      if (q !== undefined) return q;
    }
    return undefined;
  }

  async #catchUp(session: Session): Promise<void> {
    if (!session.alive) return;
    let events: TaskEvent[];
    try {
      events = await catchUpEvents(
        session.client,
        this.#followed,
        this.#highest,
        (id) => !this.#tasks || this.#tasks.has(id),
      );
    } catch {
      // The connection dropped again: its own catch-up follows when it resumes.
      return;
    }
    this.#caughtUpAt = this.#seq;
    this.#inferred.clear();
    for (const ev of events) {
      this.#inferred.add(ev.id);
      const q = ev.queue ?? this.#followed.get(ev.id)?.queue;
      if (q !== undefined) ev.queue = q;
      this.#deliver(ev);
    }
  }

  /**
   * A notification the catch-up's reads already reflected (it came before their answers), of a task the
   * catch-up told about: it is told only if it takes the task further (a later run, or a later step).
   */
  #stale(ev: TaskEvent, seq: number): boolean {
    if (seq >= this.#caughtUpAt || !this.#inferred.has(ev.id) || ev.type === 'progress') return false;
    const last = this.#followed.get(ev.id);
    return last !== undefined && notAhead(ev, last);
  }

  #deliver(ev: TaskEvent): void {
    const n = idNumber(ev.id);
    if (n > this.#highest) this.#highest = n;
    const followed = this.#followed.get(ev.id);
    // A catch-up may have told what a notification still in the pipeline tells again: say it once.
    if (followed && followed.last === ev.type && followed.worker === ev.worker && ev.type !== 'progress')
      return;
    // A task's result is its last event: what comes after is late (a progress write racing the result,
    // or a notification a catch-up already told).
    if (this.#finished(ev.id)) return;
    if (isFinal(ev)) {
      this.#followed.delete(ev.id);
      this.#rememberFinished(ev.id);
    } else {
      const queue = ev.queue ?? followed?.queue;
      const attempt = ev.attempt ?? followed?.attempt;
      this.#followed.set(ev.id, {
        last: ev.type,
        ...(ev.worker ? { worker: ev.worker } : {}),
        ...(queue !== undefined ? { queue } : {}),
        ...(attempt !== undefined ? { attempt } : {}),
      });
    }
    if (this.#queues && (ev.queue === undefined || !this.#queues.has(ev.queue))) return;
    if (this.#ended) return;
    this.#buffer.push(ev);
    this.#overflowed();
    this.#wake?.();
  }

  /** The last ids finished (bounded): a late event of a finished task is dropped. */
  readonly #recent = new Set<string>();
  #rememberFinished(id: string): void {
    this.#recent.add(id);
    if (this.#recent.size > 10_000) this.#recent.delete(this.#recent.values().next().value!);
  }
  #finished(id: string): boolean {
    return this.#recent.has(id);
  }

  #end(err?: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = err;
    this.#pending.length = 0;
    this.#unsubscribe();
    if (err) this.#rejectReady(err);
    else this.#resolveReady();
    void this.#supervisor.stop();
    this.#wake?.();
  }

  /** Stop the stream and close its session; buffered events are dropped. Safe to call twice. */
  async close(): Promise<void> {
    this.#buffer.length = 0;
    this.#end();
    await this.#supervisor.stop();
  }

  /** The next event; `undefined` once the stream ended (it throws instead if it ended on an error). */
  async next(): Promise<TaskEvent | undefined> {
    for (;;) {
      const ev = this.#buffer.shift();
      if (ev) return ev;
      if (this.#ended) {
        if (this.#error) throw this.#error;
        return undefined;
      }
      await new Promise<void>((r) => {
        this.#wake = r;
      });
      this.#wake = undefined;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TaskEvent, void, undefined> {
    try {
      for (;;) {
        const ev = await this.next();
        if (!ev) return;
        yield ev;
      }
    } finally {
      await this.close();
    }
  }
}

/**
 * Stream a farm's task events on a session of its own (closed with the stream). Await `ready` before
 * causing what you want to see; iterate with `for await`, and `break` (or `close()`) to stop.
 */
export function watchEvents(options: ConnectOptions, filter: EventStreamOptions = {}): EventStream {
  return new EventStream(options, filter);
}
