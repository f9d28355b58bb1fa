/**
 * A connection's outgoing side: each request is framed into one buffer as it is made (request-frame.ts)
 * and queued for its answer (pending.ts); the frames made in one tick go out in one socket write, so a
 * burst of requests costs one write, not one each.
 *
 * Znodes: none (it carries requests; it does not choose them).
 *
 * Disconnected (SUSPENDED): requests made meanwhile stay unsent, in the buffer, until the next
 * connection flushes them. Closed or expired (LOST): the connection rejects them through the queue and
 * `clear()` drops their bytes.
 */
import { ZkError } from './errors.js';
import { type Reader, Writer } from './jute.js';
import type { PendingQueue, RequestExtra } from './pending.js';
import { frameRequest } from './request-frame.js';

export class Outbox {
  readonly #queue: PendingQueue;
  readonly #maxBuffer: number;
  readonly #flush: () => void;
  readonly #out = new Writer();
  #flushScheduled = false;

  /** `flush`: the connection's send, called once at the end of a tick in which requests were made. */
  constructor(queue: PendingQueue, maxBuffer: number, flush: () => void) {
    this.#queue = queue;
    this.#maxBuffer = maxBuffer;
    this.#flush = flush;
  }

  /**
   * Frame a request and queue it: its answer's promise, or the ZkError that refused it before anything
   * was queued (its payload could not be written, or it is over maxBuffer).
   */
  add<T>(
    header: { xid: number; type: number; op: string; path: string | undefined },
    encode: (w: Writer) => void,
    decode: ((r: Reader) => unknown) | undefined,
    extra: RequestExtra | undefined,
  ): Promise<T> | ZkError {
    const frame = frameRequest(this.#out, header, encode, this.#maxBuffer);
    if (frame instanceof ZkError) return frame;
    const { xid, op, path } = header;
    return new Promise<T>((resolve, reject) => {
      this.#queue.add({
        xid,
        op,
        path,
        decode,
        resolve: resolve as (v: unknown) => void,
        reject,
        deadline: 0,
        settled: false,
        start: frame.start,
        end: frame.end,
        watch: extra?.watch,
        watchKind: extra?.watchKind ?? 0,
        onAnswer: extra?.onAnswer,
        noNodeIsNull: extra?.noNodeIsNull ?? false,
      });
    });
  }

  /** Flush at the end of this tick (once, however many requests are made in it). */
  schedule(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** The frames not sent yet, moved to the wire side of the queue (empty when there are none). */
  take(): Buffer {
    return this.#queue.takeUnsent(this.#out);
  }

  /** Drop the bytes of the frames not sent (their requests were rejected). */
  clear(): void {
    this.#out.pos = 0;
  }
}
