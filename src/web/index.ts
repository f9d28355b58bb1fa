/** The web dashboard: a live page, Prometheus metrics, a health endpoint and controls for a farm. */

export type { RoleFaults } from './controls.js';
export type { Point } from './history.js';
export { WebErrorCodes } from './http.js';
export { type Dashboard, type DashboardOptions, startDashboard } from './server.js';
export type { MasterCard, RoleCard, Snapshot, WorkerCard } from './snapshot.js';
export type { OutputFile, TaskDetails } from './task-details.js';
