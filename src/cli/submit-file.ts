/**
 * `runtime submit --file <path|->`: a file of JSON lines (NDJSON: one task per line, blank lines
 * skipped), streamed: read a chunk at a time, never the whole file in memory, submitted in batched
 * multis with backpressure (Submitter.submitStream). On a terminal, progress is one line on stderr
 * updated in place; otherwise nothing but the summary.
 *
 * A bad line (not JSON, not a task, longer than any task may be) is reported with its line number. By
 * default it stops the run once what came before it is confirmed, and says how to go on after fixing it
 * (`--skip N`: the lines before it); `--on-bad skip` reports it and goes on.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { checkTask, checkTaskValue, TASK_MAX_BYTES, type Task } from '../farm/protocol.js';
import type { StreamProgress, SubmitStreamError } from '../farm/submit-stream.js';
import type { Submitter } from '../farm/submitter.js';
import type { Io } from './common.js';

/** A line longer than this cannot hold a task (its JSON is at most TASK_MAX_BYTES): it is bad. */
const MAX_LINE = TASK_MAX_BYTES + 1024;
/** Progress is redrawn at most this often (ms). */
const REDRAW_MS = 200;

export interface FileOptions {
  file: string;
  /** Lines to skip from the start (already submitted by an earlier run). */
  skip: number;
  onBad: 'stop' | 'skip';
  maxInbox?: number;
  maxQueueDepth?: number;
  /** Each line's task gets its idempotency key from this field of its JSON (--key-field). */
  keyField?: string;
  /** Fields every line's task gets (--delay, --at). */
  extra?: Record<string, unknown>;
}

export interface FileOutcome {
  submitted: number;
  /** A bad line stopped the run (already reported). */
  stopped: boolean;
  skippedLines: number;
}

interface Line {
  number: number;
  text: string;
}

/** Lines of a stream, one at a time, read a chunk at a time (a line over MAX_LINE comes as `tooLong`). */
export async function* readLines(input: Readable): AsyncGenerator<Line & { tooLong?: boolean }> {
  let carry = '';
  let number = 0;
  let dropping = false;
  input.setEncoding('utf8');
  for await (const chunk of input as AsyncIterable<string>) {
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      const text = carry + chunk.slice(start, nl);
      carry = '';
      start = nl + 1;
      number++;
      if (dropping) {
        dropping = false;
        yield { number, text: '', tooLong: true };
      } else yield { number, text: text.endsWith('\r') ? text.slice(0, -1) : text };
    }
    if (!dropping) carry += chunk.slice(start);
    if (carry.length > MAX_LINE) {
      carry = '';
      dropping = true;
    }
  }
  if (dropping) yield { number: number + 1, text: '', tooLong: true };
  else if (carry !== '') yield { number: number + 1, text: carry };
}

/**
 * Stream the file's tasks into the farm; bad lines handled as `onBad` says (see the module comment).
 * `onIds` gets each batch's ids once confirmed (`--wait` starts waiting for them then).
 */
export async function submitFile(
  submitter: Submitter,
  opts: FileOptions,
  io: Io,
  onIds?: (ids: string[]) => void,
): Promise<FileOutcome> {
  const input = await openInput(opts.file);
  return new FileRun(opts, io, onIds).run(submitter, input);
}

async function openInput(file: string): Promise<Readable> {
  if (file === '-') return process.stdin;
  const input = createReadStream(file);
  await new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve()).once('error', reject);
  }).catch((err: unknown) => {
    const code = (err as { code?: string }).code;
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `--file ${file}: cannot read it (${code === 'ENOENT' ? 'no such file' : (err as Error).message})`,
    );
  });
  return input;
}

/** One run over a file: which line each confirmed task came from, what was bad, what to print. */
class FileRun {
  readonly #opts: FileOptions;
  readonly #io: Io;
  readonly #label: string;
  readonly #progress: ProgressLine;
  /** Line numbers of the tasks handed over, oldest first, from #head on not yet confirmed. */
  #pending: number[] = [];
  #head = 0;
  #lastConfirmedLine: number;
  #skippedLines = 0;
  #bad: { line: number; message: string } | undefined;
  readonly #onIds: ((ids: string[]) => void) | undefined;

  constructor(opts: FileOptions, io: Io, onIds: ((ids: string[]) => void) | undefined) {
    this.#opts = opts;
    this.#io = io;
    this.#label = opts.file === '-' ? 'stdin' : opts.file;
    this.#progress = new ProgressLine(this.#label);
    this.#lastConfirmedLine = opts.skip;
    this.#onIds = onIds;
  }

