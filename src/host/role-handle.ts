/**
 * The host's handle on one role thread: the thread, its Comlink proxy and its channels, and its state
 * from start to exit. The host (host.ts) decides what to start, stop and restart; this is how one thread
 * is made and talked to.
 *
 * - A strong reference to the thread, its proxy and the host's ends of its channels is kept for the
 *   thread's lifetime (a collected proxy would release the channel and the thread would stop listening;
 *   an unreferenced port could be collected and the thread's pool calls never answered).
 * - Comlink never settles a call whose thread exited: every call races the thread's exit and rejects
 *   with ZKFARM_ROLE_EXITED.
 * - Log lines come back on a channel to the host's single writer; a worker with handler modules gets a
 *   channel to the host's shared handler pool (shared-pool.ts).
 */
import {
  MessageChannel,
  type ResourceLimits,
  Worker as Thread,
  type WorkerOptions,
} from 'node:worker_threads';
import type pino from 'pino';
import { Backoff } from '../backoff.js';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import type { HandlerPool } from '../exec/index.js';
import type { RoleKind } from '../farm/role.js';
import { Comlink, nodeEndpoint } from './comlink.js';
import { writeThreadLine } from './logging.js';
import { checkRoleThreadInit } from './options.js';
import { servePool } from './shared-pool.js';
import type { FarmSettings, RoleSpec, RoleThreadApi, RoleThreadInfo, RoleThreadInit } from './types.js';

/**
 * The role threads' entry file: .ts when the host itself runs from its sources, else workers/role-thread
 * and our modules it imports in one file, made by `npm run build` (scripts/bundle-role-thread.mjs).
 */
const ENTRY = new URL(
  import.meta.url.endsWith('.ts') ? '../../workers/role-thread.ts' : './role-thread.bundle.js',
  import.meta.url,
);

/**
 * Makes a role's thread from the entry file and the options the host chose (its ports in `workerData`
 * and `transferList`, its name). The default is `new Worker(entry, options)`.
 */
export type SpawnRoleThread = (entry: URL, options: WorkerOptions, role: RoleSpec) => Thread;

export const spawnThread: SpawnRoleThread = (entry, options) => {
  if (entry.pathname.endsWith('.ts')) {
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      'role threads cannot start from TypeScript sources on their own: build zkfarm (npm run build), or ' +
        "pass zkfarm/testing's sourceThreads as the host's spawn option",
    );
  }
  return new Thread(entry, options);
};

/**
 * V8 limits of every worker thread (and the base of a master's) unless the host's `roleResourceLimits`
 * says otherwise. A thread's heap is sized as if it were a whole process: its young generation may grow
 * to 48 MB (semi-spaces of 16 MB), and a role that allocates steadily (a session's reads, a worker's
 * tasks) fills it before it scavenges, so each thread keeps tens of MB resident that it does not need.
 * A worker's live data is small and short-lived, so a 3 MB young generation scavenges more often, each
 * time over less. benchmarks/README.md (Memory per role thread) has the figures.
 */
export const ROLE_RESOURCE_LIMITS: Readonly<ResourceLimits> = Object.freeze({ maxYoungGenerationSizeMb: 3 });

/**
 * A master's: a 16 MB young generation (V8 makes it 8 MB semi-spaces, 24 MB with the space for large
 * objects). The leader handles every task of the farm on one thread, and
 * what it holds between a task's listing and its assignment (the queue view, the reads in flight)
 * survives a small young generation's scavenges: at 3 MB it scavenged ~200 times per 20,000 tasks.
 * At 16 MB the farm's CPU per task fell ~6% (benchmarks/README.md, "The leader's young generation").
 * There are few masters, so the memory of a host of many roles hardly moves.
 */
export const MASTER_RESOURCE_LIMITS: Readonly<ResourceLimits> = Object.freeze({
  maxYoungGenerationSizeMb: 16,
});

/** The V8 limits a role of `kind` starts from, before the host's `roleResourceLimits` is merged over them. */
export function defaultResourceLimits(kind: RoleKind): Readonly<ResourceLimits> {
  return kind === 'master' ? MASTER_RESOURCE_LIMITS : ROLE_RESOURCE_LIMITS;
}

/** What a handle needs from its host to start its thread. */
export interface LaunchContext {
  settings: FarmSettings;
  log: pino.Logger;
  logLevel: string;
  spawn: SpawnRoleThread;
  /** V8 limits of a role's thread (its kind's defaults merged with the host's option). */
  resourceLimits(kind: RoleKind): ResourceLimits;
  /** The host's shared handler pool (made on first use). */
  pool(): HandlerPool;
  /** The thread ended, asked to or not. */
  onExit(rt: RoleThread, thread: Thread, code: number): void;
}

