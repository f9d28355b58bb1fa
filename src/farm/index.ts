/** The farm protocol: masters, workers, submitters and the znodes they share. */
export * from './assignment-policy.js';
export type { LeaderOptions, LeaderStats } from './leader.js';
export * from './master.js';
export * from './protocol.js';
export * from './retention.js';
export * from './role.js';
export * from './submitter.js';
export * from './worker.js';
