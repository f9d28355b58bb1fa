/**
 * NodeWaits: wait for many children of one node to be created, and read each one's data once it is,
 * with one persistent recursive watch (ZooKeeper 3.6+) on the parent and the reads batched into
 * multiReads. Waiting for N nodes costs about N notifications and N/100 requests, where a data watch
 * per node costs two or three requests each (a read that finds nothing, a watch, a read once it fires).
 *
 * Nodes: watches `parent` recursively; reads `parent/<name>` for the names waited for.
 *
 * Guarantees:
 * - Each wait is delivered exactly once, with the data of its node, if the node exists (or is created)
 *   while it is waited for; a wait stopped (or `close`) before that is never delivered. A name may be
 *   waited for several times at once: each wait is delivered.
 * - A node that already exists when its wait is added is found: the first read of a wait goes out after
 *   the watch's request on the same connection, so ZooKeeper answers it after taking the watch; a node
 *   created before that read is in its answer, one created after it is reported by the watch. (Both, for
 *   a create in between: the second finds the wait gone.)
 * - One read at a time: the names of one tick, and those that came while the last read was in flight,
 *   go out together, at most 100 paths to a request (getDataMany).
 * - Notifications of other children (creates of names not waited for, deletes, data changes,
 *   grandchildren) are ignored. The parent need not exist yet.
 *
 * Cost: once armed on a session the watch reports every create and delete under `parent` until `close`
 * (which removes it from the server when nothing else of this client watches `parent`), also while
 * nothing is waited for. Use it for many waits at once under a parent whose traffic is bounded (a status
 * bucket holds 10,000 ids), and close it when they are done; for a few, a data watch each is cheaper.
 *
 * SUSPENDED: ZooKeeper keeps no events for a persistent watch across a dropped connection. On the
 * resumed connection (the watch is registered again with SetWatches2) every name still waited for is
 * read again. LOST: on the supervisor's next session the watch is added again and every name is read
 * again. Until then nothing is read, and nothing is lost.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import type { Supervisor } from '../zk/supervisor.js';
import { EVENT } from '../zk/watch-manager.js';

/** How long a read refused for a reason other than the connection waits before it is tried again. */
const RETRY_MS = 1000;

export class NodeWaits {
  readonly parent: string;
  readonly #sup: Supervisor;
  readonly #prefix: string;
  /** Name → its waiters (a name may be waited for more than once). */
  readonly #waits = new Map<string, Array<(data: Buffer) => void>>();
  /** Names to read on the next flush. */
  readonly #toRead = new Set<string>();
  /** The client whose session holds the watch (its listener is registered), or undefined. */
  #armedOn: ZkClient | undefined;
  #removeListener: (() => void) | undefined;
  #flushQueued = false;
  /** A read is in flight. */
  #reading = false;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #unsubscribe: Array<() => void>;

  constructor(supervisor: Supervisor, parent: string) {
    this.#sup = supervisor;
    this.parent = parent;
    this.#prefix = parent === '/' ? '/' : `${parent}/`;
    const again = () => this.#readAll();
    this.#unsubscribe = [supervisor.onReconnect(again), supervisor.onNewSession(again)];
  }

  /** Names waited for now. */
  get size(): number {
    return this.#waits.size;
  }

  /**
   * Wait for `parent/<name>`: `onData` is called once, with its data, when it exists. Returns the
   * function that stops this wait (nothing is delivered to it after that).
   */
  add(name: string, onData: (data: Buffer) => void): () => void {
    if (this.#closed) throw new ZkfarmError(ErrorCodes.STOPPED, `waits on ${this.parent} are closed`);
    const waiters = this.#waits.get(name);
    if (waiters) waiters.push(onData);
    else this.#waits.set(name, [onData]);
    this.#toRead.add(name);
    this.#schedule();
    return () => this.#remove(name, onData);
  }

  #remove(name: string, onData: (data: Buffer) => void): void {
    const waiters = this.#waits.get(name);
    const i = waiters?.indexOf(onData) ?? -1;
    if (i < 0) return; // delivered, or stopped already
    waiters!.splice(i, 1);
    if (waiters!.length > 0) return;
    this.#waits.delete(name);
    this.#toRead.delete(name);
  }

