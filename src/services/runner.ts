/**
 * The worker's side of services, for one session: run what the leader placed here.
 *
 * Znodes: watches /service-placements/<worker> (a ChildrenCache), reads each placement; creates
 * /services/<name>/running/<n> (ephemeral: the fence) before starting instance n and writes its state
 * there; creates /services/<name>/endpoints/<n> (ephemeral) while the instance is healthy. Clears the
 * data of /service-placements/<worker> when it starts and writes the hand-over mark there when it stops
 * with its session alive (a clean stop: see `stop`).
 *
 * The nodes themselves are taken and given up in instance-nodes.ts.
 *
 * Fencing (docs/services.md): instance n runs only while this worker's session holds running/<n>.
 * - The fence is taken before the program starts. One held by another session is waited for (its
 *   holder stops, or its session expires); one held by an earlier session of this worker is ours to
 *   remove, once the runner of that session has stopped everything (`after`).
 * - The servers expire a session T (the negotiated timeout) after they last heard from it. This runner
 *   stops every instance as soon as no server has answered for T − FENCE_MARGIN (counted from the last
 *   answer, which came after the server last heard us), so each instance is stopped within
 *   T − FENCE_MARGIN + stopGraceMs of the last answer, and the leader places a replacement only
 *   stopGraceMs + FENCE_MARGIN after it saw the worker gone. If the session then turns out alive
 *   (the connection came back in time), the instances start again.
 * SUSPENDED: instances go on until the fence deadline above.
 * LOST: every instance is stopped; the next session's runner starts them again once this one is done.
 * A clean stop (the session still lives): every instance is stopped and its fence given up, then the
 * hand-over mark tells the leader it may place them elsewhere at once, not after the fence bound.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describeError } from '../errors.js';
import { ChildrenCache, type ChildrenUpdate } from '../recipes/children-cache.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import { stopAfterSilence } from './fence.js';
import { type HandlerRunner, InstanceRun } from './instance.js';
import { claimFence, releaseNodes, writeRun } from './instance-nodes.js';
import {
  decode,
  type Endpoint,
  encodeJson,
  type HandOver,
  instancePorts,
  type Placement,
  placementKey,
  placementsDir,
  type RunRecord,
} from './model.js';

const WATCHDOG_MS = 100;

export interface RunnerOptions {
  worker: string;
  /** Root of instance logs: `<workdir>/services/<name>/<n>/`. */
  workdir: string;
  allowShell: boolean;
  runHandler?: HandlerRunner;
  /** Sessions this worker held before: a fence node of one of them is a stale node of ours. */
  pastSessions: ReadonlySet<string>;
  /** The previous session's runner has stopped everything (nothing starts before). */
  after?: Promise<void>;
  log: Logger;
}

interface Slot {
  /** Operations on this instance, one at a time. */
  chain: Promise<void>;
  run?: InstanceRun;
  placement?: Placement;
  czxid?: bigint;
  /** Aborted when the slot's current start is to be given up (placement gone, runner stopping). */
  cancel?: AbortController;
  /** The record last written to running/<n>. */
  record?: RunRecord;
  writes: Promise<void>;
}

export class ServiceRunner {
  readonly #session: Session;
  readonly #opts: RunnerOptions;
  readonly #log: Logger;
  readonly #slots = new Map<string, Slot>();
  readonly #host = hostname();
  #cache: ChildrenCache | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #fenced = false;
  #closing = false;
  /** Resolves once every instance of this runner has stopped. */
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(session: Session, options: RunnerOptions) {
    this.#session = session;
    this.#opts = options;
    this.#log = options.log;
    this.closed = new Promise((r) => {
      this.#resolveClosed = r;
    });
    session.signal.addEventListener('abort', () => void this.stop(), { once: true });
  }

