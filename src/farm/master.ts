/**
 * Master: any number run, one leads.
 *
 * Znodes: /masters/<name> (ephemeral: every master, its name claimed), /election/<name>-NNNNNNNNNN
 * (ephemeral sequential: its place in line), /master (ephemeral: the leader's announcement, with a
 * summary of what waits in the queue and why); as leader it reads /workers/*, moves tasks between
 * /tasks, /assign/<worker> and /status (leader.ts), keeps the services (services/reconciler.ts) and
 * makes the schedules' ticks (schedules/scheduler.ts).
 *
 * Election: the Election recipe (recipes/election.ts). Each master joins the line on its session and
 * watches only the one before it; the first in line leads. A term starts a Leader; when its start
 * fails (say, recovery cannot list /assign) the term ends, which stops that Leader (watches, timers,
 * writes) before anything else runs, and the master resigns, backs off and joins the line again: one
 * Leader object acts per session at a time.
 *
 * Guarantees: every move of a task is one `multi` (moves.ts), so a crash at any instant leaves each
 * task in exactly one place. With no workers, tasks wait in /tasks.
 *
 * SUSPENDED: the leader keeps its state; its requests wait or time out and are retried. Its writes are
 * conditional multis, so a leader whose session ended meanwhile cannot corrupt anything.
 * LOST: the session's signal aborts, the term ends and the leader stops at once; on the new session the
 * master joins the line again, at its end.
 */
import { once } from 'node:events';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { Election, type Term } from '../recipes/election.js';
import { ServiceReconciler } from '../services/reconciler.js';
import type { Session } from '../zk/session.js';
import type { DataWatch } from '../zk/watchers.js';
import { Leader, type LeaderOptions, type LeaderStats } from './leader.js';
import { checkMasterOptions } from './options.js';
import { encode, type MasterInfo, masterPath, PATHS } from './protocol.js';
import { HOST, Role, type RoleInfo, type RoleOptions } from './role.js';
import { Scheduler } from './schedules/scheduler.js';
import { watchTaskIds } from './task-ids.js';

export interface MasterOptions extends RoleOptions, LeaderOptions {}

export interface MasterRoleInfo extends RoleInfo {
  leader: boolean;
  /** Name of the current leader as this master last saw it. */
  leaderName?: string;
}

export class Master extends Role {
  readonly kind = 'master' as const;
  readonly #opts: MasterOptions;
  #election: Election | undefined;
  #electionSession: Session | undefined;
  #leader: Leader | undefined;
  #leaderName: string | undefined;
  #leaderWatch: DataWatch | undefined;
  #leaderChanges = 0;
  #termSince = 0;
  #lastStats: LeaderStats | undefined;

  constructor(options: MasterOptions) {
    super(options);
    this.#opts = { ...options, ...checkMasterOptions(options) };
  }

  get isLeader(): boolean {
    return this.#leader?.active === true;
  }

  protected async onSession(session: Session): Promise<void> {
    // One election per session (a setup that failed later is retried on the same session).
    if (this.#electionSession === session) return;
    const me: MasterInfo = { name: this.name, host: HOST, pid: process.pid, since: Date.now() };
    await this.claimEphemeral(session, masterPath(this.name), encode(me), this.staleNodeWaitMs());
    this.#watchLeader(session);
    const election = new Election(
      session,
      {
        path: PATHS.election,
        name: this.name,
        data: encode(me),
        leaderPath: PATHS.master,
        leaderData: () => {
          // The same `since` in every rewrite of this term's /master (tools key leader changes on it).
          this.#termSince = Date.now();
          return encode({ ...me, since: this.#termSince });
        },
        pastSessions: this.pastSessions,
      },
      (term) => this.#lead(session, term, me),
    );
    election.on('error', (err: unknown, what: string) => {
      if (session.alive)
        this.log.warn(
          { err },
          `${what === 'leading' ? 'taking the lead' : 'the election'} failed; trying again`,
        );
    });
    this.#election = election;
    this.#electionSession = session;
    election.start();
    // The role is started once it stands in line: a host that starts masters one after another (the
    // rehearsal's leader first) gets them in line in that order.
    await election.joined;
  }

  /** Who leads, as /master says (every master reads it when it changes). */
  #watchLeader(session: Session): void {
    this.#leaderWatch?.close();
    this.#leaderWatch = session.watchData(PATHS.master, ({ data }) => {
      this.#leaderName = data ? safeName(data) : undefined;
    });
  }

  /** One term: a Leader that acts until the term ends. */
  async #lead(session: Session, term: Term, me: MasterInfo): Promise<void> {
    this.#leaderChanges++;
    this.log.info({ session: session.id, term: term.number }, `${this.name} leads`);
    // Before handing out work: a /tasks made again must not hand out ids of kept results (task-ids.ts).
    await watchTaskIds(session, this.log, term.signal);
    const since = this.#termSince;
    const leader = new Leader(session, term, this.#opts, this.log, (queue) => {
      void this.#election?.announce(encode({ ...me, since, queue })).catch(() => {});
    });
    this.#leader = leader;
    term.signal.addEventListener(
      'abort',
      () => {
        this.#lastStats = leader.stats();
        if (this.#leader === leader) this.#leader = undefined;
        this.emit('leader', false);
      },
      { once: true },
    );
    this.emit('leader', true);
    // Services are kept by the leader too, for the same term (services/reconciler.ts).
    new ServiceReconciler(session, term.signal, this.log).start();
    // So are the schedules: a tick's task is made by whoever leads when it is due (schedules/scheduler.ts).
    new Scheduler(session, term.signal, this.log).start();
    await leader.start();
  }

  protected override async beforeClose(): Promise<void> {
    // Step down first, so a standby can take over before our session is even closed.
    const leader = this.#leader;
    if (leader) this.#lastStats = leader.stats();
    this.#leaderWatch?.close();
    await this.#election?.stop();
  }

  override info(): MasterRoleInfo {
    const leading = this.isLeader;
    return { ...super.info(), leader: leading, leaderName: leading ? this.name : this.#leaderName };
  }

  stats(): LeaderStats & { leaderChanges: number } {
    const s = this.#leader?.stats() ?? this.#lastStats ?? Leader.emptyStats();
    return { ...s, leaderChanges: this.#leaderChanges };
  }

  /** Wait until this master leads (tests, tools). */
  async waitForLeadership(timeoutMs = 30_000): Promise<void> {
    if (this.isLeader) return;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      while (!this.isLeader) await once(this, 'leader', { signal });
    } catch {
      if (this.isLeader) return;
      throw new ZkfarmError(ErrorCodes.WAIT_TIMEOUT, `${this.name} did not lead within ${timeoutMs} ms`);
    }
  }
}

function safeName(data: Buffer): string | undefined {
  try {
    const v = JSON.parse(data.toString('utf8')) as { name?: unknown };
    return typeof v.name === 'string' ? v.name : undefined;
  } catch {
    return undefined;
  }
}
