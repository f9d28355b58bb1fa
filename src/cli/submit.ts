/**
 * `runtime submit [--zk CONNECT] [--wait] [--timeout MS] [--delay 5m | --at ISO] [--file tasks.ndjson|-] [TASK_JSON]`
 *
 * Tasks come from the argument, from a file of JSON lines streamed (submit-file.ts: bounded memory,
 * backpressure, progress on a terminal, bad lines by line number), or from stdin when neither is given
 * and stdin is not a terminal (the original's `echo '{"cmd":"ps -e"}' | sendtask`; checked as a whole
 * before any is sent). Prints one task id per line as tasks are confirmed; with --wait, also one JSON
 * line per result as results arrive (a --file's results between the ids of its later batches), and
 * exits 1 if any task failed or did not finish in time.
 */

import type { Command } from 'commander';
import { ErrorCodes, hasCode, ZkfarmError } from '../errors.js';
import { field } from '../farm/option-schema.js';
import { checkTask, type Task } from '../farm/protocol.js';
import { type SubmitManyError, Submitter } from '../farm/submitter.js';
import { discoverConnect } from '../host/discovery.js';
import {
  clientFlags,
  closeQuickly,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  errorLine,
  flagOption,
  type Io,
  unreachable,
} from './common.js';
import { type DelayFlags, delayFields } from './submit-delay.js';
import { keyFrom, submitFile } from './submit-file.js';
import { addTlsOptions, loadTls, type TlsFlags, tlsSettingFromFlags } from './zk-tls.js';

interface SubmitOptions extends TlsFlags, DelayFlags {
  zk?: string;
  wait?: boolean;
  timeout?: number;
  file?: string;
  skip?: number;
  onBad?: 'stop' | 'skip';
  maxInbox?: number;
  maxQueueDepth?: number;
  key?: string;
  keyField?: string;
  auth?: string;
  connectTimeout: number;
}

export function registerSubmit(program: Command, io: Io, setExit: (code: number) => void): void {
  const cmd = program
    .command('submit')
    .description('submit tasks: TASK_JSON, a --file of JSON lines, or one task (or JSON lines) on stdin')
    .argument('[task]', 'a task as JSON, e.g. \'{"handler":"echo","input":"hi"}\' or \'{"cmd":"ps -e"}\'')
    .addOption(flagOption(clientFlags.zk))
    .option('--wait', 'wait for every result, print each as a JSON line, exit 1 if any failed')
    .addOption(
      flagOption(
        field((z) => z.int().min(1), {
          flag: '--timeout <ms>',
          unit: 'ms',
          description:
            'with --wait: give up on a task without a result this long after it was submitted (exit 1)',
        }),
      ),
    )
    .option(
      '-f, --file <file>',
      'stream this NDJSON file (one task per line, blank lines skipped; - for stdin) with bounded memory',
    )
    .addOption(
      flagOption(
        field((z) => z.int().min(0), {
          flag: '--skip <lines>',
          description: 'with --file: skip the first N lines (already submitted)',
        }),
      ),
    )
    .addOption(
      flagOption(
        field((z) => z.enum(['stop', 'skip']), {
          flag: '--on-bad <what>',
          description:
            'with --file: a bad line stops the run (what came before stays submitted), or is skipped',
        }),
      ),
    )
    .addOption(
      flagOption(
        field((z) => z.int().min(1), {
          flag: '--max-inbox <tasks>',
          description: 'with --file: wait while /tasks holds more than this (default: 20000)',
        }),
      ),
    )
    .addOption(
      flagOption(
        field((z) => z.int().min(1), {
          flag: '--max-queue-depth <tasks>',
          description:
            "with --file: wait while the task's queue holds more than this waiting, inbox and backlog (default: 1000000)",
        }),
      ),
    )
    .option(
      '--key <key>',
      'an idempotency key for the one task: submitting it again with the same key (within the key window, a day by default) creates nothing and prints the first id',
    )
    .option(
      '--delay <duration>',
      'start the tasks no sooner than this after submitting: 90s, 5m, 2h, 40d (at most 366d)',
    )
    .option(
      '--at <time>',
      'start the tasks no sooner than this ISO-8601 time, with its zone: 2026-12-24T18:00:00Z',
    )
    .option(
      '--key-field <field>',
      "with --file or JSON lines on stdin: each task's key is the value of its own field <field>",
    )
    .addOption(flagOption(clientFlags.auth))
    .addOption(flagOption(clientFlags.connectTimeout, { applyDefault: true }));
  addTlsOptions(cmd)
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  runtime submit \'{"handler":"echo","input":"hello"}\' --wait',
        '  echo \'{"cmd":"ps -e"}\' | runtime submit --wait      (needs a farm started with --allow-shell)',
        '  runtime submit --file tasks.ndjson           (a million lines: streamed, waits while the farm drains)',
        '  runtime submit --file tasks.ndjson --skip 5000 --on-bad skip',
        '  runtime submit --key order-42 \'{"handler":"mail","input":{"order":42}}\'   (again: same id, nothing new)',
        '  runtime submit --file orders.ndjson --key-field orderId',
        '  runtime submit --delay 40d \'{"handler":"renew","input":{"user":7}}\'',
        '  runtime submit --at 2026-12-24T18:00:00Z \'{"cmd":"./greet.sh"}\'',
      ].join('\n'),
    )
    .action(async (task: string | undefined, opts: SubmitOptions) => {
      setExit(await runSubmit(task, opts, io));
    });
}

