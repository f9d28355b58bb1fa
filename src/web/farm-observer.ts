/**
 * The farm as ZooKeeper shows it, kept current for the dashboard. Reads only; never writes.
 *
 * Znodes and how each is followed:
 *   /master, /masters/<m>, /workers/<w>   watches (they change rarely: elections, joins, pause; the
 *                                         leader rewrites /master when what waits in its queue changes)
 *   /masters, /workers                    children watches
 *   /tasks                                `exists` every `queuePollMs`: numChildren (plus the backlog the
 *                                         leader's summary counts) is the queue depth, cversion feeds
 *                                         the submit clock (submit-clock.ts)
 *   /assign, /assign/<w>                  every `pollMs`: one listing of /assign and one `exists` per
 *                                         worker (numChildren: tasks in flight on it)
 *   /status                               every `pollMs` through the StatusFeed (status-feed.ts)
 *   /queues, /queues/<q>                  every `pollMs`: one listing and one read per queue (controls)
 * Watches are the supervisor's: they move to each new session. Polls skip while there is no session.
 * The reads are not one snapshot: a task moving while we read may be counted in two places or none.
 *
 * Events: 'change' when masters, the leader or workers change; 'tick' after each poll with the new
 * chart point and what the status feed found.
 */
import { EventEmitter } from 'node:events';
import { describeError } from '../errors.js';
import { backlogTotal } from '../farm/backlog-index.js';
import {
  type MasterInfo,
  masterPath,
  PATHS,
  parseWorkerInfo,
  queuePath,
  type WorkerInfo,
  workerPath,
} from '../farm/protocol.js';
import { type QueueOverview, queueOverview } from '../farm/queue-admin.js';
import { parseControls, type QueueControls } from '../farm/queues.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import type { Supervisor } from '../zk/supervisor.js';
import type { DataWatch } from '../zk/watchers.js';
import { History, type Point } from './history.js';
import { type FeedTick, StatusFeed, type StatusFeedOptions } from './status-feed.js';
import { SubmitClock } from './submit-clock.js';

export interface ObserverOptions extends StatusFeedOptions {
  /** Topology, in-flight and status poll interval (ms). @defaultValue 1000 */
  pollMs?: number;
  /** Queue depth / submit clock poll interval (ms). @defaultValue 250 */
  queuePollMs?: number;
  logger?: Logger;
}

export interface MasterView {
  name: string;
  host?: string;
  pid?: number;
  since?: number;
}

export interface WorkerView extends Partial<WorkerInfo> {
  name: string;
  /** Has its ephemeral /workers/<name> (false: only its /assign/<name> is left). */
  alive: boolean;
  /** Children of /assign/<name>: tasks handed to it and not finished. */
  inFlight: number;
}

export interface FarmView {
  leader: MasterInfo | null;
  masters: MasterView[];
  workers: WorkerView[];
  queue: number;
  inFlight: number;
  /** Children of /status. */
  statuses: number;
  /** Leader changes seen since the dashboard started. */
  leaderChanges: number;
  /** Per queue: controls, what waits and runs, who serves it (queue-admin.ts). */
  queues: QueueOverview[];
  /**
   * Tasks submitted since the dashboard started, derived: tasks finished + growth of (queued + in flight).
   * Never decreases; a one-tick spike from reads that are not one snapshot is ignored (see #pollSlow).
   */
  submitted: number;
}

export class FarmObserver extends EventEmitter {
  readonly clock = new SubmitClock();
  readonly feed: StatusFeed;
  readonly history = new History();
  readonly #sup: Supervisor;
  readonly #log: Logger | undefined;
  readonly #pollMs: number;
  readonly #queuePollMs: number;
  #leader: MasterInfo | null = null;
  #leaderKey: string | undefined;
  #leaderChanges = 0;
  readonly #masters = new Map<string, { view: MasterView; watch: DataWatch }>();
  readonly #workers = new Map<string, { info: WorkerInfo | undefined; watch: DataWatch }>();
  #inFlight = new Map<string, number>();
  #queueControls = new Map<string, { controls: QueueControls; problem?: string }>();
  #queue = 0;
  #baseline: number | undefined;
  #derived: number[] = [];
  #submitted = 0;
  readonly #timers: Array<{ t?: NodeJS.Timeout }> = [];
  #stopped = false;
  #lastWarn = 0;
  readonly #closers: Array<{ close(): void }> = [];
  #resolveReady!: () => void;
  /** Resolves after the first complete poll: the baseline that counters count from. */
  readonly ready = new Promise<void>((r) => {
    this.#resolveReady = r;
  });

