/**
 * MultiBatcher: many small atomic changes ("items", each a few operations that must happen together)
 * written in as few ZooKeeper multis as fit, several multis in flight at once.
 *
 * Nodes: none of its own; each item names its paths. An item may name guards: paths that must exist
 * when it is applied (say, "this worker is still registered"); a multi checks each guard once, at its
 * end, for all of its items that name it.
 *
 * Guarantees:
 * - An item is applied entirely or not at all: its operations always travel in one multi.
 * - A multi holds at most `maxOps` operations and `maxBytes` bytes of request, estimated from above
 *   (paths with the chroot, data, ACLs, headers). ZooKeeper answers a request over its jute.maxbuffer
 *   (1 MiB by default) by dropping the connection, and a client that then sends it again is dropped
 *   again, for ever. An item that alone would pass `hardLimitBytes` is refused without being sent.
 * - Up to `window` multis are in flight at once (ZooKeeper answers one session's requests in order).
 * - A multi refused for one item (ZooKeeper's multi result names the failing operation) sets that item
 *   aside as refused and sends the rest again in one request. A failed guard refuses the items of that
 *   multi that name it. A refusal that names no operation splits the multi in two.
 * - A multi that fails with connection trouble (CONNECTION_LOSS, a timeout) is sent again after a
 *   backoff (src/backoff.ts). Its outcome was unknown, so a later refusal of one of its items is marked
 *   `afterLoss`: the lost attempt may have been applied, and the caller checks. A multi lost twice in a
 *   row is split in two: a request the server drops for its size looks just like that.
 *
 * SUSPENDED: multis in flight fail with CONNECTION_LOSS or time out; they go again after the backoff,
 * on the resumed connection.
 * LOST (or `signal` aborted): nothing more is sent. Items not known to be written come back as
 * `unsent` (one in flight at that moment may have been applied: a caller on a new session re-reads).
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { type BackoffPolicy, backoffDelay } from '../backoff.js';
import { CreateMode, type CreateModeValue, type ZkClient } from '../zk/client.js';
import { isZkError, ZK_CODES, ZkError } from '../zk/errors.js';
import { encodedAcl } from '../zk/jute.js';

export type Op =
  | { op: 'create'; path: string; data?: Buffer; mode?: CreateModeValue }
  | { op: 'delete'; path: string; version?: number }
  | { op: 'check'; path: string; version?: number }
  | { op: 'setData'; path: string; data: Buffer; version?: number };

export interface BatchItem {
  readonly ops: readonly Op[];
  /** Paths that must exist when the item is applied (checked once per multi). */
  readonly guards?: readonly string[];
}

export interface Refusal<I> {
  item: I;
  /** The failing operation's error (for a guard: the `check` of that guard). */
  error: ZkError;
  /** The item was in a multi whose outcome was unknown (a connection loss): it may have been applied. */
  afterLoss: boolean;
  /** When the refusal came from a guard: its path. */
  guard?: string;
}

export interface WriteResult<I> {
  written: I[];
  refused: Refusal<I>[];
  /** Not sent, or sent without an answer, when the session ended or the signal aborted. */
  unsent: I[];
  /** Why the write stopped early (the session was lost, the signal aborted, an unexpected error). */
  stoppedBy?: unknown;
}

export interface MultiBatcherOptions {
  /** Most operations in one multi. @defaultValue 200 */
  maxOps?: number;
  /** Most request bytes in one multi (estimated from above). @defaultValue 512 KiB */
  maxBytes?: number;
  /** An item estimated above this is refused unsent (ZooKeeper drops requests over ~1 MiB). @defaultValue 1,000,000 */
  hardLimitBytes?: number;
  /** Most multis in flight. @defaultValue 16 */
  window?: number;
  /** Pauses before sending a multi again after connection trouble. @defaultValue 50 ms doubling to 2 s */
  backoff?: BackoffPolicy;
  /** Stops the writing (nothing more is sent). */
  signal?: AbortSignal;
}

export const MULTI_MAX_OPS = 200;
export const MULTI_MAX_BYTES = 512 * 1024;
const HARD_LIMIT_BYTES = 1_000_000;
const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 50, maxMs: 2000 };
/** Per operation: type, done flag and error (9 bytes), the path's length prefix, a version or mode. */
const OP_BYTES = 17;
/** Request header, multi trailer, frame length. */
const MULTI_BYTES = 32;
const NO_GUARDS: readonly string[] = [];

interface Chunk<I> {
  items: I[];
  /** Connection losses in a row (two split the chunk). */
  losses: number;
  /** Attempts so far that failed for connection trouble (for the backoff). */
  attempts: number;
  afterLoss: boolean;
}

export class MultiBatcher {
  readonly #client: ZkClient;
  readonly #maxOps: number;
  readonly #maxBytes: number;
  readonly #hardLimit: number;
  readonly #window: number;
  readonly #policy: BackoffPolicy;
  readonly #signal: AbortSignal | undefined;
  readonly #chrootBytes: number;
  readonly #aclBytes: number;

