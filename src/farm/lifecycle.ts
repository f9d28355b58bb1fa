/**
 * What a worker does around each run of a task beyond running it: fill in a keyed task's id
 * (task-keys.ts), publish its progress (progress.ts) and trace it (tracing.ts). The worker calls
 * `run` to run a task through these, and `ended` when the run's completion was written, fenced or
 * dropped. Kept apart from worker.ts so that the worker's own file stays about moving tasks.
 *
 * Znodes: /keys/<xx>/<hash> (read, and set once when its id is missing), /progress/<task-id> (ephemeral).
 * SUSPENDED / LOST: as progress.ts and task-keys.ts say; a failure of either never touches the run.
 */
import { context } from '@opentelemetry/api';
import type { ExecOutcome, ExecRequest } from '../exec/index.js';
import type { Logger } from '../zk/connect-options.js';
import type { Session } from '../zk/session.js';
import { ProgressPublisher } from './progress.js';
import type { Task } from './protocol.js';
import { fillKeyId } from './task-keys.js';
import { TaskTraces } from './tracing.js';

export type RunEnd = 'completed' | 'requeued' | 'fenced' | 'dropped' | 'abandoned';

export class TaskLifecycle {
  readonly #session: () => Session | undefined;
  readonly #progress: ProgressPublisher;
  readonly #traces: TaskTraces;

  constructor(worker: string, session: () => Session | undefined, log: Logger) {
    this.#session = session;
    this.#progress = new ProgressPublisher(worker, session, log);
    this.#traces = new TaskTraces(worker);
  }

  /**
   * Run `req` (task `task`) with `exec`: its key filled in, its progress published, its spans made. `req`
   * is the caller's own object and gets `onProgress` and `traceparent` (no copy: this is per task). An
   * outcome `exec` returns as is (a task over at once) comes back as is.
   */
  run(
    task: Task,
    req: ExecRequest,
    exec: (req: ExecRequest) => ExecOutcome | Promise<ExecOutcome>,
  ): ExecOutcome | Promise<ExecOutcome> {
    const id = req.taskId;
    // A keyed task whose submitter never learnt its id (an answer lost with the connection): fill it in.
    const session = task.key !== undefined ? this.#session() : undefined;
    if (session) void fillKeyId(session.client, task, id).catch(() => {});
    let over = false;
    // Reports after the run ended (a handler's stray timer) are dropped: its node is on its way out.
    req.onProgress = (p) => {
      if (!over) this.#progress.report(id, req.attempt, p);
    };
    const ran = (outcome: ExecOutcome): ExecOutcome => {
      over = true;
      this.#traces.ran(id, outcome);
      return outcome;
    };
    const traced = this.#traces.started(id, task, req.attempt);
    let running: ExecOutcome | Promise<ExecOutcome>;
    if (traced) {
      req.traceparent = traced.carrier.traceparent;
      running = context.with(traced.context, exec, undefined, req);
    } else running = exec(req);
    if (!(running instanceof Promise)) return ran(running);
    return running.then(ran, (err: unknown) => {
      over = true;
      throw err;
    });
  }

  /** The run's completion was written (or will never be): its progress node and its spans end. */
  ended(id: string, how: RunEnd): void {
    this.#progress.end(id);
    this.#traces.ended(id, how);
  }
}