  /** Start watching this worker's placements (after the previous runner is done). */
  async start(): Promise<void> {
    await this.#opts.after;
    if (this.#closing) return;
    const c = this.#session.client;
    const dir = placementsDir(this.#opts.worker);
    await c.ensurePath(dir);
    // An earlier session's hand-over mark is no longer true once this one may run instances.
    await c.setData(dir, Buffer.alloc(0)).catch((err) => {
      if (!isZkError(err, 'NO_NODE')) throw err;
    });
    if (this.#closing) return;
    this.#cache = new ChildrenCache(this.#session, placementsDir(this.#opts.worker), (u) => this.#update(u));
    this.#watchdog = setInterval(() => this.#checkFence(), WATCHDOG_MS);
    this.#watchdog.unref();
  }

  get session(): Session {
    return this.#session;
  }

  /** What runs here now: instance key → its last state. */
  instances(): Map<string, RunRecord | undefined> {
    return new Map([...this.#slots].map(([k, s]) => [k, s.record]));
  }

  #update(u: ChildrenUpdate): void {
    const keys = new Set<string>(
      u.listed ? [...u.children, ...this.#slots.keys()] : u.events.map((e) => e.name),
    );
    for (const key of keys) this.#sync(key);
  }

  /** Bring one instance in line with its placement (read anew): start, restart on a new revision, stop. */
  #sync(key: string): void {
    let slot = this.#slots.get(key);
    if (!slot) {
      slot = { chain: Promise.resolve(), writes: Promise.resolve() };
      this.#slots.set(key, slot);
    }
    const s = slot;
    s.cancel?.abort();
    s.chain = s.chain
      .then(() => this.#apply(key, s))
      .catch((err) => {
        if (this.#session.alive && !this.#closing)
          this.#log.warn({ err, instance: key }, `service instance ${key}: ${describeError(err)}`);
      });
  }

  async #apply(key: string, s: Slot): Promise<void> {
    if (this.#closing) return;
    const c = this.#session.client;
    let placement: Placement | undefined;
    let czxid: bigint | undefined;
    try {
      const r = await c.getData(`${placementsDir(this.#opts.worker)}/${key}`);
      placement = decode<Placement>(r.data);
      czxid = r.stat.czxid;
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
    }
    const same = s.run && placement && s.czxid === czxid && !this.#fenced;
    if (same) return;
    await this.#stopSlot(s);
    if (!placement || this.#fenced || this.#closing) {
      if (!placement) this.#slots.delete(key);
      return;
    }
    s.cancel = new AbortController();
    await this.#claimFence(placement, s.cancel.signal);
    if (s.cancel.signal.aborted || this.#closing || this.#fenced) return;
    s.placement = placement;
    s.czxid = czxid;
    this.#startRun(s, placement);
  }

  #startRun(s: Slot, p: Placement): void {
    const logDir = join(this.#opts.workdir, 'services', p.service, String(p.instance));
    s.record = {
      ...this.#startingRecord(p),
      logDir,
      sessionTimeout: this.#session.client.connection.sessionTimeout,
    };
    s.run = new InstanceRun({
      service: p.service,
      instance: p.instance,
      revision: p.revision,
      spec: p.spec,
      logDir,
      allowShell: this.#opts.allowShell,
      runHandler: this.#opts.runHandler,
      log: this.#log,
      report: (update, endpoint) => {
        s.record = { ...s.record!, ...update };
        const data = encodeJson(s.record);
        const ep = endpoint === undefined ? undefined : endpoint ? this.#endpointOf(p) : null;
        s.writes = s.writes.then(() => writeRun(this.#session, p, data, ep, this.#log));
      },
    });
  }

  /** What a healthy instance of `p` on this worker publishes. */
  #endpointOf(p: Placement): Endpoint {
    return {
      service: p.service,
      instance: p.instance,
      host: this.#host,
      ports: instancePorts(p.spec, p.instance),
      worker: this.#opts.worker,
      revision: p.revision,
    };
  }

  /** Take running/<n> for this session (instance-nodes.ts), recording the instance as starting. */
  #claimFence(p: Placement, cancel: AbortSignal): Promise<void> {
    return claimFence(this.#session, p, this.#startingRecord(p), this.#opts.pastSessions, cancel, this.#log);
  }

  /** The state of an instance of `p` about to start on this worker. */
  #startingRecord(p: Placement): RunRecord {
    return {
      worker: this.#opts.worker,
      host: this.#host,
      revision: p.revision,
      state: 'starting',
      restarts: 0,
      since: Date.now(),
    };
  }

  /** Stop the slot's instance and give its fence and endpoint up (when the session still holds them). */
  async #stopSlot(s: Slot): Promise<void> {
    const run = s.run;
    const p = s.placement;
    s.run = undefined;
    s.czxid = undefined;
    if (!run || !p) return;
    await run.stop();
    await s.writes;
    await releaseNodes(this.#session, p);
  }

  /**
   * No answer from ZooKeeper for a while: the session may expire before we hear of it, and a
   * replacement may then start elsewhere. Each instance is stopped once the silence reaches
   * `stopAfterSilence` (its stop grace before T − margin, at least T/2), so that it is gone by
   * `fenceDeadline` of silence; the leader waits for what is left of that after the expiry. Looked at
   * again after pending I/O (a thread that was busy is not a silent server). When ZooKeeper answers
   * again and the session lives, the instances start again.
   */
  #checkFence(): void {
    const conn = this.#session.client.connection;
    const t = conn.sessionTimeout;
    if (t <= 0 || this.#closing) return;
    const silence = () => performance.now() - conn.lastAnswerAt;
    const due = [...this.#slots.values()].filter(
      (s) => s.run && s.placement && silence() >= stopAfterSilence(t, s.placement.spec.stopGraceMs),
    );
    if (due.length > 0) {
      setImmediate(() => {
        if (this.#closing) return;
        for (const s of due) {
          if (!s.run || !s.placement || silence() < stopAfterSilence(t, s.placement.spec.stopGraceMs))
            continue;
          this.#fenced = true;
          this.#log.warn(
            {
              instance: placementKey(s.placement.service, s.placement.instance),
              silentMs: Math.round(silence()),
              sessionTimeout: t,
            },
            'no answer from ZooKeeper for too long: stopping the service instance before its session can expire (fence)',
          );
          s.cancel?.abort();
          s.chain = s.chain.then(() => this.#stopSlot(s));
        }
      });
    } else if (this.#fenced && silence() < t / 3 && this.#session.alive) {
      this.#fenced = false;
      this.#log.info(
        {},
        'ZooKeeper answers again and the session lives: starting the service instances again',
      );
      for (const key of [...(this.#cache?.children ?? [])]) this.#sync(key);
    }
  }

  /**
   * Stop every instance (stop grace each) and give up their nodes; safe to call twice. A stop while the
   * session lives (the worker stops cleanly: nothing runs services on this session after it) then
   * marks the placements hand-over, so that the leader moves them at once (placements.ts).
   */
  async stop(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      clearInterval(this.#watchdog);
      this.#cache?.close();
      const all = [...this.#slots.values()].map((s) => {
        s.cancel?.abort();
        s.chain = s.chain.then(() => this.#stopSlot(s)).catch(() => {});
        return s.chain;
      });
      void Promise.all(all)
        .then(() => this.#handOver())
        .then(() => this.#resolveClosed());
    }
    await this.closed;
  }

  async #handOver(): Promise<void> {
    if (!this.#session.alive || this.#fenced) return;
    const mark: HandOver = { handedOver: true, session: this.#session.id, at: Date.now() };
    await this.#session.client.setData(placementsDir(this.#opts.worker), encodeJson(mark)).then(
      () => this.#log.info({}, 'service instances stopped and handed over to the leader'),
      (err) => {
        if (this.#session.alive && !isZkError(err, 'NO_NODE'))
          this.#log.warn({ err }, `could not hand the service instances over: ${describeError(err)}`);
      },
    );
  }
}
