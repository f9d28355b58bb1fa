/**
 * zkfarm: a task farm on Apache ZooKeeper. The farm (roles, submitter, the public znode layout), the host
 * runtime and the errors; the ZooKeeper layer alone is `zkfarm/zk`, the dashboard `zkfarm/web`, and the
 * machinery that hurts a farm on purpose (tests, chaos runs) `zkfarm/testing`.
 *
 * A deliberate list: what is not exported here is internal and may change (docs/library.md lists it all).
 */
export { describeError, type ErrorCode, ErrorCodes, hasCode, ZkfarmError } from './errors.js';
export type { Handler, HandlerContext, ProgressReport, TaskDirs, TaskProgress } from './exec/index.js';
export * from './farm/index.js';
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
  MASTER_RESOURCE_LIMITS,
  type ResolveContext,
  ROLE_RESOURCE_LIMITS,
  ROLE_STOP_GRACE_MS,
  type RoleSpec,
  type RoleThreadInfo,
  type RoleThreadStats,
  resolveFarmSpec,
  type SpawnRoleThread,
} from './host/index.js';
export {
  changeService,
  createService,
  type Endpoint,
  type HealthCheck,
  type InstanceState,
  listServices,
  parseServiceSpec,
  type RestartPolicy,
  type RunState,
  removeService,
  restartService,
  SERVICE_PATHS,
  type ServiceRecord,
  type ServiceSpec,
  type ServiceSpecInput,
  type ServiceState,
  type ServiceStatus,
  scaleService,
  serviceEndpoints,
  serviceSpecSchema,
  serviceState,
  type UnplaceableCode,
  type Unplaced,
  updateService,
} from './services/index.js';