  constructor(supervisor: Supervisor, options: ObserverOptions = {}) {
    super();
    this.#sup = supervisor;
    this.#log = options.logger;
    this.#pollMs = options.pollMs ?? 1000;
    this.#queuePollMs = options.queuePollMs ?? 250;
    this.feed = new StatusFeed(this.clock, options);
  }

  start(): void {
    this.#closers.push(
      this.#sup.watchData(PATHS.master, ({ data }) => this.#onLeader(data)),
      this.#sup.watchChildren(PATHS.masters, ({ added, removed }) => {
        for (const name of removed) {
          this.#masters.get(name)?.watch.close();
          this.#masters.delete(name);
        }
        for (const name of added) {
          const view: MasterView = { name };
          const watch = this.#sup.watchData(masterPath(name), ({ data }) => {
            const info = parseJson(data) as Partial<MasterInfo> | undefined;
            view.host = typeof info?.host === 'string' ? info.host : undefined;
            view.pid = typeof info?.pid === 'number' ? info.pid : undefined;
            view.since = typeof info?.since === 'number' ? info.since : undefined;
            this.emit('change');
          });
          this.#masters.set(name, { view, watch });
        }
        this.emit('change');
      }),
      this.#sup.watchChildren(PATHS.workers, ({ added, removed }) => {
        for (const name of removed) {
          this.#workers.get(name)?.watch.close();
          this.#workers.delete(name);
        }
        for (const name of added) {
          const entry: { info: WorkerInfo | undefined; watch: DataWatch } = {
            info: undefined,
            watch: undefined as never,
          };
          entry.watch = this.#sup.watchData(workerPath(name), ({ data }) => {
            entry.info = parseWorkerInfo(data);
            this.emit('change');
          });
          this.#workers.set(name, entry);
        }
        this.emit('change');
      }),
    );
    this.#loop(this.#queuePollMs, (c) => this.#pollQueue(c));
    this.#loop(this.#pollMs, (c) => this.#pollSlow(c));
  }

  stop(): void {
    this.#stopped = true;
    for (const slot of this.#timers) clearTimeout(slot.t);
    for (const c of this.#closers) c.close();
    for (const m of this.#masters.values()) m.watch.close();
    for (const w of this.#workers.values()) w.watch.close();
  }

  view(): FarmView {
    const workers: WorkerView[] = [];
    for (const [name, w] of this.#workers) {
      workers.push({ ...w.info, name, alive: true, inFlight: this.#inFlight.get(name) ?? 0 });
    }
    for (const [name, n] of this.#inFlight) {
      if (!this.#workers.has(name) && n > 0) workers.push({ name, alive: false, inFlight: n });
    }
    workers.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
    let inFlight = 0;
    for (const n of this.#inFlight.values()) inFlight += n;
    return {
      leader: this.#leader,
      masters: [...this.#masters.values()]
        .map((m) => ({ ...m.view }))
        .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true })),
      workers,
      queue: this.#queue,
      inFlight,
      statuses: this.feed.count,
      leaderChanges: this.#leaderChanges,
      submitted: this.#submitted,
      queues: queueOverview(
        this.#queueControls,
        this.#leader?.queue,
        [...this.#workers].flatMap(([n, w]) => (w.info ? [[n, w.info] as const] : [])),
      ),
    };
  }

  #onLeader(data: Buffer | null): void {
    let leader: MasterInfo | null = null;
    if (data) {
      const v = parseJson(data) as Partial<MasterInfo> | undefined;
      leader =
        v && typeof v.name === 'string'
          ? {
              name: v.name,
              host: String(v.host ?? ''),
              pid: Number(v.pid ?? 0),
              since: Number(v.since ?? 0),
              ...(v.queue && typeof v.queue === 'object' ? { queue: v.queue } : {}),
            }
          : { name: data.toString('utf8').slice(0, 128), host: '', pid: 0, since: 0 };
    }
    if (leader) {
      // A new /master node (another master, or the same one elected again) is a change of leadership.
      const key = `${leader.name}@${leader.since}`;
      if (this.#leaderKey !== undefined && key !== this.#leaderKey) this.#leaderChanges++;
      this.#leaderKey = key;
    }
    this.#leader = leader;
    this.emit('change');
  }

  /** Run `fn` every `ms`, never two at once; errors are logged (at most one warning a minute). */
  #loop(ms: number, fn: (client: ZkClient) => Promise<void>): void {
    const slot: { t?: NodeJS.Timeout } = {};
    this.#timers.push(slot);
    const run = async () => {
      if (this.#stopped) return;
      const client = this.#sup.session?.client;
      if (client) {
        try {
          await fn(client);
        } catch (err) {
          if (!this.#stopped && !(isZkError(err) && err.transient)) this.#warn(err);
        }
      }
      if (this.#stopped) return;
      // Without a session, look again soon: the first poll after connecting sets the baseline.
      slot.t = setTimeout(run, client ? ms : Math.min(ms, 100));
      slot.t.unref?.();
    };
    void run();
  }

  #warn(err: unknown): void {
    if (Date.now() - this.#lastWarn < 60_000) {
      this.#log?.debug({ err }, `dashboard: reading the farm failed: ${describeError(err)}`);
      return;
    }
    this.#lastWarn = Date.now();
    this.#log?.warn({ err }, `dashboard: reading the farm failed: ${describeError(err)}`);
  }

  async #pollQueue(client: ZkClient): Promise<void> {
    const stat = await client.exists(PATHS.tasks);
    const at = Date.now();
    // Queued: /tasks and the deep-queue backlog the leader last counted (a shelved task is still queued).
    this.#queue = (stat?.numChildren ?? 0) + backlogTotal(this.#leader?.queue);
    if (stat) this.clock.record(stat.cversion, at);
  }

  /**
   * One tick. Reads go against the flow of a task (/status, then /assign, then /tasks), so a task moving
   * forward meanwhile is missed for a tick rather than counted twice. A task moving backward (a retry, a
   * give-back) can still be counted twice in one tick: `submitted` publishes the smaller of the last two
   * derived values, which drops such one-tick spikes.
   */
  /** The controls of every queue (a handful of small nodes). */
  async #pollControls(client: ZkClient): Promise<void> {
    const names = await client.getChildren(PATHS.queues).catch((err: unknown) => {
      if (isZkError(err, 'NO_NODE')) return [];
      throw err;
    });
    const reads = await client.getDataMany(names.map(queuePath));
    const next = new Map<string, { controls: QueueControls; problem?: string }>();
    reads.forEach((r, i) => {
      if (!(r instanceof Error)) next.set(names[i]!, parseControls(r.data));
    });
    this.#queueControls = next;
  }

  async #pollSlow(client: ZkClient): Promise<void> {
    const tick = await this.feed.poll(client);
    await this.#pollAssign(client);
    await this.#pollControls(client);
    await this.#pollQueue(client);
    const now = Date.now();
    const inFlight = [...this.#inFlight.values()].reduce((a, b) => a + b, 0);
    const inSystem = this.#queue + inFlight;
    this.#baseline ??= inSystem;
    this.#derived = [...this.#derived.slice(-1), this.feed.totals.completed + inSystem - this.#baseline];
    this.#submitted = Math.max(this.#submitted, Math.min(...this.#derived));
    const point = this.history.push({
      at: now,
      completed: tick.completed,
      failed: tick.failed,
      s2s: tick.records.flatMap((r) => (r.s2sMs === undefined ? [] : [r.s2sMs])),
      run: tick.records.flatMap((r) => (r.runMs === undefined ? [] : [r.runMs])),
      queue: this.#queue,
      inFlight,
    });
    this.#resolveReady();
    this.emit('tick', { point, feed: tick } satisfies ObserverTick);
  }

  async #pollAssign(client: ZkClient): Promise<void> {
    let names: string[];
    try {
      names = await client.getChildren(PATHS.assign);
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
      names = [];
    }
    const counts = await Promise.all(
      names.map(async (w) => [w, (await client.exists(`${PATHS.assign}/${w}`))?.numChildren ?? 0] as const),
    );
    this.#inFlight = new Map(counts);
  }
}

export interface ObserverTick {
  point: Point;
  feed: FeedTick;
}

function parseJson(data: Buffer | null): unknown {
  if (!data || data.length === 0) return undefined;
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
}
