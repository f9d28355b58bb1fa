/**
 * The execution log of a test farm: every run a worker started, read from its log ('task started' at
 * debug level: the task, its attempt, the assignment it ran (the assignment node's creation zxid), the
 * session that assignment was read on, and the session the run started on).
 *
 * `checkRuns` holds the farm to "at most one run per assignment, and only on the session that holds it":
 * - the same assignment started twice (a worker that read it twice, a retry loop that ran it again);
 * - a run started on a later session than the one its assignment was read on: a task the worker held
 *   while its session was lost, which the master had already given back, ran from its old assignment.
 * With the statuses (invariants.ts: exactly one per task), that is "at most one run per assignment,
 * exactly one result". Runs on other workers than the one that recorded the result are also handed to
 * the re-execution check (each must be traced to a worker that was disturbed).
 *
 * Feed it pino lines from a host (`record`), or give in-process roles its `logger(name)`.
 */
import type { Logger } from '../../src/zk/index.js';

export interface Run {
  task: string;
  worker: string;
  attempt: number;
  /** The assignment node's creation zxid. */
  assignment: string;
  /** The session the assignment was read on. */
  heldOn: string;
  /** The session the run started on (undefined: none was live). */
  session: string | undefined;
}

export class RunLog {
  readonly runs: Run[] = [];

  /** A parsed log line of any role; only 'task started' lines count. */
  record(line: Record<string, unknown>, worker = String(line['role'] ?? line['worker'] ?? '?')): void {
    if (line['msg'] !== 'task started') return;
    this.runs.push({
      task: String(line['task']),
      worker,
      attempt: Number(line['attempt']),
      assignment: String(line['assignment']),
      heldOn: String(line['heldOn']),
      session: line['session'] === undefined ? undefined : String(line['session']),
    });
  }

  /** A logger for an in-process worker: its debug lines go to the log, the rest to `next`. */
  logger(worker: string, next?: Logger): Logger {
    return {
      debug: (obj, msg) => {
        this.record({ ...obj, msg }, worker);
        next?.debug(obj, msg);
      },
      info: (obj, msg) => next?.info(obj, msg),
      warn: (obj, msg) => next?.warn(obj, msg),
      error: (obj, msg) => next?.error(obj, msg),
    };
  }

  /** Task id → the workers that started it. */
  workersOf(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const r of this.runs) out.set(r.task, [...(out.get(r.task) ?? []), r.worker]);
    return out;
  }
}

/** Violations of "at most one run per assignment, on the session that holds it". */
export function checkRuns(runs: readonly Run[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, Run>();
  for (const r of runs) {
    const key = `${r.task}@${r.assignment}`;
    const before = seen.get(key);
    if (before)
      problems.push(
        `${r.task}: its assignment ${r.assignment} ran twice (on ${before.worker} and ${r.worker})`,
      );
    seen.set(key, r);
    if (r.session !== r.heldOn)
      problems.push(
        `${r.task}: started on ${r.worker}'s session ${r.session ?? '(none)'} from an assignment read on its session ${r.heldOn}`,
      );
  }
  return problems;
}