  constructor(client: ZkClient, options: MultiBatcherOptions = {}) {
    this.#client = client;
    this.#maxOps = options.maxOps ?? MULTI_MAX_OPS;
    this.#maxBytes = options.maxBytes ?? MULTI_MAX_BYTES;
    // Never above what the client itself sends (its jute.maxbuffer, less room for the request header).
    this.#hardLimit = Math.min(options.hardLimitBytes ?? HARD_LIMIT_BYTES, client.connection.maxBuffer - 64);
    this.#window = options.window ?? 16;
    this.#policy = options.backoff ?? DEFAULT_BACKOFF;
    this.#signal = options.signal;
    this.#chrootBytes = Buffer.byteLength(client.connection.serverPath('/x')) - 2;
    this.#aclBytes = encodedAcl(client.acl).length;
  }

  /**
   * How many of `items`, from the first, go in one multi (at least one). A queue that takes only these
   * and looks again when the multi is answered keeps its multis full while moves keep coming.
   */
  firstMulti(items: readonly BatchItem[]): number {
    let ops = 0;
    let bytes = MULTI_BYTES;
    const guards = new Set<string>();
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      let addOps = item.ops.length;
      let addBytes = this.bytesOf(item);
      for (const g of item.guards ?? NO_GUARDS) {
        if (guards.has(g)) continue;
        addOps++;
        addBytes += this.#pathBytes(g);
      }
      if (i > 0 && (ops + addOps > this.#maxOps || bytes + addBytes > this.#maxBytes)) return i;
      ops += addOps;
      bytes += addBytes;
      for (const g of item.guards ?? NO_GUARDS) guards.add(g);
    }
    return items.length;
  }

  /** The estimated request bytes of one item's operations (guards not included). */
  bytesOf(item: BatchItem): number {
    let n = 0;
    for (const o of item.ops) {
      n += this.#pathBytes(o.path);
      if (o.op === 'create') n += 4 + (o.data?.length ?? 0) + this.#aclBytes;
      else if (o.op === 'setData') n += 4 + o.data.length;
    }
    return n;
  }

  #pathBytes(path: string): number {
    // A path's UTF-8 length is at most three bytes per UTF-16 unit; farm paths are ASCII (one each).
    return OP_BYTES + this.#chrootBytes + (isAscii(path) ? path.length : Buffer.byteLength(path));
  }

