/**
 * zkfarm: a task farm on Apache ZooKeeper.
 * The farm (roles, submitter, protocol), the host runtime, and the errors; the ZooKeeper layer is
 * also available alone as `zkfarm/zk`.
 */
export * from './errors.js';
export * from './farm/index.js';
export * from './host/index.js';
