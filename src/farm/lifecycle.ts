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
import type { Logger, Session } from '../zk/index.js';
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

  /** Run `req` (task `task`) with `exec`: its key filled in, its progress published, its spans made. */
  async run(
    task: Task,
    req: ExecRequest,
    exec: (req: ExecRequest) => Promise<ExecOutcome>,
  ): Promise<ExecOutcome> {
    const id = req.taskId;
    // A keyed task whose submitter never learnt its id (an answer lost with the connection): fill it in.
    const session = this.#session();
    if (task.key !== undefined && session) void fillKeyId(session.client, task, id).catch(() => {});
    let over = false;
    const full: ExecRequest = {
      ...req,
      // Reports after the run ended (a handler's stray timer) are dropped: its node is on its way out.
      onProgress: (p) => {
        if (!over) this.#progress.report(id, req.attempt, p);
      },
    };
    const traced = this.#traces.started(id, task, req.attempt);
    try {
      const outcome = traced
        ? await context.with(traced.context, () => exec({ ...full, traceparent: traced.carrier.traceparent }))
        : await exec(full);
      this.#traces.ran(id, outcome);
      return outcome;
    } finally {
      over = true;
    }
  }

  /** The run's completion was written (or will never be): its progress node and its spans end. */
  ended(id: string, how: RunEnd): void {
    this.#progress.end(id);
    this.#traces.ended(id, how);
  }
}
