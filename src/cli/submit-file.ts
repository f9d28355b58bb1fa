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
import { checkTask, TASK_MAX_BYTES, type Task } from '../farm/protocol.js';
import type { SubmitStreamError } from '../farm/submit-stream.js';
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
}

export interface FileOutcome {
  ids: string[] | undefined;
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

/** Stream the file's tasks into the farm; bad lines handled as `onBad` says (see the module comment). */
export async function submitFile(
  submitter: Submitter,
  opts: FileOptions,
  io: Io,
  keepIds: boolean,
): Promise<FileOutcome> {
  const label = opts.file === '-' ? 'stdin' : opts.file;
  const input = opts.file === '-' ? process.stdin : createReadStream(opts.file);
  const opened = new Promise<void>((resolve, reject) => {
    if (opts.file === '-') resolve();
    else input.once('open', () => resolve()).once('error', reject);
  });
  await opened.catch((err: unknown) => {
    const code = (err as { code?: string }).code;
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `--file ${opts.file}: cannot read it (${code === 'ENOENT' ? 'no such file' : (err as Error).message})`,
    );
  });
  const progress = new ProgressLine(label);
  /** Line numbers of the tasks handed over and not yet confirmed, oldest first. */
  const pending: number[] = [];
  let pendingHead = 0;
  let lastConfirmedLine = opts.skip;
  let skippedLines = 0;
  let bad: { line: number; message: string } | undefined;
  const ids: string[] | undefined = keepIds ? [] : undefined;

  async function* tasks(): AsyncGenerator<Task> {
    for await (const line of readLines(input)) {
      if (line.number <= opts.skip || (line.text.trim() === '' && !line.tooLong)) continue;
      const task = parseLine(line, label);
      if (task instanceof Error) {
        if (opts.onBad === 'skip') {
          skippedLines++;
          progress.clear();
          io.err(`runtime submit: ${task.message} (skipped)`);
          continue;
        }
        bad = { line: line.number, message: task.message };
        return;
      }
      pending.push(line.number);
      yield task;
    }
  }

  let submitted = 0;
  try {
    const r = await submitter.submitStream(tasks(), {
      ...(opts.maxInbox !== undefined ? { maxInbox: opts.maxInbox } : {}),
      onSubmitted: (batch) => {
        pendingHead += batch.length;
        lastConfirmedLine = pending[pendingHead - 1] ?? lastConfirmedLine;
        if (pendingHead > 4096) {
          pending.splice(0, pendingHead);
          pendingHead = 0;
        }
        for (const id of batch) io.out(id);
        ids?.push(...batch);
      },
      onProgress: (p) => progress.show(p, lastConfirmedLine),
    });
    submitted = r.submitted;
  } catch (err) {
    progress.clear();
    const e = err as SubmitStreamError;
    if (typeof e.submitted === 'number')
      e.message += ` (resume after line ${lastConfirmedLine}: runtime submit --file ${opts.file} --skip ${lastConfirmedLine})`;
    throw err;
  }
  progress.clear();
  if (bad) {
    io.err(
      `runtime submit: ${bad.message}; stopped there: ${submitted} tasks before it were submitted. Fix line ` +
        `${bad.line} and go on from it with: runtime submit --file ${opts.file} --skip ${bad.line - 1}` +
        ' (or pass --on-bad skip to skip bad lines)',
    );
  }
  if (progress.tty || skippedLines > 0)
    io.err(
      `runtime submit: ${submitted} tasks submitted from ${label}${skippedLines ? `, ${skippedLines} bad lines skipped` : ''}`,
    );
  return { ids, submitted, stopped: bad !== undefined, skippedLines };
}

function parseLine(line: Line & { tooLong?: boolean }, label: string): Task | Error {
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
    return checkTask(value);
  } catch (err) {
    return new ZkfarmError(ErrorCodes.INVALID_TASK, `${where}: ${(err as Error).message}`);
  }
}

/** Progress on a terminal: one stderr line, redrawn in place; nothing when stderr is not a terminal. */
class ProgressLine {
  readonly tty = process.stderr.isTTY === true;
  #drawnAt = 0;
  #drawn = false;

  constructor(private readonly label: string) {}

  show(p: { submitted: number; skipped: number; inbox: number; waiting: boolean }, line: number): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.#drawnAt < REDRAW_MS) return;
    this.#drawnAt = now;
    const wait = p.waiting ? ' · waiting for the farm to drain the inbox' : '';
    const text = `${this.label}: ${p.submitted.toLocaleString('en')} submitted (line ${line.toLocaleString('en')}) · inbox ${p.inbox.toLocaleString('en')}${wait}`;
    process.stderr.write(`\r\x1b[2K${text.slice(0, (process.stderr.columns ?? 100) - 1)}`);
    this.#drawn = true;
  }

  clear(): void {
    if (this.#drawn) process.stderr.write('\r\x1b[2K');
    this.#drawn = false;
  }
}
