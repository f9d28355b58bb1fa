/**
 * The host: many named masters and workers in one process, each in its own worker thread with its own
 * ZooKeeper session, controlled over Comlink, logging through one writer.
 *
 * - Each thread is a RoleThread (role-handle.ts): its proxy and channels held for its lifetime, every
 *   call raced against its exit (ZKFARM_ROLE_EXITED). Error codes cross the boundary (see comlink.ts).
 * - A thread that exits without being asked is restarted with backoff (1 s, 2 s, ... 30 s; reset after a
 *   minute of good health), and the restart is logged. `restart: false` turns that off.
 * - Worker roles share one handler pool owned by the host (shared-pool.ts), made only when some worker
 *   has handler modules.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ResourceLimits, Worker as Thread } from 'node:worker_threads';
import type pino from 'pino';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { createHandlerPool, type HandlerPool } from '../exec/index.js';
import { validateName } from '../farm/protocol.js';
import { createLogger } from './logging.js';
import { type RehearsalOptions, type RehearsalReport, rehearse } from './rehearsal.js';
import {
  defaultResourceLimits,
  type LaunchContext,
  RoleThread,
  type SpawnRoleThread,
  spawnThread,
} from './role-handle.js';
import type { FarmSettings, FarmSpec, RoleSpec, RoleThreadInfo, RoleThreadStats } from './types.js';

export interface HostOptions {
  logger?: pino.Logger;
  /** Restart role threads that exit unexpectedly. @defaultValue true */
  restart?: boolean;
  /** First restart delay (ms), doubled per quick failure up to 30 s. @defaultValue 1000 */
  restartDelayMs?: number;
  /**
   * How role threads are made, for tools that run them differently: zkfarm/testing's `sourceThreads`
   * runs them from TypeScript sources, its `FaultInjector` also lets a test crash them or expire their
   * sessions. @defaultValue `new Worker(entry, options)` (compiled JavaScript)
   */
  spawn?: SpawnRoleThread;
  /**
   * V8 limits of each role thread (the Worker constructor's `resourceLimits`), merged over the
   * defaults of its kind, ROLE_RESOURCE_LIMITS for workers and MASTER_RESOURCE_LIMITS for masters:
   * `{ maxOldGenerationSizeMb: 512 }` keeps the young generations, and a field given as 0 is left to V8
   * (`{ maxYoungGenerationSizeMb: 0 }` is V8's own young generation).
   * @defaultValue workers `{ maxYoungGenerationSizeMb: 3 }`, masters `{ maxYoungGenerationSizeMb: 16 }`
   */
  roleResourceLimits?: ResourceLimits;
}

/**
 * How long past its drain deadline a role may take to stop (hand back what it holds, step down, close its
 * session) before its thread is terminated: a stop ends even when ZooKeeper does not answer.
 */
export const ROLE_STOP_GRACE_MS = 10_000;

export class Host extends EventEmitter {
  readonly settings: FarmSettings;
  readonly log: pino.Logger;
  readonly #threads = new Map<string, RoleThread>();
  readonly #restart: boolean;
  readonly #restartDelay: number;
  #pool: HandlerPool | undefined;
  #stopping: Promise<void> | undefined;
  readonly #launch: LaunchContext;