function usage(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, message);
}

function parseOne(text: string, where: string): Task {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ZkfarmError(ErrorCodes.INVALID_TASK, `${where}: not valid JSON (${(err as Error).message})`);
  }
  try {
    return checkTask(value);
  } catch (err) {
    throw new ZkfarmError(ErrorCodes.INVALID_TASK, `${where}: ${(err as Error).message}`);
  }
}

/** Tasks from JSON lines; blank lines are skipped; the first bad line is reported with its number. */
export function parseTaskLines(text: string, label: string): Task[] {
  const tasks: Task[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    tasks.push(parseOne(line, `${label}:${i + 1}`));
  });
  return tasks;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Gather the tasks (all checked) from the argument or stdin (a --file is streamed: submit-file.ts). */
export async function gatherTasks(task: string | undefined): Promise<Task[]> {
  if (task !== undefined) return [parseOne(task, 'TASK_JSON')];
  if (process.stdin.isTTY) {
    throw usage(
      'no task given: pass one as an argument (runtime submit \'{"handler":"echo","input":1}\'), ' +
        'use --file tasks.ndjson, or pipe JSON to stdin',
    );
  }
  const text = await readStdin();
  if (text.trim() === '') throw usage('stdin was empty: expected a task as JSON, e.g. {"cmd": "ps -e"}');
  // One JSON document (possibly over several lines), else JSON lines.
  const oneDocument = (() => {
    try {
      JSON.parse(text);
      return true;
    } catch {
      return false;
    }
  })();
  if (oneDocument || !text.trim().includes('\n')) return [parseOne(text, 'stdin')];
  return parseTaskLines(text, 'stdin');
}

export async function runSubmit(task: string | undefined, opts: SubmitOptions, io: Io): Promise<number> {
  if (task !== undefined && opts.file !== undefined)
    throw usage('give either a TASK_JSON argument or --file, not both');
  if (opts.file !== undefined && opts.key !== undefined)
    throw usage("--key names one task's key; with --file use --key-field <field>");
  if (
    opts.file === undefined &&
    (opts.skip !== undefined ||
      opts.onBad !== undefined ||
      opts.maxInbox !== undefined ||
      opts.maxQueueDepth !== undefined)
  )
    throw usage('--skip, --on-bad, --max-inbox and --max-queue-depth go with --file');
  const later = delayFields(opts);
  const tasks =
    opts.file === undefined
      ? withKeys(await gatherTasks(task), opts).map((t) => checkTask({ ...t, ...later }))
      : [];
  const { connect, source, tls } = discoverConnect(opts.zk);
  const submitter = await Submitter.open({
    connect,
    auth: opts.auth,
    tls: loadTls(tlsSettingFromFlags(opts), tls, connect),
    connectTimeout: opts.connectTimeout,
  }).catch((err: unknown) => {
    // Say where the connect string came from and what to do.
    throw hasCode(err, ErrorCodes.ZK_UNREACHABLE) ? unreachable(connect, source, opts.connectTimeout) : err;
  });
  const waits = opts.wait ? new ResultWaits(submitter, opts.timeout, io) : undefined;
  try {
    const stopped = await submitAll(submitter, tasks, opts, io, waits);
    if (stopped !== undefined) return stopped;
    return waits ? await waits.end() : EXIT_OK;
  } finally {
    await closeQuickly(() => submitter.close());
  }
}

/** --key for one task, --key-field for tasks from JSON lines on stdin (a --file gets it line by line). */
function withKeys(tasks: Task[], opts: SubmitOptions): Task[] {
  if (opts.key !== undefined && opts.keyField !== undefined) throw usage('give either --key or --key-field');
  if (opts.key !== undefined) {
    if (tasks.length !== 1)
      throw usage(`--key names one task's key, and ${tasks.length} tasks were given: use --key-field`);
    return [checkTask({ ...tasks[0], key: opts.key })];
  }
  if (opts.keyField === undefined) return tasks;
  return tasks.map((t, i) => {
    try {
      return checkTask(keyFrom(t, opts.keyField!));
    } catch (err) {
      throw new ZkfarmError(ErrorCodes.INVALID_TASK, `task #${i + 1}: ${(err as Error).message}`);
    }
  });
}

