/**
 * What the leader does with a task it read from /tasks: pure logic, no I/O, unit-tested alone.
 *
 *   reject   data that is not a task (bad JSON, bad shape, bad scheduling data such as a `notBefore`
 *            that is not a time), or a task over TASK_MAX_BYTES: a failed status says why
 *   wait     its `notBefore` is ahead: it waits in the queue, passed over until then
 *   run      it may be assigned now; the first time, its submit time (the /tasks znode's ctime) is
 *            added, so that its result can say how long it took
 */
import { ErrorCodes } from '../errors.js';
import { type Need, needOf } from './assignment-policy.js';
import type { Failure } from './moves.js';
import { encode, parseTask, TASK_MAX_BYTES, type Task } from './protocol.js';

export type Admission =
  | { verdict: 'reject'; failure: Failure }
  | { verdict: 'wait'; until: number; need: Need }
  | { verdict: 'run'; task: Task; data: Buffer; need: Need };

/** Decide for a task read at `now` (`ctime`: its node's creation time). */
export function admit(data: Buffer, ctime: number, now: number): Admission {
  const parsed = parseTask(data);
  if (!parsed.ok) return reject(parsed.error, ctime);
  if (data.length > TASK_MAX_BYTES) {
    return reject(
      `task data is ${data.length} bytes; the farm moves at most ${TASK_MAX_BYTES} bytes per task: ` +
        'put large inputs in a file or store and pass a reference',
      ctime,
    );
  }
  const task = parsed.task;
  const need = needOf(task);
  const notBefore = task._zkfarm?.notBefore;
  if (notBefore !== undefined && notBefore > now) return { verdict: 'wait', until: notBefore, need };
  if (task._zkfarm?.submittedAt !== undefined) return { verdict: 'run', task, data, need };
  task._zkfarm = { attempts: 0, ...task._zkfarm, submittedAt: ctime };
  return { verdict: 'run', task, data: encode(task), need };
}

function reject(error: string, submittedAt: number): Admission {
  return { verdict: 'reject', failure: { error, errorCode: ErrorCodes.INVALID_TASK, submittedAt } };
}