  private constructor(settings: FarmSettings, options: HostOptions) {
    super();
    this.settings = settings;
    this.log = options.logger ?? createLogger();
    this.#restart = options.restart ?? true;
    this.#restartDelay = options.restartDelayMs ?? 1000;
    this.#launch = {
      settings,
      log: this.log,
      logLevel: this.log.level,
      spawn: options.spawn ?? spawnThread,
      resourceLimits: (kind) => ({ ...defaultResourceLimits(kind), ...options.roleResourceLimits }),
      pool: () => {
        this.#pool ??= createHandlerPool();
        return this.#pool;
      },
      onExit: (rt, thread, code) => this.#onExit(rt, thread, code),
    };
    this.on('error', () => {});
  }

  /** Start every role of `spec`; resolves when all are up (rejects, stopping the rest, if one cannot start). */
  static async start(spec: FarmSpec, options: HostOptions = {}): Promise<Host> {
    const { roles, ...settings } = spec;
    const host = Host.create(settings, options);
    try {
      await host.startRoles(roles);
    } catch (err) {
      await host.stop({ drain: false });
      throw err;
    }
    return host;
  }

  /**
   * A host with no roles yet: give it some with startRoles() or addRole(). Unlike start(), the caller
   * holds the host while its roles start, so stop() can end a start that waits (for ZooKeeper, or for a
   * stale node of a role's name to expire).
   */
  static create(settings: FarmSettings, options: HostOptions = {}): Host {
    return new Host(settings, options);
  }

  /**
   * Start roles: masters first, so that workers find a leader; within a kind, all at once. Rejects on the
   * first role that cannot start (or when stop() ends the start); the roles started stay up.
   *
   * With `rehearsal`, the roles' threads first run them in a throwaway farm (rehearsal.ts), and the
   * master that led it starts first; the rehearsal's report comes back (a failed one says why in
   * `error`, and the roles start as they would have without it).
   */
  async startRoles(
    roles: readonly RoleSpec[],
    options: { rehearsal?: RehearsalOptions } = {},
  ): Promise<RehearsalReport | undefined> {
    const names = new Set<string>();
    for (const r of roles) {
      if (names.has(r.name))
        throw new ZkfarmError(ErrorCodes.CONFIG_INVALID, `role name ${r.name} appears twice`);
      names.add(r.name);
    }
    const masters = roles.filter((r) => r.kind === 'master');
    const workers = roles.filter((r) => r.kind === 'worker');
    if (!options.rehearsal || options.rehearsal.tasks <= 0) {
      await Promise.all(masters.map((r) => this.addRole(r)));
      await Promise.all(workers.map((r) => this.addRole(r)));
      return undefined;
    }
    const threads: RoleThread[] = [];
    try {
      for (const r of roles) threads.push(this.#register(r));
      for (const rt of threads) rt.spawn(this.#launch); // checks each role's options first
    } catch (err) {
      for (const rt of threads) {
        rt.wanted = false;
        this.#threads.delete(rt.spec.name);
        await rt.thread?.terminate().catch(() => {});
      }
      throw err;
    }
    const report = await rehearse(threads, this.#launch, options.rehearsal);
    const leads = (r: RoleSpec) => r.name === report.leader;
    for (const group of [masters.filter(leads), masters.filter((r) => !leads(r)), workers])
      await Promise.all(group.map((r) => this.#startRegistered(this.#get(r.name))));
    return report;
  }

  /** Start one more role. Rejects if the name is used on this host, or the role cannot start. */
  async addRole(spec: RoleSpec): Promise<RoleThreadInfo> {
    return this.#startRegistered(this.#register(spec));
  }

  /** Check a role's spec and take its name on this host (its thread not made yet). */
  #register(spec: RoleSpec): RoleThread {
    validateName('role', spec.name);
    if (spec.kind !== 'master' && spec.kind !== 'worker') {
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `role kind must be "master" or "worker", got ${JSON.stringify(spec.kind)}`,
      );
    }
    if (this.#stopping) throw new ZkfarmError(ErrorCodes.STOPPED, 'the host is stopping');
    if (this.#threads.has(spec.name)) {
      throw new ZkfarmError(ErrorCodes.NAME_TAKEN, `a role named ${spec.name} already runs on this host`);
    }
    const rt = new RoleThread(spec, this.#restartDelay);
    this.#threads.set(spec.name, rt);
    return rt;
  }

  /** Start a registered role: in the thread a rehearsal left empty, else in a new one. */
  async #startRegistered(rt: RoleThread): Promise<RoleThreadInfo> {
    try {
      if (rt.state !== 'starting' || !rt.thread) return await this.#start(rt);
      const info = await rt.start(this.#launch);
      this.emit('role-started', info);
      return info;
    } catch (err) {
      rt.wanted = false;
      this.#threads.delete(rt.spec.name);
      await rt.thread?.terminate().catch(() => {});
      throw err;
    }
  }

  async #start(rt: RoleThread): Promise<RoleThreadInfo> {
    const info = await rt.launch(this.#launch);
    this.emit('role-started', info);
    return info;
  }

  #onExit(rt: RoleThread, thread: Thread, code: number): void {
    if (rt.thread !== thread) return;
    const rehearsing = rt.state === 'rehearsing';
    rt.state = 'exited';
    if (rehearsing) return; // the rehearsal ends; the real start makes the thread again
    this.emit('role-exit', { name: rt.spec.name, code, wanted: !rt.wanted });
    if (!rt.wanted || this.#stopping || !this.#restart || this.#threads.get(rt.spec.name) !== rt) {
      return;
    }
    // A thread that stayed up for a minute starts the backoff over.
    if (Date.now() - rt.startedAt > 60_000) rt.restarts.reset();
    const delay = rt.restarts.next();
    rt.state = 'restarting';
    this.log.warn(
      { role: rt.spec.name, kind: rt.spec.kind, code, delayMs: delay, restarts: rt.restarts.attempts },
      `role ${rt.spec.name} exited (code ${code}); restarting in ${delay} ms`,
    );
    rt.restartTimer = setTimeout(() => {
      if (!rt.wanted || this.#stopping) return;
      this.#start(rt).then(
        () => {
          this.log.info(
            { role: rt.spec.name, restarts: rt.restarts.attempts },
            `role ${rt.spec.name} restarted`,
          );
          this.emit('role-restarted', rt.spec.name);
        },
        (err) => {
          this.log.error(
            { role: rt.spec.name, err },
            `restarting ${rt.spec.name} failed: ${describeError(err)}`,
          );
          void rt.thread.terminate();
        },
      );
    }, delay);
  }

  #get(name: string): RoleThread {
    const rt = this.#threads.get(name);
    if (!rt)
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `no role named ${name} on this host (roles: ${[...this.#threads.keys()].join(', ')})`,
      );
    return rt;
  }

  /** Info of every role; a role whose thread is down reports its last known info with state 'exited'/'restarting'. */
  async roles(): Promise<RoleThreadInfo[]> {
    return Promise.all([...this.#threads.values()].map((rt) => this.#info(rt)));
  }

  async #info(rt: RoleThread): Promise<RoleThreadInfo> {
    if (rt.state === 'running') {
      try {
        rt.lastInfo = await rt.call(rt.api.info());
        return rt.lastInfo;
      } catch {
        // fell over while asked: report what we know
      }
    }
    const base: RoleThreadInfo = rt.lastInfo ?? {
      name: rt.spec.name,
      kind: rt.spec.kind,
      state: 'starting',
      session: 'connecting',
      sessions: 0,
    };
    return {
      ...base,
      state: rt.state === 'restarting' || rt.state === 'exited' ? 'failed' : base.state,
      session: rt.state === 'running' ? base.session : 'closed',
      leader: false,
    };
  }

  async info(name: string): Promise<RoleThreadInfo> {
    return this.#info(this.#get(name));
  }

  async stats(name: string): Promise<RoleThreadStats> {
    const rt = this.#get(name);
    return rt.call(rt.api.stats());
  }

  /** Stats of every running role (roles that are down are left out). */
  async allStats(): Promise<Array<RoleThreadStats & { name: string }>> {
    const out: Array<RoleThreadStats & { name: string }> = [];
    await Promise.all(
      [...this.#threads.values()]
        .filter((rt) => rt.state === 'running')
        .map(async (rt) => {
          try {
            out.push({ name: rt.spec.name, ...(await rt.call(rt.api.stats())) });
          } catch {
            // exited meanwhile
          }
        }),
    );
    return out;
  }

  async pause(name: string): Promise<void> {
    const rt = this.#get(name);
    await rt.call(rt.api.pause());
  }

  async resume(name: string): Promise<void> {
    const rt = this.#get(name);
    await rt.call(rt.api.resume());
  }

  /** Stop a role (draining a worker) and forget it. */
  async removeRole(name: string, options: { drain?: boolean; deadlineMs?: number } = {}): Promise<void> {
    const rt = this.#get(name);
    rt.wanted = false;
    clearTimeout(rt.restartTimer);
    await this.#end(rt, options);
    this.#threads.delete(name);
  }

  async #end(rt: RoleThread, options: { drain?: boolean; deadlineMs?: number }): Promise<void> {
    rt.wanted = false;
    clearTimeout(rt.restartTimer);
    if (rt.state === 'running' || rt.state === 'starting') {
      rt.state = 'stopping';
      const deadline = (options.deadlineMs ?? 30_000) + ROLE_STOP_GRACE_MS;
      await Promise.race([
        rt.call(rt.api.stop(options)).catch(() => {}),
        sleep(deadline, undefined, { ref: false }),
      ]);
    }
    await rt.thread?.terminate().catch(() => {});
    for (const p of rt.ports) p.close();
    rt.ports = [];
    rt.state = 'exited';
  }

  /**
   * Scale the worker roles to `count`: new ones are named `<prefix>-worker-<n>` after the highest number
   * in use (or from `template.name`'s prefix), removed ones are the newest, drained first.
   */
  async scaleWorkers(
    count: number,
    template: Omit<RoleSpec, 'kind' | 'name'> & { prefix: string },
  ): Promise<string[]> {
    if (!Number.isInteger(count) || count < 0)
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `worker count must be a whole number ≥ 0, got ${count}`,
      );
    const workers = [...this.#threads.values()]
      .filter((rt) => rt.spec.kind === 'worker')
      .map((rt) => rt.spec.name);
    if (workers.length < count) {
      const used = new Set(this.#threads.keys());
      const added: RoleSpec[] = [];
      let n = 1;
      while (workers.length + added.length < count) {
        const name = `${template.prefix}-worker-${n++}`;
        if (used.has(name)) continue;
        const { prefix: _p, ...rest } = template;
        added.push({ ...rest, kind: 'worker', name });
      }
      await Promise.all(added.map((s) => this.addRole(s)));
    } else if (workers.length > count) {
      const doomed = workers.slice(count);
      await Promise.all(doomed.map((n) => this.removeRole(n, { drain: true })));
    }
    return [...this.#threads.values()].filter((rt) => rt.spec.kind === 'worker').map((rt) => rt.spec.name);
  }

  /**
   * Stop every role: workers drain up to the deadline, masters step down, sessions close; roles still
   * starting stop at once. Ends within `deadlineMs` + ROLE_STOP_GRACE_MS whatever ZooKeeper does: a role
   * that has not stopped by then has its thread terminated. Idempotent.
   */
  stop(options: { drain?: boolean; deadlineMs?: number } = {}): Promise<void> {
    this.#stopping ??= (async () => {
      const all = [...this.#threads.values()];
      await Promise.all(all.map((rt) => this.#end(rt, options)));
      this.#threads.clear();
      await this.#pool?.close();
      this.emit('stopped');
    })();
    return this.#stopping;
  }

  /** Terminate every thread now, without clean-up (a second Ctrl-C). */
  async kill(): Promise<void> {
    this.#stopping ??= Promise.resolve();
    await Promise.all([...this.#threads.values()].map((rt) => rt.thread?.terminate().catch(() => {})));
    await this.#pool?.close();
  }

  get size(): number {
    return this.#threads.size;
  }
}
