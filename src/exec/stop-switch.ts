/**
 * How a running task is stopped: its reasons to stop (the caller's signal, its timeout, the executor's
 * close()) gathered in one switch, and a handler's promise abandoned the moment the switch is thrown.
 */

/**
 * A task's reasons to stop (the caller's signal, its timeout, the executor's close()), made into an
 * AbortSignal only when something asks for one: a shell command, a pool call, an async handler, a
 * handler that reads `context.signal`. A synchronous handler (noop, echo) cannot be interrupted, so for
 * it no AbortController and no listener is made at all: with two per task they were about a tenth of
 * a worker thread's time on millisecond tasks.
 */
export class StopSwitch {
  /** The task's directory while it runs (retention leaves it alone). */
  dir: string | undefined;
  /** The task it stops (Executor.stop finds it by id). */
  taskId: string | undefined;
  #controller: AbortController | undefined;
  #outer: AbortSignal | undefined;
  #onOuter: (() => void) | undefined;
  #stopped = false;
  #reason: unknown;

  get aborted(): boolean {
    return this.#stopped || this.#outer?.aborted === true;
  }

  get reason(): unknown {
    return this.#stopped ? this.#reason : this.#outer?.reason;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
      else if (this.#outer) {
        const outer = this.#outer;
        this.#onOuter = () => this.abort(outer.reason);
        outer.addEventListener('abort', this.#onOuter, { once: true });
      }
    }
    return this.#controller.signal;
  }

  /** Stop when `outer` aborts (checked at once; listened to once a signal is made). */
  follow(outer: AbortSignal): void {
    this.#outer = outer;
  }

  unfollow(): void {
    if (this.#onOuter) this.#outer?.removeEventListener('abort', this.#onOuter);
    this.#onOuter = undefined;
  }

  abort(reason: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/** `work`'s result, or a rejection with the signal's reason as soon as it aborts. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {}); // abandoned: its later failure must not become an unhandled rejection
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** True for a promise or any other object with a `then` method. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
