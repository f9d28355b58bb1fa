/**
 * The requests of one connection waiting for their answers, and their deadlines.
 *
 * ZooKeeper answers a session's requests in the order they were sent, so the queue is a FIFO: an
 * answer belongs to the oldest request on the wire, and an answer for any other xid means the client is
 * out of step (a DecodeError: the connection is dropped). A request rejected early (its deadline
 * passed, the caller gave up on the session) keeps its place on the wire until its answer comes, which
 * is then skipped: dropping it would leave the next answers matched against the wrong requests.
 *
 * Deadlines grow along the queue (every request gets the same timeout), so one timer, armed for the
 * oldest request still waiting, watches them all. Times come from the connection's monotonic clock.
 */

import { objectArray } from '../v8-shapes.js';
import { ZK_CODES, ZkError } from './errors.js';
import { DecodeError, type Reader, type Writer } from './jute.js';
import type { WatchCallback, WatchKind } from './watch-manager.js';

export interface Pending {
  xid: number;
  op: string;
  path: string | undefined;
  decode: ((r: Reader) => unknown) | undefined;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  deadline: number;
  settled: boolean;
  /** Byte range in the unsent buffer (only while unsent). */
  start: number;
  end: number;
  /** A one-shot watch to register with the answer. */
  watch: WatchCallback | undefined;
  watchKind: WatchKind;
  /** Called as the answer is read, before any later event: see `ZkClient.getChildren`. */
  onAnswer: (() => void) | undefined;
  /** exists: a NO_NODE answer is a value (null), not a failure. */
  noNodeIsNull: boolean;
}

/** What a caller may add to a request (see `Pending`). */
export type RequestExtra = {
  watch?: WatchCallback;
  watchKind?: WatchKind;
  onAnswer?: () => void;
  noNodeIsNull?: boolean;
};

export class PendingQueue {
  readonly #now: () => number;
  readonly #timeout: number;
  /** Requests sent and not answered yet, oldest first (`#head` is the first live index). */
  #inflight: Pending[] = objectArray();
  #head = 0;
  /** Requests encoded into the connection's buffer, not sent yet. */
  #unsent: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(now: () => number, timeoutMs: number) {
    this.#now = now;
    this.#timeout = timeoutMs;
  }

  get pendingCount(): number {
    let n = 0;
    for (let i = this.#head; i < this.#inflight.length; i++) if (!this.#inflight[i]!.settled) n++;
    for (const p of this.#unsent) if (!p.settled) n++;
    return n;
  }

  /** Whether a request not answered yet will register a one-shot watch at `path`. */
  watching(path: string): boolean {
    for (let i = this.#head; i < this.#inflight.length; i++) {
      const p = this.#inflight[i]!;
      if (!p.settled && p.watch !== undefined && p.path === path) return true;
    }
    return this.#unsent.some((p) => !p.settled && p.watch !== undefined && p.path === path);
  }

  add(p: Pending): void {
    p.deadline = this.#now() + this.#timeout;
    this.#unsent.push(p);
    if (this.#timer === undefined) this.#arm(p.deadline);
  }

  /** Move the unsent requests to the wire; returns their bytes (those settled meanwhile are left out). */
  takeUnsent(out: Writer): Buffer {
    const unsent = this.#unsent;
    if (unsent.length === 0) return Buffer.alloc(0);
    this.#unsent = [];
    if (!unsent.some((p) => p.settled)) {
      for (const p of unsent) this.#inflight.push(p);
      return out.take();
    }
    const parts: Buffer[] = [];
    for (const p of unsent) {
      if (p.settled) continue;
      parts.push(Buffer.from(out.buf.subarray(p.start, p.end)));
      this.#inflight.push(p);
    }
    out.pos = 0;
    return Buffer.concat(parts);
  }

  /** The request an answer with this xid belongs to (removed from the queue). */
  shift(xid: number): Pending {
    const p = this.#inflight[this.#head];
    if (!p || p.xid !== xid) throw new DecodeError(`answer for xid ${xid}, expected ${p?.xid ?? 'none'}`);
    this.#inflight[this.#head] = undefined as unknown as Pending;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#inflight.length) {
      this.#inflight = this.#inflight.slice(this.#head);
      this.#head = 0;
    }
    return p;
  }

  settle(p: Pending, err: Error | undefined, value?: unknown): void {
    if (p.settled) return;
    p.settled = true;
    if (err) p.reject(err);
    else p.resolve(value);
  }

  /** Reject the requests not sent yet (the caller resets the buffer they were written to). */
  failUnsent(err: Error): void {
    const unsent = this.#unsent;
    this.#unsent = [];
    for (const p of unsent) this.settle(p, err);
  }

  /** Reject every request; those on the wire keep their place until their answers come. */
  failAll(err: Error): void {
    for (let i = this.#head; i < this.#inflight.length; i++) this.settle(this.#inflight[i]!, err);
    this.failUnsent(err);
  }

  /** The connection dropped: requests on the wire fail with CONNECTION_LOSS (their outcome is unknown). */
  rejectInflight(why: string): void {
    const list = this.#inflight;
    const head = this.#head;
    this.#inflight = [];
    this.#head = 0;
    for (let i = head; i < list.length; i++) {
      const p = list[i]!;
      this.settle(p, new ZkError(ZK_CODES.CONNECTION_LOSS, p.op, p.path, why));
    }
  }

  /** The connection ended for good: everything fails with `err`, no timer is left. */
  close(err: Error): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.failAll(err);
    this.#inflight = [];
    this.#head = 0;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#onDeadline(), Math.max(1, Math.ceil(at - this.#now())));
    this.#timer.unref();
  }

  /** Time out every request past its deadline; re-arm for the oldest one left. */
  #onDeadline(): void {
    this.#timer = undefined;
    const now = this.#now();
    let next = Number.POSITIVE_INFINITY;
    const check = (p: Pending): void => {
      if (p.settled) return;
      if (p.deadline <= now) {
        const why = `no answer within ${this.#timeout} ms; the connection may be stalled or the session lost`;
        this.settle(p, new ZkError(ZK_CODES.OPERATION_TIMEOUT, p.op, p.path, why));
      } else if (p.deadline < next) next = p.deadline;
    };
    // Deadlines grow along the queue: stop at the first one still in the future.
    for (let i = this.#head; i < this.#inflight.length && next === Number.POSITIVE_INFINITY; i++)
      check(this.#inflight[i]!);
    for (let i = 0; i < this.#unsent.length && next === Number.POSITIVE_INFINITY; i++)
      check(this.#unsent[i]!);
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
  }
}
