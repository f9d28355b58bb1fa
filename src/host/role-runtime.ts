/**
 * Inside a role thread: build the master or worker from its spec, and answer the host's control calls.
 * (The thread's entry file, workers/role-thread.ts, only wires this to the thread's ports.)
 */
import type { MessagePort } from 'node:worker_threads';
import pino from 'pino';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { Master } from '../farm/master.js';
import type { Role } from '../farm/role.js';
import { Worker } from '../farm/worker.js';
import { threadCpuMs } from './proc-stat.js';
import { remotePool } from './shared-pool.js';
import type { RoleThreadApi, RoleThreadInfo, RoleThreadInit, RoleThreadStats } from './types.js';

export interface RoleThreadPorts {
  /** Log lines go to the host's single writer through this port. */
  log: MessagePort;
  /** The host's shared handler pool, when it has one. */
  pool?: MessagePort;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * This thread's role, once started. A thread runs one role at a time: a role may start after the
 * previous one has stopped (the host's rehearsal, rehearsal.ts, runs one before the real one), so that
 * the code both run is already compiled when the real role meets its first task.
 */
let role: Master | Worker | undefined;
/** The current role has been asked to stop. */
let stopped = false;

/** The role this thread runs, for code loaded into the thread beside it (zkfarm/testing's fault controls). */
export function threadRole(): Role | undefined {
  return role;
}

export function createRoleThreadApi(ports: RoleThreadPorts): RoleThreadApi {
  const need = (): Master | Worker => {
    if (!role) throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, 'the role is not started yet');
    return role;
  };
  const api: RoleThreadApi = {
    async start(init: RoleThreadInit) {
      if (role && !stopped)
        throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, `role ${role.name} is already started`);
      stopped = false;
      const { spec, settings } = init;
      // One line per write, posted to the host; threads never write fd 1 themselves.
      const logger = pino(
        { level: init.logLevel, base: { role: spec.name, kind: spec.kind } },
        { write: (line: string) => ports.log.postMessage(line) },
      );
      const common = {
        name: spec.name,
        connect: settings.connect,
        sessionTimeout: spec.sessionTimeout ?? settings.sessionTimeout,
        auth: settings.auth,
        tls: settings.tls,
        connectTimeout: settings.connectTimeout,
        logger,
      };
      if (spec.kind === 'master') {
        role = new Master({ ...common, retention: settings.retention });
      } else {
        role = new Worker({
          ...common,
          capacity: spec.capacity,
          prefetch: spec.prefetch,
          queues: spec.queues,
          queueOrder: spec.queueOrder,
          workdir: settings.workdir,
          allowShell: spec.allowShell ?? settings.allowShell,
          handlerModules: [...(settings.handlerModules ?? []), ...(spec.handlerModules ?? [])],
          pool: ports.pool ? remotePool(ports.pool) : undefined,
          defaultTimeoutMs: spec.defaultTimeoutMs,
          taskDirs: spec.taskDirs ?? settings.taskDirs,
          outputRetention: settings.outputRetention,
        });
      }
      const started = role;
      (started as Role).on('failed', (err: Error) => {
        if (started !== role) return; // a stopped rehearsal role's late failure is not this thread's
        logger.fatal({ err }, `role ${spec.name} failed: ${err.message}`);
        // A role that cannot go on ends its thread; the host decides whether to restart it.
        setTimeout(() => process.exit(3), 50);
      });
      await role.start();
      return api.info();
    },
    info(): RoleThreadInfo {
      const r = need();
      const base = r.info();
      if (r instanceof Master) {
        const i = r.info();
        return { ...base, leader: i.leader, leaderName: i.leaderName };
      }
      return { ...base, paused: r.paused, capacity: r.capacity };
    },
    stats(): RoleThreadStats {
      const r = need();
      const common = {
        zkRequests: r.sessionSupervisor?.requests ?? 0,
        heapUsed: process.memoryUsage().heapUsed,
        cpuMs: threadCpuMs(),
      };
      if (r instanceof Master) {
        const s = r.stats();
        return {
          kind: 'master',
          assigned: s.assigned,
          givenBack: s.givenBack,
          rejected: s.rejected,
          queuedTasks: s.queued,
          leaderChanges: s.leaderChanges,
          ...common,
        };
      }
      const s = r.stats();
      const sorted = [...s.durations].sort((a, b) => a - b);
      return {
        kind: 'worker',
        running: s.running,
        queued: s.queued,
        succeeded: s.succeeded,
        failed: s.failed,
        retried: s.retried,
        fenced: s.fenced,
        latency: {
          p50: percentile(sorted, 50),
          p95: percentile(sorted, 95),
          max: sorted.at(-1) ?? 0,
          count: sorted.length,
        },
        ...common,
      };
    },
    async pause() {
      const r = need();
      if (!(r instanceof Worker))
        throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, `${r.name} is a master: only workers pause`);
      await r.pause();
    },
    async resume() {
      const r = need();
      if (!(r instanceof Worker))
        throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, `${r.name} is a master: only workers pause`);
      await r.resume();
    },
    async stop(options) {
      stopped = true;
      await role?.stop(options);
    },
  };
  return api;
}
