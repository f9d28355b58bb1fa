/**
 * The service instances the leader places on a worker (docs/services.md): one ServiceRunner per
 * session (services/runner.ts), each started only once the previous session's runner has stopped
 * everything it ran.
 *
 * Znodes: none of its own; the runner reads /service-placements/<worker> and holds each instance's
 * fence (services/runner.ts).
 *
 * SUSPENDED: the runner's own watchdog stops the instances when no server has answered for too long
 * (services/runner.ts). LOST: the next session's runner starts after this one's has stopped; a setup
 * retried on the same session keeps its runner.
 */
import { resolve } from 'node:path';
import { describeError } from '../errors.js';
import type { Executor } from '../exec/index.js';
import { type RunnerOptions, ServiceRunner } from '../services/runner.js';
import type { Session } from '../zk/session.js';

/**
 * A runner's options but its workdir (resolved when each runner starts), `after` (the previous runner)
 * and `runHandler` (the worker's executor runs a service's handler).
 */
export interface WorkerServicesOptions extends Omit<RunnerOptions, 'workdir' | 'after' | 'runHandler'> {
  /** The worker's workdir option, as given. @defaultValue zkfarm-work */
  workdir: string | undefined;
  executor: Executor;
}

export class WorkerServices {
  readonly #options: WorkerServicesOptions;
  /** The runner of the latest session. */
  #runner: ServiceRunner | undefined;

  constructor(options: WorkerServicesOptions) {
    this.#options = options;
  }

  /** Run the services placed here for `session`, after the previous session's runner has stopped. */
  start(session: Session): void {
    // A setup retried on the same session keeps its runner.
    if (this.#runner?.session === session) return;
    const previous = this.#runner;
    const { workdir, executor, ...options } = this.#options;
    const runner = new ServiceRunner(session, {
      ...options,
      workdir: resolve(workdir ?? 'zkfarm-work'),
      runHandler: (taskId, spec, signal) =>
        executor
          .run({ taskId, workerName: options.worker, spec, attempt: 1, signal })
          .then((o) => ({ error: o.state === 'failed' ? (o.error ?? 'failed') : undefined })),
      after: previous?.stop(),
    });
    this.#runner = runner;
    runner.start().catch((err) => {
      if (session.alive) options.log.warn({ err }, `service runner did not start: ${describeError(err)}`);
    });
  }

  async stop(): Promise<void> {
    await this.#runner?.stop();
  }
}
