/**
 * Election: one leader among candidates, one term at a time (the sequential-ephemeral recipe of
 * ZooKeeper's documentation, as Kazoo's Election and Curator's LeaderLatch do it).
 *
 * Nodes:
 *   <path>/<name>-NNNNNNNNNN   ephemeral sequential: one per candidate; the lowest number leads
 *   <leaderPath>               ephemeral, optional: the leader's announcement for tools (data given by
 *                              the caller); created when a term starts, removed with the candidate in
 *                              one multi when the term ends
 *
 * Guarantees:
 * - At most one candidate leads at a time: the owner of the lowest candidate node. A session's
 *   ephemeral nodes vanish together when it ends, so the next in line cannot see its predecessor gone
 *   while the old leader's announcement stays.
 * - Each candidate watches only its predecessor: no herd of candidates when the leader goes, no
 *   polling. The line is the order of joining: the next in line takes over at once (no seniority
 *   delay), and a leader that left and came back joins at the end.
 * - One term at a time: `work(term)` is called when leadership starts (once the announcement is
 *   made: `leading` and the `leader` event come with it), and `term.signal` aborts when the term ends
 *   (the session is lost, `stop()`, the candidate node was removed, or the work failed). If `work`
 *   throws, or calls `term.fail()` later, the signal aborts first, so whatever the work started stops
 *   (its watches closed, its timers cleared) before anything else runs; then the candidate resigns
 *   (candidate and announcement deleted in one multi), waits a backoff (src/backoff.ts) and joins
 *   again at the end of the line, which gives another candidate its turn.
 * - A candidate node of ours left by an earlier session (`pastSessions`) is removed: it would hold a
 *   place in the line until that session expired.
 *
 * SUSPENDED: a leader stays leader. Its session may well be alive, and a leader whose writes are all
 * conditional (multis that check what they change) cannot do harm if it was lost meanwhile: its
 * requests fail.
 * LOST: the term's signal aborts at once (it follows the session's) and the Election is over; a new
 * session needs a new Election.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BackoffPolicy, backoffDelay } from '../backoff.js';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { CreateMode, type Stat } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';

export interface Term {
  /** 1 for this Election's first term, then 2, ... */
  readonly number: number;
  /** Aborts when the term ends; its reason says why. */
  readonly signal: AbortSignal;
  /** End the term as failed (the candidate resigns, backs off and joins again). */
  fail(reason: unknown): void;
}

export interface ElectionOptions {
  /** Parent of the candidate nodes (must exist), e.g. `/election`. */
  path: string;
  /** This candidate's name: its node is `<path>/<name>-NNNNNNNNNN`. */
  name: string;
  /** Data of the candidate node. */
  data?: Buffer;
  /** An ephemeral node the leader holds during each term (tools read it to see who leads). */
  leaderPath?: string;
  /** Data of `leaderPath` at the start of each term. */
  leaderData?: () => Buffer;
  /** Session ids this candidate held before: their candidate nodes are ours, and are removed. */
  pastSessions?: ReadonlySet<string>;
  /** Pause before joining again after a failed term or a failed attempt. @defaultValue 100 ms doubling to 5 s */
  backoff?: BackoffPolicy;
}

/** Starts the leader's work for one term; resolves once it is started (it may go on after). */
export type LeaderWork = (term: Term) => Promise<void>;

const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 5000 };
const SEQ_DIGITS = 10;

