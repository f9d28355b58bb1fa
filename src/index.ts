/**
 * zkfarm: a task farm on Apache ZooKeeper. The farm (roles, submitter, the public znode layout), the host
 * runtime and the errors; the ZooKeeper layer alone is `zkfarm/zk`, the dashboard `zkfarm/web`, and the
 * machinery that hurts a farm on purpose (tests, chaos runs) `zkfarm/testing`.
 *
 * A deliberate list: what is not exported here is internal and may change (docs/library.md lists it all).
 */
export { describeError, type ErrorCode, ErrorCodes, hasCode, ZkfarmError } from './errors.js';
export type { Handler, HandlerContext, TaskDirs } from './exec/index.js';
export {
  checkTask,
  isTaskId,
  type LeaderOptions,
  type LeaderStats,
  Master,
  type MasterInfo,
  type MasterOptions,
  type MasterRoleInfo,
  PATHS,
  parseStatus,
  type RetentionOptions,
  Role,
  type RoleInfo,
  type RoleKind,
  type RoleOptions,
  type RoleState,
  type StopOptions,
  type StreamProgress,
  type StreamResult,
  type SubmitManyError,
  type SubmitStreamError,
  type SubmitStreamOptions,
  Submitter,
  type SubmitterOptions,
  statusBucket,
  statusPath,
  TASK_PREFIX,
  type Task,
  type TaskMeta,
  type TaskStatus,
  taskPath,
  Worker,
  type WorkerInfo,
  type WorkerOptions,
  type WorkerStats,
} from './farm/index.js';
export {
  type CliFlags,
  type ConfigFile,
  createLogger,
  type FarmSettings,
  type FarmSpec,
  flushLogger,
  Host,
  type HostOptions,
  LOG_LEVELS,
  type LoggerOptions,
  loadConfigFile,
  type ResolveContext,
  ROLE_STOP_GRACE_MS,
  type RoleSpec,
  type RoleThreadInfo,
  type RoleThreadStats,
  resolveFarmSpec,
  type SpawnRoleThread,
} from './host/index.js';
