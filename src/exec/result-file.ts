/**
 * What a task leaves in its directory: `result.json`, the outcome with the task id, worker and attempt,
 * and the handler's result. A task without a directory leaves none, unless its result is too large for
 * a status: then the directory is made, so the result is kept somewhere.
 */
import { describeError, ErrorCodes } from '../errors.js';
import { failed, TaskFailure, toFailure } from './failure.js';
import type { TaskDir } from './task-dir.js';
import type { ExecOutcome, ExecRequest } from './types.js';
import { writeFileNoFollow } from './workdir.js';

/** What one execution produced, before `result.json` is written. */
export interface Executed {
  outcome: ExecOutcome;
  /** The handler's result as JSON, already checked. */
  resultJson?: string;
}

/**
 * Results above this many bytes of JSON are always written to result.json, even when the task has no
 * directory otherwise: the worker leaves a result that does not fit a status out of it (a status is at
 * most 256 KiB), and result.json is then where it is.
 */
export const LARGE_RESULT_BYTES = 128 * 1024;

function isLarge(json: string | undefined): boolean {
  // A UTF-8 character is at most 3 bytes per UTF-16 unit: short strings skip the byte count.
  return (
    json !== undefined && json.length * 3 > LARGE_RESULT_BYTES && Buffer.byteLength(json) > LARGE_RESULT_BYTES
  );
}

/**
 * Write result.json into the task's directory if it has one, and return the outcome (a write failure
 * turns into a failed outcome). Synchronous on purpose: an async fs call hops to libuv's thread pool
 * and back (two thread wake-ups, shared by every role thread of a host), which on a busy machine costs
 * far more than the microseconds these calls block this role's thread.
 */
export function recordResult(
  req: ExecRequest,
  dir: TaskDir,
  executed: Executed,
  fileMode: number,
): ExecOutcome {
  const outcome = executed.outcome;
  outcome.finishedAt = Date.now();
  if (!dir.made) {
    // A result too big for a status is kept in result.json: it must have a directory.
    if (!isLarge(executed.resultJson)) return outcome;
    try {
      dir.make();
    } catch (err) {
      return failed(toFailure(err), outcome.startedAt);
    }
  }
  outcome.outputDir = dir.path;
  // One JSON.stringify of the small fixed part; the result's JSON (already made while checking it)
  // is appended rather than serialised a second time.
  const head = JSON.stringify({
    taskId: req.taskId,
    workerName: req.workerName,
    attempt: req.attempt,
    state: outcome.state,
    exitCode: outcome.exitCode,
    error: outcome.error,
    errorCode: outcome.errorCode,
    retryable: outcome.retryable,
    startedAt: outcome.startedAt,
    finishedAt: outcome.finishedAt,
  });
  const json =
    executed.resultJson === undefined ? head : `${head.slice(0, -1)},"result":${executed.resultJson}}`;
  try {
    // No fsync: result.json is a record for people and tools; the durable result is the status
    // znode the worker writes next. Syncing here would cap a worker at the disk's flush rate.
    // Not through a link: the directory must be ours (a pool thread may have made it), the file no link.
    dir.check();
    writeFileNoFollow(`${dir.path}/result.json`, `${json}\n`, fileMode);
  } catch (err) {
    return failed(
      new TaskFailure(
        ErrorCodes.WORKDIR_UNWRITABLE,
        `cannot write ${dir.path}/result.json: ${describeError(err)}`,
        {
          retryable: true,
        },
      ),
      outcome.startedAt,
      dir.path,
    );
  }
  return outcome;
}