/** Events: 'leader' (true when a term starts, false when it ends), 'error' (err, what) for each failure. */
export class Election extends EventEmitter {
  readonly #session: Session;
  readonly #opts: ElectionOptions;
  readonly #work: LeaderWork;
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;
  #node: string | undefined;
  #term: (Term & { abort(reason: unknown): void }) | undefined;
  #terms = 0;
  #leaderName: string | undefined;
  #running: Promise<void> | undefined;
  #markJoined: () => void = () => {};
  readonly #joined = new Promise<void>((resolve) => {
    this.#markJoined = resolve;
  });

  constructor(session: Session, options: ElectionOptions, work: LeaderWork) {
    super();
    this.#session = session;
    this.#opts = options;
    this.#work = work;
    this.#signal = AbortSignal.any([session.signal, this.#stop.signal]);
    this.on('error', () => {});
  }

  /** Join the line and lead when our turn comes, until `stop()` or the end of the session. */
  start(): void {
    this.#running ??= this.#campaign();
  }

  /**
   * Resolves once the first attempt to join the line is over: our node is in line, or the attempt
   * failed (a retry follows), or the election ended. Never rejects. Awaiting it after start() orders
   * candidates started one after another: each joins the line behind the one before.
   */
  get joined(): Promise<void> {
    return this.#joined;
  }

  get leading(): boolean {
    return this.#term !== undefined && !this.#term.signal.aborted;
  }

  /** The current term, while leading. */
  get term(): Term | undefined {
    return this.leading ? this.#term : undefined;
  }

  /** The leading candidate's name as last seen (ours while we lead). */
  get leaderName(): string | undefined {
    return this.#leaderName;
  }

  /** Our candidate node, once joined. */
  get node(): string | undefined {
    return this.#node;
  }

  /** Replace the announcement's data (while leading; false otherwise). */
  async announce(data: Buffer): Promise<boolean> {
    const path = this.#opts.leaderPath;
    if (!path || !this.leading) return false;
    await this.#session.client.setData(path, data);
    return true;
  }

  /** Leave for good: end the term (its signal aborts), delete our nodes. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.#stop.signal.aborted) {
      this.#stop.abort(new ZkfarmError(ErrorCodes.STOPPED, 'the candidate left the election'));
      this.#term?.abort(this.#stop.signal.reason);
    }
    await this.#running?.catch(() => {});
    await this.#resign().catch(() => {});
  }

  async #campaign(): Promise<void> {
    if (this.#signal.aborted) this.#markJoined();
    this.#signal.addEventListener('abort', () => this.#markJoined(), { once: true });
    for (let attempt = 0; !this.#signal.aborted; ) {
      try {
        await this.#join().finally(() => this.#markJoined());
        if (!(await this.#waitForTurn())) continue;
        const failed = await this.#lead();
        if (failed === undefined) return; // the session ended, or stop()
        this.emit('error', failed, 'leading');
        await this.#resign();
      } catch (err) {
        if (this.#signal.aborted) return;
        this.emit('error', err, 'election');
      }
      // After a failure: give the others a turn, then join again at the end of the line.
      await sleep(backoffDelay(this.#opts.backoff ?? DEFAULT_BACKOFF, attempt++), undefined, {
        signal: this.#signal,
      }).catch(() => {});
    }
  }

  /** Our candidates in the line, in order (ours, of this session or an earlier one, among them). */
  async #line(): Promise<string[]> {
    const children = await this.#session.client.getChildren(this.#opts.path);
    return children.filter((c) => /-\d{10}$/.test(c)).sort((a, b) => seqOf(a) - seqOf(b));
  }

  /** Create our candidate node (or find the one a lost answer created); remove those of past sessions. */
  async #join(): Promise<void> {
    if (this.#node) return;
    const c = this.#session.client;
    const prefix = `${this.#opts.name}-`;
    try {
      const path = await c.create(
        `${this.#opts.path}/${prefix}`,
        this.#opts.data,
        CreateMode.EPHEMERAL_SEQUENTIAL,
      );
      this.#node = path.slice(this.#opts.path.length + 1);
    } catch (err) {
      if (!isZkError(err) || !err.transient) throw err;
    }
    // Ours from earlier sessions go; one of this session whose create answer was lost is adopted.
    for (const child of await this.#line()) {
      if (!child.startsWith(prefix) || child === this.#node) continue;
      const stat = await c.exists(`${this.#opts.path}/${child}`);
      if (!stat) continue;
      if (stat.ephemeralOwner === this.#session.id && this.#node === undefined) this.#node = child;
      else if (stat.ephemeralOwner === this.#session.id || this.#opts.pastSessions?.has(stat.ephemeralOwner))
        await c.removeIfExists(`${this.#opts.path}/${child}`, stat.version);
    }
    if (!this.#node)
      throw new ZkfarmError(ErrorCodes.STOPPED, 'joining the election: no answer; trying again');
  }

  /** Wait until we are first in line: true then; false when our node vanished (join again). */
  async #waitForTurn(): Promise<boolean> {
    const c = this.#session.client;
    while (!this.#signal.aborted) {
      const line = await this.#line();
      const at = line.indexOf(this.#node!);
      if (at < 0) {
        this.#node = undefined;
        return false;
      }
      this.#leaderName = line[0] === undefined ? undefined : nameOf(line[0]);
      if (at === 0) return true;
      const predecessor = `${this.#opts.path}/${line[at - 1]}`;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#signal.removeEventListener('abort', done);
          resolve();
        };
        this.#signal.addEventListener('abort', done, { once: true });
        c.exists(predecessor, done).then(
          (stat) => {
            if (!stat) done();
          },
          () => done(),
        );
      });
    }
    return false;
  }

  /**
   * One term: announce, start the work, and wait for the term to end. Resolves with the failure that
   * ended it, or undefined when the session ended or the candidate stopped.
   */
  async #lead(): Promise<unknown> {
    const controller = new AbortController();
    // Each part of the term's work (the leader's passes, caches, batchers, timers) listens on its
    // signal once: a dozen listeners are expected; a leak would still pass this bound and be warned of.
    setMaxListeners(50, controller.signal);
    const number = ++this.#terms;
    let failure: { reason: unknown } | undefined;
    const term = {
      number,
      signal: controller.signal,
      abort: (reason: unknown) => {
        if (!controller.signal.aborted) controller.abort(reason);
      },
      fail: (reason: unknown) => {
        if (controller.signal.aborted) return;
        failure = { reason };
        controller.abort(reason);
      },
    };
    const onEnd = () => term.abort(this.#signal.reason);
    this.#signal.addEventListener('abort', onEnd, { once: true });
    // A stop (or the session's end) that came while our turn was being read has fired already: an
    // aborted signal does not fire again, and nothing else would end this term.
    if (this.#signal.aborted) onEnd();
    this.#leaderName = this.#opts.name;
    let announced = false;
    try {
      this.#watchOwnNode(term);
      if (this.#opts.leaderPath) await this.#claimLeaderPath(this.#opts.leaderPath);
      // Leading only once announced: whoever sees `leading` (or the event) finds the announcement.
      if (!term.signal.aborted) {
        this.#term = term;
        announced = true;
        this.emit('leader', true);
        await this.#work(term);
      }
    } catch (err) {
      term.fail(err);
    }
    if (!term.signal.aborted)
      await new Promise((r) => term.signal.addEventListener('abort', r, { once: true }));
    this.#signal.removeEventListener('abort', onEnd);
    this.#term = undefined;
    this.#leaderName = undefined;
    if (announced) this.emit('leader', false);
    return failure ? (failure.reason ?? new Error('the term failed')) : undefined;
  }

  /** Someone deleting our candidate node ends the term: the next in line would lead too. */
  #watchOwnNode(term: Term & { fail(reason: unknown): void }): void {
    const path = `${this.#opts.path}/${this.#node}`;
    const check = () => {
      if (term.signal.aborted) return;
      this.#session.client.exists(path, check).then(
        (stat) => {
          if (!stat && !term.signal.aborted) {
            this.#node = undefined;
            term.fail(new ZkfarmError(ErrorCodes.STOPPED, `our candidate node ${path} was removed`));
          }
        },
        () => {},
      );
    };
    check();
  }

  /** Create the announcement; one left by a candidate that no longer leads is replaced. */
  async #claimLeaderPath(path: string): Promise<void> {
    const c = this.#session.client;
    const data = this.#opts.leaderData?.();
    for (let tries = 0; tries < 5; tries++) {
      try {
        await c.create(path, data, CreateMode.EPHEMERAL);
        return;
      } catch (err) {
        if (!isZkError(err, 'NODE_EXISTS')) throw err;
      }
      const stat: Stat | null = await c.exists(path);
      if (!stat) continue;
      if (stat.ephemeralOwner === this.#session.id) {
        await c.setData(path, data);
        return;
      }
      // We are first in line, so whoever holds it does not lead: a leftover (see the module comment).
      await c.removeIfExists(path, stat.version);
    }
    throw new ZkfarmError(ErrorCodes.NAME_TAKEN, `${path} keeps being taken by another session`);
  }

  /** Delete our candidate node (and the announcement, when ours) in one multi. */
  async #resign(): Promise<void> {
    const node = this.#node;
    if (!node || !this.#session.alive) return;
    this.#node = undefined;
    const c = this.#session.client;
    const candidate = `${this.#opts.path}/${node}`;
    const leaderPath = this.#opts.leaderPath;
    const announced = leaderPath ? await c.exists(leaderPath) : null;
    if (leaderPath && announced?.ephemeralOwner === this.#session.id) {
      try {
        await c.transaction().remove(leaderPath).remove(candidate).commit();
        return;
      } catch (err) {
        if (!isZkError(err, 'NO_NODE')) throw err;
      }
      await c.removeIfExists(leaderPath);
    }
    await c.removeIfExists(candidate);
  }
}

function seqOf(child: string): number {
  return Number(child.slice(-SEQ_DIGITS));
}

function nameOf(child: string): string {
  return child.slice(0, -(SEQ_DIGITS + 1));
}
