/**
 * Run one shell command for a task: `/bin/sh -c cmd` in the task's output directory, stdout and
 * stderr streamed to `stdout.log` / `stderr.log`, and no process left behind.
 *
 * Process hygiene:
 * - The shell is the leader of its own process group (`detached`), so one `kill(-pid)` reaches every
 *   process the command started, grandchildren included.
 * - Abort (timeout, the worker giving the task up): SIGTERM to the group, SIGKILL to the group after
 *   `killGraceMs` if the shell has not exited by then.
 * - When the shell exits, whatever is left in its group (`sleep 100 &`) is SIGKILLed: a farm must not
 *   pile up orphans, and they would hold the log pipes open. The group id is signalled right after
 *   we learn of the exit, long before the kernel could hand the same number to a new group.
 * - A signalled process is gone only once the kernel has run its exit, which on a busy machine can be
 *   after the shell's own exit and the log pipes' close were reported. When the final SIGKILL found
 *   processes in the group, the run waits (at most GROUP_EXIT_WAIT_MS) until none of them still runs,
 *   so that a caller told "the command ended" never finds a piece of it alive.
 * - Past `maxOutputBytes` a log keeps being drained (so the command never blocks on a full pipe) but
 *   nothing more is written; the log ends with a line saying how much was dropped.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProgressLines, type TaskProgress } from './progress.js';
import { WRITE_NO_FOLLOW } from './workdir.js';

export interface ShellRun {
  cmd: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Aborting kills the command's whole process group. */
  signal: AbortSignal;
  maxOutputBytes: number;
  fileMode: number;
  killGraceMs: number;
  /** Told each progress line the command writes on stdout (progress.ts); the line stays in the log. */
  onProgress?: (progress: TaskProgress) => void;
}

export interface ShellResult {
  /** Exit code, null when the shell was killed by a signal or never started. */
  exitCode: number | null;
  /** The signal that killed the shell, if one did. */
  exitSignal: NodeJS.Signals | null;
  /** True when we killed the command because `signal` aborted before it exited. */
  killed: boolean;
  /** Set when the shell could not be started at all. */
  spawnError?: Error;
  /** The last non-empty line the command wrote to stderr (trimmed, at most 300 characters). */
  lastStderrLine: string;
}

const TAIL_BYTES = 4096;
/** After the shell exits and its group is killed, how long the log pipes may take to close. */
const PIPE_CLOSE_GRACE_MS = 1000;

/** Pass bytes through up to a limit, then count and drop; remember the last few KB. */
class OutputLimiter extends Transform {
  seen = 0;
  #tail: Buffer = Buffer.alloc(0);
  readonly #max: number;
  readonly #keepTail: boolean;

  constructor(max: number, keepTail: boolean) {
    super();
    this.#max = max;
    this.#keepTail = keepTail;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.#keepTail) {
      this.#tail =
        chunk.length >= TAIL_BYTES
          ? chunk.subarray(chunk.length - TAIL_BYTES)
          : Buffer.concat([this.#tail, chunk]).subarray(-TAIL_BYTES);
    }
    const room = this.#max - this.seen;
    this.seen += chunk.length;
    if (room >= chunk.length) done(null, chunk);
    else if (room > 0) done(null, chunk.subarray(0, room));
    else done();
  }

  override _flush(done: TransformCallback): void {
    if (this.seen > this.#max) {
      done(
        null,
        `\n[zkfarm: output truncated: kept the first ${this.#max} of ${this.seen} bytes (maxOutputBytes)]\n`,
      );
    } else done();
  }

  lastLine(): string {
    const lines = this.#tail.toString('utf8').split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i]!.trim();
      if (line) return line.length > 300 ? `${line.slice(0, 300)}…` : line;
    }
    return '';
  }
}

/** Signal every process of the group led by `pid`; false when the group has no process left. */
export function killGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // ESRCH: the group is already gone.
  }
}

const GROUP_EXIT_WAIT_MS = 2000;

/** Wait, bounded, until no process of group `pgid` is still running (zombies have finished exiting). */
export async function groupExited(pgid: number, waitMs = GROUP_EXIT_WAIT_MS): Promise<void> {
  const deadline = performance.now() + waitMs;
  while (groupRunning(pgid) && performance.now() < deadline) await sleep(5);
}

