/**
 * A running task's progress: a number (a percentage, or a count: the task decides) and/or a short
 * message, reported as often as the task likes; the worker keeps the latest and publishes it at a
 * bounded rate (farm/progress.ts). Here: its shape, how a report is read from what a handler passes,
 * and the shell channel, a stdout line `zkfarm:progress <number> [message]` or `zkfarm:progress <message>`.
 */
import { Transform, type TransformCallback } from 'node:stream';

export interface TaskProgress {
  /** A number: a percentage, a count of items done, … (finite). */
  value?: number;
  /** A short message (at most PROGRESS_MESSAGE_MAX characters; longer ones are cut). */
  message?: string;
}

/** What a handler's `context.progress(...)` takes: a number, a message, or both. */
export type ProgressReport = number | string | TaskProgress;

export const PROGRESS_MESSAGE_MAX = 200;
/** The prefix of a progress line on a shell task's stdout (also in its env as ZKFARM_PROGRESS_PREFIX). */
export const SHELL_PROGRESS_PREFIX = 'zkfarm:progress';

/** A report as the farm keeps it, or undefined when it holds nothing usable (never throws: bad input is ignored). */
export function readProgress(report: unknown, message?: unknown): TaskProgress | undefined {
  const out: TaskProgress = {};
  const r = report as TaskProgress | null | undefined;
  const value =
    typeof report === 'number' ? report : typeof r === 'object' && r !== null ? r.value : undefined;
  const text =
    typeof report === 'string'
      ? report
      : typeof message === 'string'
        ? message
        : typeof r === 'object' && r !== null
          ? r.message
          : undefined;
  if (typeof value === 'number' && Number.isFinite(value)) out.value = value;
  if (typeof text === 'string' && text !== '')
    out.message = text.length > PROGRESS_MESSAGE_MAX ? `${text.slice(0, PROGRESS_MESSAGE_MAX - 1)}…` : text;
  return out.value === undefined && out.message === undefined ? undefined : out;
}

/** A shell progress line's report (`<number>[%] [message]` or `<message>` after the prefix), or undefined. */
export function parseProgressLine(line: string): TaskProgress | undefined {
  if (!line.startsWith(SHELL_PROGRESS_PREFIX)) return undefined;
  const rest = line.slice(SHELL_PROGRESS_PREFIX.length).trim();
  const m = /^(-?\d+(?:\.\d+)?)%?(?:\s+(.*))?$/.exec(rest);
  return m ? readProgress(Number(m[1]), m[2]) : readProgress(rest);
}

/** Longest stdout line looked at for a progress report; longer lines are passed through unread. */
const LINE_MAX = 1024;

/**
 * A pass-through for a shell task's stdout that reports each progress line it sees. Lines are passed on
 * unchanged (the log keeps them); only the first LINE_MAX bytes of a line are kept to be looked at.
 */
export class ProgressLines extends Transform {
  #line = '';
  #overlong = false;
  readonly #onProgress: (p: TaskProgress) => void;

  constructor(onProgress: (p: TaskProgress) => void) {
    super();
    this.#onProgress = onProgress;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.#take(chunk.subarray(start, nl));
      this.#end();
      start = nl + 1;
    }
    this.#take(chunk.subarray(start));
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.#end();
    done();
  }

  #take(part: Buffer): void {
    if (this.#overlong || part.length === 0) return;
    if (this.#line.length + part.length > LINE_MAX) this.#overlong = true;
    else this.#line += part.toString('utf8');
  }

  #end(): void {
    const line = this.#line.endsWith('\r') ? this.#line.slice(0, -1) : this.#line;
    if (!this.#overlong && line.startsWith(SHELL_PROGRESS_PREFIX)) {
      const p = parseProgressLine(line);
      if (p) this.#onProgress(p);
    }
    this.#line = '';
    this.#overlong = false;
  }
}
