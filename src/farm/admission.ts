/**
 * What the leader does with a task it read from /tasks: pure logic, no I/O, unit-tested alone.
 *
 *   reject   data that is not a task (bad JSON, bad shape, bad scheduling data such as a `notBefore`
 *            that is not a time, a `queue` that is not a queue name, a `priority` outside 0-9), or a
 *            task over TASK_MAX_BYTES: a failed status says why
 *   reject   also a `runAt` more than 366 days after the task's submission (due-time.ts)
 *   wait     its due time (`runAt`, `delayMs` or `notBefore`: due-time.ts) is ahead: it waits, passed
 *            over until then (in the queue, or in the due-time area when it is far ahead: delayed-area.ts)
 *   run      it may be assigned now; the first time, its submit time (the /tasks znode's ctime) is
 *            added, so that its result can say how long it took
 */
import { ErrorCodes } from '../errors.js';
import { type Need, needOf } from './assignment-policy.js';
import { dueOf, tooFarAhead } from './due-time.js';
import type { Failure } from './moves.js';
import { encode, parseTask, queueOf, TASK_MAX_BYTES, type Task } from './protocol.js';

export type Admission =
  | { verdict: 'reject'; failure: Failure }
  | { verdict: 'wait'; until: number; need: Need; queue: string; task: Task }
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
  const far = tooFarAhead(task, ctime);
  if (far !== undefined) return reject(far, ctime);
  const due = dueOf(task, ctime);
  if (due !== undefined && due > now)
    return { verdict: 'wait', until: due, need, queue: queueOf(task), task };
  if (task._zkfarm?.submittedAt !== undefined) return { verdict: 'run', task, data, need };
  task._zkfarm = { attempts: 0, ...task._zkfarm, submittedAt: ctime };
  return { verdict: 'run', task, data: encode(task), need };
}

function reject(error: string, submittedAt: number): Admission {
  return { verdict: 'reject', failure: { error, errorCode: ErrorCodes.INVALID_TASK, submittedAt } };
}
