/**
 * The ZooKeeper layer: a promise client with typed errors and request timeouts, a session supervisor that
 * re-runs an action on every new session, watches that report diffs, and a launcher for real servers.
 */
export * from './client.js';
export { type ConnectionOptions, EVENT, ZkConnection } from './connection.js';
export * from './errors.js';
export * from './fault-proxy.js';
export { PERMS } from './jute.js';
export * from './server.js';
export * from './session.js';
export {
  type PreparedTls,
  prepareTls,
  readTlsFiles,
  type ZkTlsFiles,
  type ZkTlsOptions,
} from './transport.js';
export * from './watchers.js';
