/**
 * The execution layer: how one task runs (shell commands, inline handlers, handler modules on a
 * Piscina pool), what it leaves on disk, and the outcome it reports. Knows nothing of ZooKeeper.
 */
export { BUILTIN_HANDLERS } from './builtins.js';
export {
  EXECUTOR_DEFAULTS,
  Executor,
  type ExecutorOptions,
  type ResolvedExecutorOptions,
  TASK_DIRS,
  type TaskDirs,
} from './executor.js';
export { TaskFailure } from './failure.js';
export { resolveHandlerModule } from './handler-module.js';
export {
  createHandlerPool,
  HANDLER_POOL_DEFAULTS,
  type HandlerCall,
  type HandlerPool,
  type HandlerPoolOptions,
  type HandlerRunOptions,
} from './handler-pool.js';
export { NotSerializableError, toJson } from './json.js';
export { assertSafeName, invalidName, isSafeName } from './names.js';
export { OUTPUT_RETENTION_DEFAULTS, type OutputRetention, type SweepReport } from './output-retention.js';
export {
  type ProgressReport,
  parseProgressLine,
  readProgress,
  SHELL_PROGRESS_PREFIX,
  type TaskProgress,
} from './progress.js';
export type { ExecOutcome, ExecRequest, Handler, HandlerContext, TaskSpec } from './types.js';
