/**
 * The farm: masters, workers, submitters, and the public layout of the znodes they share (docs/protocol.md).
 * A deliberate list: what is not here is internal (see docs/library.md).
 */

export type { CancelOptions, CancelOutcome, CancelResult } from './cancel-client.js';
export type { FailedFilter, FailedResult } from './dead-letters.js';
export {
  type EventFilter,
  EventStream,
  type EventStreamOptions,
  watchEvents,
} from './event-stream.js';
export type { LeaderOptions, LeaderStats } from './leader.js';
export { Master, type MasterOptions, type MasterRoleInfo } from './master.js';
export { type ProgressRecord, progressPath } from './progress.js';
export {
  checkTask,
  isTaskId,
  type MasterInfo,
  PATHS,
  parseStatus,
  type RetryPolicy,
  statusBucket,
  statusPath,
  TASK_PREFIX,
  type Task,
  type TaskMeta,
  type TaskStatus,
  taskPath,
  type WorkerInfo,
} from './protocol.js';
export { QueueAdmin, type QueueOverview } from './queue-admin.js';
export type { BlockedNeed, QueueSummary, QueueWait } from './queue-view.js';
export { DEFAULT_QUEUE, type QueueControls, type QueueOrder, type ServedQueue } from './queues.js';
export type { RetentionOptions } from './retention.js';
export {
  Role,
  type RoleInfo,
  type RoleKind,
  type RoleOptions,
  type RoleState,
  type StopOptions,
} from './role.js';
export { ScheduleAdmin, type ScheduleInfo } from './schedules/admin.js';
export type { CatchUp, ScheduleRecord, ScheduleSpec } from './schedules/model.js';
export type {
  StreamProgress,
  StreamResult,
  SubmitStreamError,
  SubmitStreamOptions,
} from './submit-stream.js';
export { type SubmitManyError, Submitter, type SubmitterOptions } from './submitter.js';
export { formatEvent, type TaskEvent, type TaskEventType } from './task-events.js';
export { type KeyedOutcome, keyPath } from './task-keys.js';
export { Worker, type WorkerOptions, type WorkerStats } from './worker.js';
