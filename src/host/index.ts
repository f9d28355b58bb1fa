/** The host runtime: role threads, Comlink control, one log writer, the config file. */
export { type CliFlags, type ResolveContext, resolveFarmSpec } from './config.js';
export { type ConfigFile, loadConfigFile } from './config-file.js';
export { Host, type HostOptions, ROLE_STOP_GRACE_MS } from './host.js';
export { createLogger, flushLogger, type LoggerOptions } from './logging.js';
export { LOG_LEVELS } from './options.js';
export { MASTER_RESOURCE_LIMITS, ROLE_RESOURCE_LIMITS, type SpawnRoleThread } from './role-handle.js';
export type { FarmSettings, FarmSpec, RoleSpec, RoleThreadInfo, RoleThreadStats } from './types.js';
