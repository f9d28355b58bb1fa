/**
 * Master: any number run, one leads.
 *
 * Znodes: /masters/<name> (ephemeral, every master), /master (ephemeral, the leader), reads /workers/*,
 * moves tasks between /tasks/<id> and /assign/<worker>/<id>, writes /status/<id> for tasks that cannot run.
 *
 * Election: every master tries to create /master; the one that succeeds leads, the others watch it and
 * try again when it vanishes. A stale /master of our own earlier session is removed first.
 *
 * Guarantees: every move of a task is one `multi` (see leader.ts), so a crash at any instant leaves each
 * task in exactly one place. With no workers, tasks wait in /tasks.
 *
 * SUSPENDED: the leader keeps its state; its requests wait or time out and are retried.
 * LOST: the session's signal aborts, the leader stops acting at once (every request of the old session
 * fails), and on the new session the master stands for election again.
 */
import { ErrorCodes, wholeNumber, ZkfarmError } from '../errors.js';
import { isZkError, type Session, ZK_CODES, ZkError } from '../zk/index.js';
import { Leader, type LeaderOptions, type LeaderStats } from './leader.js';
import { encode, type MasterInfo, masterPath, PATHS } from './protocol.js';
import { HOST, Role, type RoleInfo, type RoleOptions } from './role.js';
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
  #leader: Leader | undefined;
  #leaderName: string | undefined;
  #leaderChanges = 0;
  #lastStats: LeaderStats | undefined;

  constructor(options: MasterOptions) {
    super(options);
    if (options.batchSize !== undefined) wholeNumber('batchSize', options.batchSize, 1);
    if (options.maxLost !== undefined) wholeNumber('maxLost', options.maxLost, 1);
    this.#opts = options;
  }

  get isLeader(): boolean {
    return this.#leader?.active === true;
  }

  protected async onSession(session: Session): Promise<void> {
    this.#leader = undefined;
    const me: MasterInfo = { name: this.name, host: HOST, pid: process.pid, since: Date.now() };
    await this.claimEphemeral(session, masterPath(this.name), encode(me), this.staleNodeWaitMs());
    void this.#campaign(session, me);
  }

  /** Stand for election on this session until we lead or the session ends. */
  async #campaign(session: Session, me: MasterInfo): Promise<void> {
    const c = session.client;
    let delay = 100;
    while (session.alive && this.state !== 'stopping' && this.state !== 'stopped') {
      try {
        // The longest-standing master goes first; later ones give it a moment. Without this, a crashed
        // leader restarted at once races the standbys and may simply win its place back.
        const wait = await this.#seniorityDelay(session);
        if (wait > 0) {
          await sleep(wait);
          if (await c.exists(PATHS.master)) throw new ZkError(ZK_CODES.NODE_EXISTS, 'create', PATHS.master);
        }
        await c.createEphemeral(PATHS.master, encode({ ...me, since: Date.now() }));
        await this.#lead(session);
        return;
      } catch (err) {
        if (!session.alive) return;
        if (!isZkError(err, 'NODE_EXISTS')) {
          this.log.warn({ err }, 'election attempt failed; retrying');
          await sleep(delay);
          delay = Math.min(delay * 2, 2000);
          continue;
        }
      }
      // Someone holds /master. Is it a stale node of ours? Otherwise wait for it to go.
      try {
        const vanished = new Promise<void>((resolve) => {
          const onAbort = () => resolve();
          session.signal.addEventListener('abort', onAbort, { once: true });
          c.exists(PATHS.master, () => resolve())
            .then(async (stat) => {
              if (!stat) return resolve();
              const owner = stat.ephemeralOwner;
              if (owner === session.id) {
                // Our create succeeded on the server but the answer was lost: we lead.
                resolve();
                return;
              }
              if (this.pastSessions.has(owner)) {
                await c.removeIfExists(PATHS.master, stat.version);
                resolve();
                return;
              }
              const { data } = await c.getData(PATHS.master).catch(() => ({ data: Buffer.from('{}') }));
              this.#leaderName = safeName(data);
              this.log.debug({ leader: this.#leaderName }, 'standing by');
            })
            .catch(() => resolve());
        });
        await vanished;
        const stat = await c.exists(PATHS.master).catch(() => null);
        if (stat && stat.ephemeralOwner === session.id) {
          await this.#lead(session);
          return;
        }
      } catch (err) {
        if (!session.alive) return;
        this.log.warn({ err }, 'watching the leader failed; retrying');
        await sleep(delay);
      }
    }
  }

  /** 250 ms for every live master that registered before us (by the creation order of /masters/<name>). */
  async #seniorityDelay(session: Session): Promise<number> {
    try {
      const c = session.client;
      const names = await c.getChildren(PATHS.masters);
      const reads = await c.getDataMany(names.map((n) => masterPath(n)));
      const czxid = (i: number) => {
        const r = reads[i];
        return r && !(r instanceof Error) ? r.stat.czxid : undefined;
      };
      const mine = czxid(names.indexOf(this.name));
      if (mine === undefined) return 0;
      let older = 0;
      names.forEach((_, i) => {
        const z = czxid(i);
        if (z !== undefined && z < mine) older++;
      });
      return Math.min(older * 250, 2000);
    } catch {
      return 0;
    }
  }

  async #lead(session: Session): Promise<void> {
    if (!session.alive) return;
    this.#leaderName = this.name;
    this.#leaderChanges++;
    this.log.info({ session: session.id }, `${this.name} leads`);
    this.emit('leader', true);
    // Before handing out work: a /tasks made again must not hand out ids of kept results (task-ids.ts).
    await watchTaskIds(session, this.log);
    const leader = new Leader(session, this.#opts, this.log);
    this.#leader = leader;
    session.signal.addEventListener(
      'abort',
      () => {
        this.#lastStats = leader.stats();
        // We no longer know who leads: the next election on the new session will tell.
        if (this.#leaderName === this.name) this.#leaderName = undefined;
        this.emit('leader', false);
      },
      { once: true },
    );
    await leader.run();
  }

  protected override async beforeClose(): Promise<void> {
    // Step down first, so a standby can take over before our session is even closed.
    const leader = this.#leader;
    const session = this.supervisor?.session;
    if (leader && session) {
      leader.stop();
      this.#lastStats = leader.stats();
      await session.client.removeIfExists(PATHS.master).catch(() => false);
    }
  }

  override info(): MasterRoleInfo {
    return { ...super.info(), leader: this.isLeader, leaderName: this.#leaderName };
  }

  stats(): LeaderStats & { leaderChanges: number } {
    const s = this.#leader?.stats() ?? this.#lastStats ?? Leader.emptyStats();
    return { ...s, leaderChanges: this.#leaderChanges };
  }

  /** Wait until this master leads (tests, tools). */
  async waitForLeadership(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.isLeader) {
      if (Date.now() > deadline)
        throw new ZkfarmError(ErrorCodes.WAIT_TIMEOUT, `${this.name} did not lead within ${timeoutMs} ms`);
      await sleep(20);
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
