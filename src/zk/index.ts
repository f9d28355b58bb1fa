/**
 * The ZooKeeper layer: a promise client with typed errors and request timeouts, a session supervisor that
 * re-runs an action on every new session, watches that report diffs, and a launcher for real servers.
 */
export * from './client.js';
export { type ConnectionOptions, EVENT, ZkConnection } from './connection.js';
export * from './errors.js';
export { PERMS } from './jute.js';
export * from './server.js';
export * from './session.js';
export * from './watchers.js';