/** `rehearsing`: the thread runs a rehearsal role (rehearsal.ts); an exit then is not restarted. */
type ThreadState = 'starting' | 'rehearsing' | 'running' | 'stopping' | 'exited' | 'restarting';

/** Restarts of a thread that keeps failing wait longer each time, up to this long (ms). */
const MAX_RESTART_DELAY_MS = 30_000;

/** One role's thread, its control proxy, and its lifecycle. */
export class RoleThread {
  readonly spec: RoleSpec;
  state: ThreadState = 'starting';
  thread!: Thread;
  api!: Comlink.Remote<RoleThreadApi>;
  /** The host's ends of the thread's log and handler-pool channels: held so they cannot be collected. */
  ports: Array<{ close(): void }> = [];
  exited!: Promise<never>;
  exitCode: number | undefined;
  /** Delays before restarting this role (src/backoff.ts, no jitter: one thread, no herd to spread). */
  readonly restarts: Backoff;
  startedAt = 0;
  /** Set when the host asked it to end (stop, remove, kill without restart). */
  wanted = true;
  restartTimer: NodeJS.Timeout | undefined;
  lastInfo: RoleThreadInfo | undefined;

  constructor(spec: RoleSpec, restartDelayMs: number) {
    this.spec = spec;
    this.restarts = new Backoff({
      initialMs: Math.min(restartDelayMs, MAX_RESTART_DELAY_MS),
      maxMs: MAX_RESTART_DELAY_MS,
      jitter: 'none',
    });
  }

  /** Race a call against the thread's exit (Comlink alone would wait forever). */
  call<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.exited]);
  }

  /** Make the thread and start its role; resolves with the role's info once it runs. */
  async launch(host: LaunchContext): Promise<RoleThreadInfo> {
    this.spawn(host);
    return this.start(host);
  }

  /** Start the role in the thread spawn() made (again, after a rehearsal role there has stopped). */
  async start(host: LaunchContext, init?: RoleThreadInit): Promise<RoleThreadInfo> {
    const info = await this.call(
      this.api.start(init ?? { spec: this.spec, settings: host.settings, logLevel: host.logLevel }),
    );
    this.state = 'running';
    this.startedAt = Date.now();
    this.lastInfo = info;
    return info;
  }

  /** Make the thread, with no role in it yet: start() gives it one. */
  spawn(host: LaunchContext): void {
    const { spec } = this;
    // Here, not in the thread: the thread trusts its options (workers/role-thread.ts).
    checkRoleThreadInit(spec, host.settings);
    const { workerData, transferList } = this.#channels(host);
    const thread = host.spawn(
      ENTRY,
      {
        workerData,
        transferList,
        name: `zkfarm ${spec.kind} ${spec.name}`,
        stdout: false,
        stderr: false,
        resourceLimits: host.resourceLimits(spec.kind),
      },
      spec,
    );
    this.thread = thread;
    this.api = Comlink.wrap<RoleThreadApi>(nodeEndpoint(thread as never));
    this.state = 'starting';
    this.exitCode = undefined;
    this.exited = new Promise<never>((_, reject) => {
      thread.once('exit', (code) => {
        this.exitCode = code;
        reject(
          new ZkfarmError(ErrorCodes.ROLE_EXITED, `role ${spec.name} exited (code ${code}) before answering`),
        );
        host.onExit(this, thread, code);
      });
    });
    this.exited.catch(() => {});
    thread.on('error', (err) => {
      host.log.error({ role: spec.name, err }, `role ${spec.name} thread error: ${describeError(err)}`);
    });
  }

  /** The thread's log channel, and its handler-pool channel when it is a worker with handler modules. */
  #channels(host: LaunchContext): { workerData: object; transferList: never[] } {
    const { spec } = this;
    const logChannel = new MessageChannel();
    logChannel.port1.on('message', (line: string) => writeThreadLine(host.log, line));
    logChannel.port1.unref();
    for (const p of this.ports) p.close();
    this.ports = [logChannel.port1];
    const needsPool =
      spec.kind === 'worker' &&
      ((host.settings.handlerModules?.length ?? 0) > 0 || (spec.handlerModules?.length ?? 0) > 0);
    if (!needsPool)
      return { workerData: { log: logChannel.port2 }, transferList: [logChannel.port2 as never] };
    const ch = new MessageChannel();
    servePool(host.pool(), ch.port1);
    ch.port1.unref();
    this.ports.push(ch.port1);
    return {
      workerData: { log: logChannel.port2, pool: ch.port2 },
      transferList: [logChannel.port2 as never, ch.port2 as never],
    };
  }
}