  /** Stop every wait; nothing is delivered after this returns. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waits.clear();
    this.#toRead.clear();
    clearTimeout(this.#retry);
    this.#removeListener?.();
    for (const off of this.#unsubscribe) off();
  }

  #onEvent = (type: number, path: string): void => {
    if (type !== EVENT.created || !path.startsWith(this.#prefix)) return;
    const name = path.slice(this.#prefix.length);
    if (!this.#waits.has(name)) return;
    this.#toRead.add(name);
    this.#schedule();
  };

  /** A reconnection or a new session: events of the time away are lost, so read every wait again. */
  #readAll(): void {
    if (this.#closed) return;
    for (const name of this.#waits.keys()) this.#toRead.add(name);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#flushQueued || this.#closed) return;
    this.#flushQueued = true;
    // The next tick: every add and notification of this one shares the reads.
    process.nextTick(() => {
      this.#flushQueued = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    const client = this.#sup.session?.client;
    // No live session: the next one reads every wait (onNewSession). A read in flight: what comes
    // meanwhile goes in the next one, so a busy stream of notifications is read in large batches.
    if (this.#closed || this.#toRead.size === 0 || !client || this.#reading) return;
    if (this.#armedOn !== client) this.#arm(client);
    const names = [...this.#toRead];
    this.#toRead.clear();
    let reads: Awaited<ReturnType<ZkClient['getDataMany']>>;
    this.#reading = true;
    try {
      reads = await client.getDataMany(names.map((n) => this.#prefix + n));
    } catch (err) {
      // Connection trouble: the reconnection or the next session reads every wait again.
      if (!isZkError(err) || !err.transient) this.#later(names, err);
      return;
    } finally {
      this.#reading = false;
      if (this.#toRead.size > 0) this.#schedule();
    }
    const refused: string[] = [];
    let firstError: unknown;
    for (let i = 0; i < reads.length; i++) {
      const r = reads[i]!;
      const name = names[i]!;
      if (r instanceof Error) {
        // NO_NODE: not created yet; the watch reports it when it is.
        if (r.code !== 'NO_NODE' && this.#waits.has(name)) {
          refused.push(name);
          firstError ??= r;
        }
        continue;
      }
      const waiters = this.#waits.get(name);
      if (!waiters) continue;
      this.#waits.delete(name);
      this.#toRead.delete(name); // its create's notification may have come during the read
      for (const onData of waiters) onData(r.data);
    }
    if (refused.length > 0) this.#later(refused, firstError);
  }

  /** Add the watch on this session's client; its listener is registered before the request goes out. */
  #arm(client: ZkClient): void {
    this.#removeListener?.();
    this.#removeListener = undefined;
    this.#armedOn = client;
    client.addWatch(this.parent, 'persistentRecursive', this.#onEvent).then(
      (remove) => {
        if (this.#closed || this.#armedOn !== client) remove();
        else this.#removeListener = remove;
      },
      (err: unknown) => {
        if (this.#armedOn === client) this.#armedOn = undefined;
        // Connection trouble: armed again with the reads of the reconnection or the next session.
        if (!isZkError(err) || !err.transient) this.#later([...this.#waits.keys()], err);
      },
    );
  }

  /** Reads refused for a reason other than the connection: reported, and tried again after a pause. */
  #later(names: readonly string[], err: unknown): void {
    if (this.#closed) return;
    this.#sup.reportError(err, `waits on ${this.parent}`);
    for (const name of names) if (this.#waits.has(name)) this.#toRead.add(name);
    if (this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#schedule();
    }, RETRY_MS);
    this.#retry.unref?.();
  }
}