/**
 * submitMany, and when it fails part-way, the ids ZooKeeper confirmed before the failure printed first:
 * the library's error carries them (`submitted`), and a command's user sees only its output.
 */
async function manyOrConfirmed(submitter: Submitter, tasks: Task[], io: Io): Promise<string[]> {
  try {
    return await submitter.submitMany(tasks);
  } catch (err) {
    const confirmed = (err as Partial<SubmitManyError>).submitted;
    if (err instanceof Error && Array.isArray(confirmed) && confirmed.length > 0) {
      io.out(confirmed.join('\n'));
      err.message += `; runtime submit printed the ${confirmed.length} ids confirmed before it failed`;
    }
    throw err;
  }
}

/** Tasks from stdin submitted at a time with --wait (every one was checked before the first is sent). */
const WAIT_PART = 1000;

/**
 * Submit the tasks (or stream the --file), printing their ids; the exit code of a run that stopped, or
 * undefined. With `waits`, each id is waited for from the moment it is confirmed.
 */
async function submitAll(
  submitter: Submitter,
  tasks: Task[],
  opts: SubmitOptions,
  io: Io,
  waits: ResultWaits | undefined,
): Promise<number | undefined> {
  if (opts.file === undefined && tasks.length === 1 && tasks[0]!.key !== undefined) {
    const { id, existed } = await submitter.submitKeyed(tasks[0]!);
    if (existed)
      io.err(
        `runtime submit: the key ${JSON.stringify(tasks[0]!.key)} is held by ${id}: nothing new submitted`,
      );
    io.out(id);
    waits?.add([id]);
    return undefined;
  }
  if (opts.file === undefined) {
    // With --wait, JSON lines go in a part at a time, each waited for once confirmed (as a --file's
    // batches are): waiting only once all were in missed results the farm had removed by then.
    const part = waits ? WAIT_PART : tasks.length;
    for (let i = 0; i < tasks.length; i += part) {
      const some = tasks.slice(i, i + part);
      const ids =
        some.length === 1 ? [await submitter.submit(some[0]!)] : await manyOrConfirmed(submitter, some, io);
      // One write for all the ids: a write per id cost more than the submit itself for large batches.
      if (ids.length > 0) io.out(ids.join('\n'));
      waits?.add(ids);
    }
    return undefined;
  }
  const fileOpts = {
    file: opts.file,
    skip: opts.skip ?? 0,
    onBad: opts.onBad ?? 'stop',
    maxInbox: opts.maxInbox,
    maxQueueDepth: opts.maxQueueDepth,
    keyField: opts.keyField,
    extra: delayFields(opts),
  };
  const r = await submitFile(submitter, fileOpts, io, waits && ((ids) => waits.add(ids)));
  if (r.stopped) return EXIT_USAGE;
  if (r.submitted === 0 && r.skippedLines === 0) {
    io.err(`runtime submit: --file ${opts.file}: no tasks in it (every line is blank)`);
    return EXIT_USAGE;
  }
  return undefined;
}

/**
 * --wait: each id is waited for from the moment it is confirmed, and its result printed as it comes.
 * Waiting only once a whole file was submitted missed results: a farm keeps `retention.maxCount`
 * results (beyond `retention.minAgeMs`), and a long file's first results were removed by then.
 */
class ResultWaits {
  readonly #submitter: Submitter;
  readonly #timeout: number | undefined;
  readonly #io: Io;
  readonly #pending = new Set<Promise<void>>();
  #count = 0;
  #failed = 0;
  #missing = 0;

  constructor(submitter: Submitter, timeout: number | undefined, io: Io) {
    this.#submitter = submitter;
    this.#timeout = timeout;
    this.#io = io;
  }

  add(ids: readonly string[]): void {
    for (const id of ids) {
      this.#count++;
      const p = this.#one(id).finally(() => this.#pending.delete(p));
      this.#pending.add(p);
    }
  }

  async #one(id: string): Promise<void> {
    try {
      const options = this.#timeout !== undefined ? { timeoutMs: this.#timeout } : {};
      const status = await this.#submitter.waitFor(id, options);
      if (status.state !== 'succeeded') this.#failed++;
      this.#io.out(JSON.stringify({ id, ...status }));
    } catch (err) {
      this.#missing++;
      this.#io.err(`runtime submit: ${errorLine(err)}`);
    }
  }

  /** Once every task is submitted: wait for the rest; exit 1 if any failed or has none in time. */
  async end(): Promise<number> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
    if (this.#failed === 0 && this.#missing === 0) return EXIT_OK;
    const n = this.#count;
    const parts = [
      this.#failed > 0 ? `${this.#failed} failed` : '',
      this.#missing > 0 ? `${this.#missing} without a result` : '',
    ];
    this.#io.err(`runtime submit: ${parts.filter(Boolean).join(', ')} of ${n} task${n === 1 ? '' : 's'}`);
    return EXIT_FAILURE;
  }
}
