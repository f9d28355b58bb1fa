/**
 * What the host and its role threads share: the specs a farm starts from, and the control API each role
 * thread exposes over Comlink. Only plain data crosses the thread boundary.
 */
import type { TaskDirs } from '../exec/index.js';
import type { RoleInfo, RoleKind } from '../farm/role.js';
import type { ZkTlsOptions } from '../zk/transport.js';

/** Settings every role of a host shares (from the config file and flags). */
export interface FarmSettings {
  /** ZooKeeper connect string (with optional chroot). */
  connect: string;
  /** @defaultValue 10000 */
  sessionTimeout?: number;
  /** Digest identity `user:password`. */
  auth?: string;
  /** TLS to ZooKeeper (PEM contents, read once by the host and handed to every role thread). */
  tls?: ZkTlsOptions;
  /** Root of the workers' output directories. */
  workdir: string;
  /** Let workers run shell tasks. @defaultValue false */
  allowShell?: boolean;
  /** Modules whose exports become handlers (absolute paths or package names). */
  handlerModules?: string[];
  /** When a task gets its output directory (see `ExecutorOptions.taskDirs`). @defaultValue 'on-demand' */
  taskDirs?: TaskDirs;
  /** Master status retention. */
  retention?: { maxCount?: number; maxAgeMs?: number; minAgeMs?: number; intervalMs?: number };
  /** Workers' output retention (see `ExecutorOptions.outputRetention`). @defaultValue 7 days, 10,000, 10 GiB */
  outputRetention?: { maxAgeMs?: number; maxCount?: number; maxBytes?: number; intervalMs?: number } | false;
  /** Give up starting a role when ZooKeeper cannot be reached within this many ms. */
  connectTimeout?: number;
}

export interface RoleSpec {
  kind: RoleKind;
  name: string;
  /** Workers: tasks at once. @defaultValue 4 */
  capacity?: number;
  /** Workers: extra tasks held, or 'auto' (follows the tasks' durations). @defaultValue 'auto' */
  prefetch?: number | 'auto';
  /** Workers: per-role override of the shared setting. */
  allowShell?: boolean;
  /** Workers: default task timeout (ms). */
  defaultTimeoutMs?: number;
  /** Workers: per-role override of the shared setting. */
  taskDirs?: TaskDirs;
  /** Per-role override. */
  sessionTimeout?: number;
  /** Per-role handler modules, added to the shared ones. */
  handlerModules?: string[];
  /** Workers: the queues served (`name` or `name:weight`). @defaultValue ['default'] */
  queues?: string[];
  /** Workers: `weighted` or `strict`. @defaultValue 'weighted' */
  queueOrder?: 'weighted' | 'strict';
}

export interface FarmSpec extends FarmSettings {
  roles: RoleSpec[];
}

/** A role's info as the host reports it: the role's own, plus what only masters or workers have. */
export interface RoleThreadInfo extends RoleInfo {
  /** Masters: whether this one leads. */
  leader?: boolean;
  leaderName?: string;
  /** Workers: paused by pause() (or draining). */
  paused?: boolean;
  capacity?: number;
}

export interface RoleThreadStats {
  kind: RoleKind;
  /** Workers */
  running?: number;
  queued?: number;
  succeeded?: number;
  failed?: number;
  retried?: number;
  fenced?: number;
  /** Task durations (ms): p50/p95/max over the last 1000. */
  latency?: { p50: number; p95: number; max: number; count: number };
  /** Masters */
  assigned?: number;
  givenBack?: number;
  rejected?: number;
  queuedTasks?: number;
  leaderChanges?: number;
  /** ZooKeeper requests this role sent, on all of its sessions. */
  zkRequests: number;
  /** Memory of the whole process as the thread sees it (RSS is per process). */
  heapUsed: number;
  /** CPU time (ms, user + system) this role's thread has used; NaN where /proc is not available. */
  cpuMs: number;
}

/** The control API of one role thread (exposed with Comlink from workers/role-thread.ts). */
export interface RoleThreadApi {
  start(init: RoleThreadInit): Promise<RoleThreadInfo>;
  info(): RoleThreadInfo;
  stats(): RoleThreadStats;
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(options?: { drain?: boolean; deadlineMs?: number }): Promise<void>;
}

export interface RoleThreadInit {
  spec: RoleSpec;
  settings: FarmSettings;
  logLevel: string;
}

/** A plain-data form of an error that keeps its `code` across the thread boundary. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}