/**
 * Does a process of group `pgid` still run? `kill(-pgid, 0)` also counts zombies, which may never be
 * reaped in a container whose init does not reap, so on Linux /proc tells running from exited.
 */
export function groupRunning(pgid: number): boolean {
  if (!killGroup(pgid, 0)) return false;
  if (process.platform !== 'linux') return false;
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) > 57) continue; // not a pid
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // After "pid (comm) ": state, ppid, pgrp, ...; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

export async function runShell(run: ShellRun): Promise<ShellResult> {
  const { out, err } = await openLogs(run);
  const outLimiter = new OutputLimiter(run.maxOutputBytes, false);
  const errLimiter = new OutputLimiter(run.maxOutputBytes, true);
  let child: ChildProcessByStdio<null, Readable, Readable>;
  try {
    child = spawn('/bin/sh', ['-c', run.cmd], {
      cwd: run.cwd,
      env: run.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    // Thrown synchronously for bad arguments, e.g. a NUL byte in the command.
    await Promise.allSettled([out.close(), err.close()]);
    return {
      exitCode: null,
      exitSignal: null,
      killed: false,
      spawnError: error as Error,
      lastStderrLine: '',
    };
  }
  // Streams close their FileHandle when they finish (autoClose).
  const logs = Promise.allSettled([
    run.onProgress
      ? pipeline(child.stdout, new ProgressLines(run.onProgress), outLimiter, out.createWriteStream())
      : pipeline(child.stdout, outLimiter, out.createWriteStream()),
    pipeline(child.stderr, errLimiter, err.createWriteStream()),
  ]);
  const { exit, killed } = await exitOf(child, run);
  const leftovers = child.pid !== undefined && killGroup(child.pid, 'SIGKILL');
  await logsClosed(child, logs);
  if (leftovers) await groupExited(child.pid!);
  return {
    exitCode: exit.code,
    exitSignal: exit.signal,
    killed,
    spawnError: exit.error,
    lastStderrLine: errLimiter.lastLine(),
  };
}

/** Both logs, opened before anything starts: an unwritable directory fails before the command runs. */
async function openLogs(run: ShellRun): Promise<{ out: FileHandle; err: FileHandle }> {
  let out: FileHandle | undefined;
  try {
    // Never through a link planted where a log goes (workdir.ts).
    out = await open(`${run.cwd}/stdout.log`, WRITE_NO_FOLLOW, run.fileMode);
    const err = await open(`${run.cwd}/stderr.log`, WRITE_NO_FOLLOW, run.fileMode);
    return { out, err };
  } catch (error) {
    await out?.close();
    throw error;
  }
}

type Exit = { code: number | null; signal: NodeJS.Signals | null; error?: Error };

/**
 * The shell's exit; when `run.signal` aborts first, its group gets SIGTERM, then SIGKILL after the
 * grace period (`killed` says so).
 */
async function exitOf(
  child: ChildProcessByStdio<null, Readable, Readable>,
  run: ShellRun,
): Promise<{ exit: Exit; killed: boolean }> {
  let killed = false;
  let graceTimer: NodeJS.Timeout | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const onAbort = () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    killed = true;
    killGroup(child.pid, 'SIGTERM');
    graceTimer = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), run.killGraceMs);
  };
  if (run.signal.aborted) onAbort();
  else run.signal.addEventListener('abort', onAbort, { once: true });
  const exit = await exited;
  run.signal.removeEventListener('abort', onAbort);
  clearTimeout(graceTimer);
  return { exit, killed };
}

/** Wait for the logs to be written; a process that left the group (setsid) may hold a pipe open. */
async function logsClosed(
  child: ChildProcessByStdio<null, Readable, Readable>,
  logs: Promise<unknown>,
): Promise<void> {
  let pipeTimer: NodeJS.Timeout | undefined;
  const pipesStuck = new Promise<void>((resolve) => {
    pipeTimer = setTimeout(() => {
      child.stdout.destroy();
      child.stderr.destroy();
      resolve();
    }, PIPE_CLOSE_GRACE_MS);
  });
  await Promise.race([logs, pipesStuck]);
  clearTimeout(pipeTimer);
  await logs;
}
