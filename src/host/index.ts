/** The host runtime: role threads, Comlink control, one log writer. */
export { Host, type HostOptions, ROLE_STOP_GRACE_MS } from './host.js';
export { createLogger, flushLogger, LOG_LEVELS, type LoggerOptions } from './logging.js';
export type * from './types.js';
