/**
 * Reading what a server sends once the session is established: answers, in request order, and
 * notifications, dispatched to the watch tables.
 *
 * - Pings and SetWatches are answered with special xids and carry nothing to deliver; an auth answer
 *   says only whether the server refused the identity.
 * - Every other answer belongs to the oldest request on the wire (pending.ts); its zxid, when set, is
 *   the newest this client has seen (a session and its watches are resumed relative to it). A request's
 *   one-shot watch is registered with its answer: exists on a missing node in the exist table, any other
 *   in the data or child table.
 * - A notification fires the callbacks watch-manager.ts collects for it, each once, each isolated.
 */
import { type CallbackErrorReporter, callSafely } from './callbacks.js';
import { withoutChroot } from './chroot-paths.js';
import { ZK_CODES, ZkError } from './errors.js';
import { type Reader, XID } from './jute.js';
import type { Pending, PendingQueue } from './pending.js';
import { W_DATA, W_EXIST, type WatchManager } from './watch-manager.js';

export class AnswerReader {
  /** The newest zxid seen in an answer (8 bytes, as on the wire). */
  readonly lastZxid = Buffer.alloc(8);
  readonly #queue: PendingQueue;
  readonly #watches: WatchManager;
  /** The connection's chroot, taken off every event's path (a string, not a callback: see the constructor). */
  readonly #chroot: string;
  readonly #report: CallbackErrorReporter;

  constructor(queue: PendingQueue, watches: WatchManager, chroot: string, report: CallbackErrorReporter) {
    // Each connection used to pass its own `(p) => this.clientPath(p)`. A new session's closure was a new
    // call target for the optimized event path, which V8 then threw away and compiled again: once per
    // role thread at every start after the rehearsal (benchmarks/README.md, "Warm code across the switch").
    this.#queue = queue;
    this.#watches = watches;
    this.#chroot = chroot;
    this.#report = report;
  }

  /**
   * Read one frame; returns 'authFailed' when the server refused the authentication. Throws a
   * DecodeError when the frame does not fit the request it answers (the connection is out of step).
   */
  read(r: Reader): 'authFailed' | undefined {
    const xid = r.int();
    const zxidAt = r.pos;
    r.skip(8);
    const err = r.int();
    switch (xid) {
      case XID.notification:
        this.#onEvent(r);
        return undefined;
      case XID.ping:
      case XID.setWatches:
        return undefined;
      case XID.auth:
        return err === ZK_CODES.AUTH_FAILED ? 'authFailed' : undefined;
    }
    const b = r.buf;
    const hi = b.readInt32BE(zxidAt);
    if (hi > 0 || (hi === 0 && b.readUInt32BE(zxidAt + 4) !== 0))
      b.copy(this.lastZxid, 0, zxidAt, zxidAt + 8);
    const p = this.#queue.shift(xid);
    if (p.onAnswer) callSafely(p.onAnswer, [], 'onAnswer callback', this.#report);
    if (!p.settled) this.#onAnswer(p, err, r);
    return undefined;
  }

  #onAnswer(p: Pending, err: number, r: Reader): void {
    const queue = this.#queue;
    if (err !== 0) {
      if (err === ZK_CODES.NO_NODE && p.watchKind === W_EXIST && p.watch)
        this.#watches.register(W_EXIST, p.path!, p.watch);
      if (err === ZK_CODES.NO_NODE && p.noNodeIsNull) queue.settle(p, undefined, null);
      else queue.settle(p, new ZkError(err, p.op, p.path));
      return;
    }
    let value: unknown;
    try {
      value = p.decode ? p.decode(r) : undefined;
    } catch (e) {
      // A ZkError is the answer's own verdict (a multi that failed); anything else means the bytes were
      // not what the request expects: fail the request and let the caller drop the connection.
      if (e instanceof ZkError) {
        queue.settle(p, e);
        return;
      }
      queue.settle(p, new ZkError(ZK_CODES.MARSHALLING_ERROR, p.op, p.path, (e as Error).message));
      throw e;
    }
    if (p.watch) this.#watches.register(p.watchKind === W_EXIST ? W_DATA : p.watchKind, p.path!, p.watch);
    queue.settle(p, undefined, value);
  }

  #onEvent(r: Reader): void {
    const type = r.int();
    const state = r.int();
    const path = withoutChroot(this.#chroot, r.ustring() ?? '');
    const { oneShot, persistent } = this.#watches.materialize(type, path);
    for (const fn of persistent) callSafely(fn, [type, path], 'persistent watch listener', this.#report);
    if (oneShot.length === 0) return;
    const event = { type, state, path };
    for (const fn of oneShot) callSafely(fn, [event], 'watch callback', this.#report);
  }
}
