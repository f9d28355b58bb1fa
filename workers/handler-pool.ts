/**
 * Thread entry of the handler pool (Piscina loads this file in each pool thread).
 *
 * Imports handler modules by specifier (once per thread), and calls one exported function with
 * `(input, context)`. Every outcome, failures included, is returned as plain data (see
 * src/exec/pool-protocol.ts); only a dying thread or an aborted run rejects on the host side.
 *
 * The context's signal never aborts: on timeout or abort the host terminates this whole thread, which
 * stops even a handler that blocks its event loop.
 */
import { mkdirSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { context as otelContext } from '@opentelemetry/api';
import { describeError, ErrorCodes } from '../src/errors.js';
import { toJson } from '../src/exec/json.js';
import type { PoolListReply, PoolRequest, PoolRunReply } from '../src/exec/pool-protocol.js';
import { readProgress } from '../src/exec/progress.js';
import { contextFrom, importThreadModules } from '../src/exec/trace-context.js';
import type { Handler, HandlerContext } from '../src/exec/types.js';

const NEVER_ABORTED = new AbortController().signal;
// Not a top-level await: Piscina may load this file through require(), which refuses one.
const threadModules = importThreadModules();
const modules = new Map<string, Promise<Map<string, Handler>>>();

/** Handlers of a module: its named function exports, and the functions of a default-export object. */
function collectHandlers(mod: Record<string, unknown>): Map<string, Handler> {
  const handlers = new Map<string, Handler>();
  const fallback = mod.default;
  if (typeof fallback === 'object' && fallback !== null) {
    for (const [name, value] of Object.entries(fallback)) {
      if (typeof value === 'function') handlers.set(name, value as Handler);
    }
  }
  for (const [name, value] of Object.entries(mod)) {
    if (name !== 'default' && typeof value === 'function') handlers.set(name, value as Handler);
  }
  return handlers;
}

function load(specifier: string): Promise<Map<string, Handler>> {
  let loaded = modules.get(specifier);
  if (loaded === undefined) {
    loaded = import(specifier).then(collectHandlers);
    modules.set(specifier, loaded);
    // A failed import is not cached: the file may be fixed before the next task.
    loaded.catch(() => modules.delete(specifier));
  }
  return loaded;
}

function failure(code: string, message: string, retryable: boolean) {
  return { ok: false as const, code, message, retryable };
}

export default async function handlerPoolTask(request: PoolRequest): Promise<PoolListReply | PoolRunReply> {
  await threadModules;
  let handlers: Map<string, Handler>;
  try {
    handlers = await load(request.module);
  } catch (err) {
    return failure(
      ErrorCodes.CONFIG_INVALID,
      `handler module ${request.module} could not be loaded: ${describeError(err)}`,
      false,
    );
  }
  if (request.op === 'list') return { ok: true, names: [...handlers.keys()] };

  const handler = handlers.get(request.handler);
  if (handler === undefined) {
    return failure(
      ErrorCodes.UNKNOWN_HANDLER,
      `handler module ${request.module} exports no function named ${JSON.stringify(request.handler)}`,
      false,
    );
  }
  let dirError: Error | undefined;
  let dirMade = false;
  const context: HandlerContext = {
    taskId: request.taskId,
    attempt: request.attempt,
    // Made on first use: a handler that writes no files costs the file system nothing.
    get outputDir() {
      if (!dirMade) {
        try {
          mkdirSync(request.outputDir, { recursive: true, mode: request.dirMode ?? 0o700 });
          dirMade = true;
        } catch (err) {
          dirError = new Error(
            `cannot make the task's output directory ${request.outputDir}: ${describeError(err)}`,
          );
          throw dirError;
        }
      }
      return request.outputDir;
    },
    signal: NEVER_ABORTED,
    traceparent: request.traceparent,
    progress(report, message) {
      const progress = readProgress(report, message);
      if (progress && request.callId !== undefined)
        parentPort?.postMessage({ zkfarmProgress: { callId: request.callId, progress } });
    },
  };
  let result: unknown;
  try {
    // The handler's own spans nest under the farm's run span (when this thread has an SDK).
    const parent = contextFrom({ traceparent: request.traceparent });
    result = await otelContext.with(parent, () => handler(request.input, context));
  } catch (err) {
    if (dirError !== undefined) return failure(ErrorCodes.WORKDIR_UNWRITABLE, dirError.message, true);
    const retryable = (err as { retryable?: unknown } | null)?.retryable !== false;
    return failure(
      ErrorCodes.HANDLER_FAILED,
      `handler ${JSON.stringify(request.handler)} failed: ${describeError(err)}`,
      retryable,
    );
  }
  try {
    return { ok: true, json: toJson(result) };
  } catch (err) {
    return failure(
      ErrorCodes.RESULT_NOT_SERIALIZABLE,
      `handler ${JSON.stringify(request.handler)} returned a result that cannot be stored as JSON (${describeError(err)}): ` +
        'return plain data (objects, arrays, strings, finite numbers, booleans, null)',
      false,
    );
  }
}
