import type { TaskProgress } from './progress.js';

/**
 * The only shapes that cross between the handler pool (src/exec/handler-pool.ts) and its threads
 * (workers/handler-pool.ts). Replies are plain data: Error objects lose custom fields (`code`) when
 * cloned between threads, so a failure travels as `{ ok: false, code, message }`.
 */

/** Ask a thread for the handler names a module exports. */
export interface PoolListRequest {
  op: 'list';
  /** A file URL or a specifier the thread can import. */
  module: string;
}

/** Run one handler of a module. */
export interface PoolRunRequest {
  op: 'run';
  module: string;
  handler: string;
  input: unknown;
  taskId: string;
  attempt: number;
  /** Made on the handler's first read of `context.outputDir`, with `dirMode`. */
  outputDir: string;
  dirMode?: number;
  /** Names the call in its progress messages (PoolProgressMessage); absent: nobody listens. */
  callId?: number;
  /** The run span's W3C context (exec/trace-context.ts). */
  traceparent?: string;
}

/** A progress report from a pool thread, posted on its parentPort (Piscina re-emits it as 'message'). */
export interface PoolProgressMessage {
  zkfarmProgress: { callId: number; progress: TaskProgress };
}

export function isPoolProgress(m: unknown): m is PoolProgressMessage {
  return typeof m === 'object' && m !== null && 'zkfarmProgress' in m;
}

export type PoolRequest = PoolListRequest | PoolRunRequest;

export interface PoolFailure {
  ok: false;
  /** A `ZKFARM_` code: CONFIG_INVALID, UNKNOWN_HANDLER, HANDLER_FAILED, RESULT_NOT_SERIALIZABLE. */
  code: string;
  message: string;
  retryable: boolean;
}

export type PoolListReply = { ok: true; names: string[] } | PoolFailure;

/**
 * `json` is the result already turned into JSON in the thread: that both proves it is storable and
 * avoids a structured clone of values (BigInt, Map) that JSON would refuse or mangle later.
 */
export type PoolRunReply = { ok: true; json: string } | PoolFailure;