  async run(submitter: Submitter, input: Readable): Promise<FileOutcome> {
    let submitted: number;
    try {
      const r = await submitter.submitStream(this.#tasks(input), {
        ...(this.#opts.maxInbox !== undefined ? { maxInbox: this.#opts.maxInbox } : {}),
        ...(this.#opts.maxQueueDepth !== undefined ? { maxQueueDepth: this.#opts.maxQueueDepth } : {}),
        onSubmitted: (batch) => this.#confirmed(batch),
        onProgress: (p) => this.#progress.show(p, this.#lastConfirmedLine),
      });
      submitted = r.submitted;
    } catch (err) {
      this.#progress.clear();
      const e = err as SubmitStreamError;
      const at = this.#lastConfirmedLine;
      if (typeof e.submitted === 'number')
        e.message += ` (resume after line ${at}: runtime submit --file ${this.#opts.file} --skip ${at})`;
      throw err;
    }
    this.#progress.clear();
    this.#summary(submitted);
    return { submitted, stopped: this.#bad !== undefined, skippedLines: this.#skippedLines };
  }

  async *#tasks(input: Readable): AsyncGenerator<Task> {
    for await (const line of readLines(input)) {
      if (line.number <= this.#opts.skip || (line.text.trim() === '' && !line.tooLong)) continue;
      const task = parseLine(line, this.#label, this.#opts.keyField, this.#opts.extra);
      if (!(task instanceof Error)) {
        this.#pending.push(line.number);
        yield task;
      } else if (this.#opts.onBad === 'skip') {
        this.#skippedLines++;
        this.#progress.clear();
        this.#io.err(`runtime submit: ${task.message} (skipped)`);
      } else {
        this.#bad = { line: line.number, message: task.message };
        return;
      }
    }
  }

  #confirmed(batch: string[]): void {
    this.#head += batch.length;
    this.#lastConfirmedLine = this.#pending[this.#head - 1] ?? this.#lastConfirmedLine;
    if (this.#head > 4096) {
      this.#pending.splice(0, this.#head);
      this.#head = 0;
    }
    // One write per batch, not per id: for a file of tasks the writes cost more than the submit itself.
    if (batch.length > 0) this.#io.out(batch.join('\n'));
    this.#onIds?.(batch);
  }

  #summary(submitted: number): void {
    const bad = this.#bad;
    if (bad) {
      this.#io.err(
        `runtime submit: ${bad.message}; stopped there: ${submitted} tasks before it were submitted. Fix line ` +
          `${bad.line} and go on from it with: runtime submit --file ${this.#opts.file} --skip ${bad.line - 1}` +
          ' (or pass --on-bad skip to skip bad lines)',
      );
    }
    const skipped = this.#skippedLines;
    if (this.#progress.tty || skipped > 0)
      this.#io.err(
        `runtime submit: ${submitted} tasks submitted from ${this.#label}${skipped ? `, ${skipped} bad lines skipped` : ''}`,
      );
  }
}

function parseLine(
  line: Line & { tooLong?: boolean },
  label: string,
  keyField?: string,
  extra?: Record<string, unknown>,
): Task | Error {
  const where = `${label}:${line.number}`;
  if (line.tooLong)
    return new ZkfarmError(
      ErrorCodes.INVALID_TASK,
      `${where}: the line is longer than any task may be (${TASK_MAX_BYTES} bytes of JSON)`,
    );
  let value: unknown;
  try {
    value = JSON.parse(line.text);
  } catch (err) {
    return new ZkfarmError(ErrorCodes.INVALID_TASK, `${where}: not valid JSON (${(err as Error).message})`);
  }
  try {
    const keyed = keyField === undefined ? value : keyFrom(value, keyField);
    const withExtra = extra && isObject(keyed) ? { ...keyed, ...extra } : keyed;
    if (!isObject(withExtra)) return checkTask(withExtra); // throws: not an object
    // Parsed from JSON (the flags' fields too): checked as it is, not written and read again.
    const r = checkTaskValue(withExtra);
    if (!r.ok) throw new ZkfarmError(ErrorCodes.INVALID_TASK, r.error);
    return r.task;
  } catch (err) {
    return new ZkfarmError(ErrorCodes.INVALID_TASK, `${where}: ${(err as Error).message}`);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A task whose idempotency key is the value of its own field `field` (`--key-field`): a string, or a
 * number written as in JSON. Throws ZKFARM_INVALID_TASK when the task has no such field.
 */
export function keyFrom(value: unknown, field: string): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const v = (value as Record<string, unknown>)[field];
  if (typeof v !== 'string' && typeof v !== 'number')
    throw new ZkfarmError(
      ErrorCodes.INVALID_TASK,
      `--key-field ${field}: the task has no "${field}" holding a string or a number to use as its key`,
    );
  return { ...value, key: String(v) };
}

/** Progress on a terminal: one stderr line, redrawn in place; nothing when stderr is not a terminal. */
class ProgressLine {
  readonly tty = process.stderr.isTTY === true;
  #drawnAt = 0;
  #drawn = false;

  constructor(private readonly label: string) {}

  show(p: StreamProgress, line: number): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.#drawnAt < REDRAW_MS) return;
    this.#drawnAt = now;
    const wait = p.waiting ? ` · waiting: ${p.waitingFor ?? 'the farm to drain the inbox'}` : '';
    const text = `${this.label}: ${p.submitted.toLocaleString('en')} submitted (line ${line.toLocaleString('en')}) · inbox ${p.inbox.toLocaleString('en')}${wait}`;
    process.stderr.write(`\r\x1b[2K${text.slice(0, (process.stderr.columns ?? 100) - 1)}`);
    this.#drawn = true;
  }

  clear(): void {
    if (this.#drawn) process.stderr.write('\r\x1b[2K');
    this.#drawn = false;
  }
}