  /**
   * Write `items`; resolves when every item is written, refused or (session lost) unsent. `onWritten`
   * runs as each multi is answered, with its items and the client's request number of that multi (a
   * read sent later sees its effect).
   */
  async write<I extends BatchItem>(
    items: readonly I[],
    onWritten?: (items: I[], mark: number) => void,
  ): Promise<WriteResult<I>> {
    const result: WriteResult<I> = { written: [], refused: [], unsent: [] };
    const pending = this.#split(items, result);
    if (pending.length === 1) {
      // The common case (a worker's completions, a small round): one multi, no window to keep.
      const again = await this.#attempt(pending[0]!, result, onWritten);
      if (again === 'stop') {
        result.unsent.push(...pending[0]!.items);
        return result;
      }
      pending.splice(0, 1, ...again);
    }
    const inflight = new Set<Promise<void>>();
    const launch = (chunk: Chunk<I>) => {
      const p = this.#attempt(chunk, result, onWritten).then((again) => {
        if (again === 'stop') result.unsent.push(...chunk.items);
        else pending.unshift(...again);
      });
      const tracked = p.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    };
    for (;;) {
      while (pending.length > 0 && inflight.size < this.#window && !this.#stopped(result))
        launch(pending.shift()!);
      if (inflight.size === 0) break;
      await Promise.race(inflight);
    }
    for (const c of pending) result.unsent.push(...c.items);
    return result;
  }

  #stopped(result: WriteResult<unknown>): boolean {
    if (this.#signal?.aborted) result.stoppedBy ??= this.#signal.reason;
    return result.stoppedBy !== undefined;
  }

  /** Items in chunks within the limits; an item over the hard limit is refused at once. */
  #split<I extends BatchItem>(items: readonly I[], result: WriteResult<I>): Chunk<I>[] {
    // The hot path of every round: no closures or arrays per item.
    const chunks: Chunk<I>[] = [];
    let chunk: I[] = [];
    let ops = 0;
    let bytes = MULTI_BYTES;
    const guards = new Set<string>();
    for (const item of items) {
      const size = this.bytesOf(item);
      if (size + MULTI_BYTES > this.#hardLimit) {
        result.refused.push({ item, error: tooLarge(item, size), afterLoss: false });
        continue;
      }
      let addOps = item.ops.length;
      let addBytes = size;
      for (const g of item.guards ?? NO_GUARDS) {
        if (guards.has(g)) continue;
        addOps++;
        addBytes += this.#pathBytes(g);
      }
      if (chunk.length > 0 && (ops + addOps > this.#maxOps || bytes + addBytes > this.#maxBytes)) {
        chunks.push(newChunk(chunk));
        chunk = [];
        ops = 0;
        bytes = MULTI_BYTES;
        guards.clear();
        addOps = item.ops.length + (item.guards?.length ?? 0);
        addBytes = size;
        for (const g of item.guards ?? NO_GUARDS) addBytes += this.#pathBytes(g);
      }
      chunk.push(item);
      ops += addOps;
      bytes += addBytes;
      for (const g of item.guards ?? NO_GUARDS) guards.add(g);
    }
    if (chunk.length > 0) chunks.push(newChunk(chunk));
    return chunks;
  }

  /** Send one chunk; what to send again after it ('stop': the write is over for it). */
  async #attempt<I extends BatchItem>(
    chunk: Chunk<I>,
    result: WriteResult<I>,
    onWritten: ((items: I[], mark: number) => void) | undefined,
  ): Promise<Chunk<I>[] | 'stop'> {
    if (this.#stopped(result)) return 'stop';
    const tx = this.#transaction(chunk.items);
    let mark = 0;
    try {
      const sent = tx.commit();
      mark = this.#client.requests;
      await sent;
    } catch (err) {
      return this.#failed(chunk, err, result);
    }
    result.written.push(...chunk.items);
    onWritten?.(chunk.items, mark);
    return [];
  }

  #transaction<I extends BatchItem>(items: I[]) {
    const tx = this.#client.transaction();
    const guards = new Set<string>();
    for (const item of items) {
      for (const o of item.ops) {
        switch (o.op) {
          case 'create':
            tx.create(o.path, o.data, o.mode ?? CreateMode.PERSISTENT);
            break;
          case 'delete':
            tx.remove(o.path, o.version ?? -1);
            break;
          case 'check':
            tx.check(o.path, o.version ?? -1);
            break;
          case 'setData':
            tx.setData(o.path, o.data, o.version ?? -1);
            break;
        }
      }
      for (const g of item.guards ?? NO_GUARDS) guards.add(g);
    }
    for (const g of guards) tx.check(g);
    return tx;
  }

  /** The item whose operation has this index in the multi of `items`, or the guard path it checked. */
  #ownerOf<I extends BatchItem>(items: I[], index: number): I | string | undefined {
    let at = 0;
    const guards = new Set<string>();
    for (const item of items) {
      if (index < at + item.ops.length) return item;
      at += item.ops.length;
      for (const g of item.guards ?? NO_GUARDS) guards.add(g);
    }
    return [...guards][index - at];
  }

  async #failed<I extends BatchItem>(
    chunk: Chunk<I>,
    err: unknown,
    result: WriteResult<I>,
  ): Promise<Chunk<I>[] | 'stop'> {
    if (!isZkError(err) || err.code === 'SESSION_EXPIRED' || this.#signal?.aborted) {
      // The session is gone (ZKFARM_SESSION_LOST, SESSION_EXPIRED), the writer was stopped, or a bug.
      result.stoppedBy ??= err;
      return 'stop';
    }
    if (err.transient) {
      chunk.afterLoss = true;
      chunk.attempts++;
      chunk.losses++;
      const delay = backoffDelay(this.#policy, chunk.attempts - 1);
      try {
        await sleep(delay, undefined, this.#signal ? { signal: this.#signal } : undefined);
      } catch {
        return 'stop';
      }
      if (chunk.losses >= 2 && chunk.items.length > 1) return halves(chunk, 1);
      return [chunk];
    }
    const owner = err.opIndex !== undefined ? this.#ownerOf(chunk.items, err.opIndex) : undefined;
    if (owner === undefined) {
      if (chunk.items.length > 1) return halves(chunk, 0);
      result.refused.push({ item: chunk.items[0]!, error: err, afterLoss: chunk.afterLoss });
      return [];
    }
    const refused =
      typeof owner === 'string' ? chunk.items.filter((i) => i.guards?.includes(owner)) : [owner];
    for (const item of refused) {
      const r: Refusal<I> = { item, error: err, afterLoss: chunk.afterLoss };
      if (typeof owner === 'string') r.guard = owner;
      result.refused.push(r);
    }
    const rest = chunk.items.filter((i) => !refused.includes(i));
    return rest.length > 0 ? [{ ...chunk, items: rest, losses: 0 }] : [];
  }
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function newChunk<I>(items: I[]): Chunk<I> {
  return { items, losses: 0, attempts: 0, afterLoss: false };
}

function halves<I>(chunk: Chunk<I>, losses: number): Chunk<I>[] {
  const mid = Math.ceil(chunk.items.length / 2);
  return [
    { ...chunk, items: chunk.items.slice(0, mid), losses },
    { ...chunk, items: chunk.items.slice(mid), losses },
  ];
}

function tooLarge(item: BatchItem, size: number): ZkError {
  return new ZkError(
    ZK_CODES.BAD_ARGUMENTS,
    'multi',
    item.ops[0]?.path,
    `these operations make a request of about ${size} bytes; ZooKeeper drops requests over about 1 MiB`,
  );
}
