/**
 * One run of a long-running command (a service instance): `/bin/sh -c cmd` in its own process group,
 * stdout and stderr into rotating logs, stopped with SIGTERM and, after a grace period, SIGKILL to the
 * whole group. Knows nothing of ZooKeeper.
 *
 * Process hygiene (as shell.ts, for programs that do not end):
 * - The command runs under a small wrapper shell that leads its own process group (`detached`), so one
 *   `kill(-pgid)` reaches everything it started.
 * - The wrapper holds a pipe from this process on its stdin, read by a guard in the group: when this
 *   process dies (SIGKILL of the host, a role thread ended), the kernel closes the pipe, the guard reads
 *   end of file and SIGKILLs the group. An instance never outlives the process that supervises it, so
 *   a host that is killed cannot leave a copy answering beside its replacement. A host that is frozen
 *   (SIGSTOP) keeps the pipe open: its instances run on until it resumes and stops them (the runner).
 * - `stop(graceMs)`: SIGTERM to the group, then SIGKILL once the grace has passed while any process of
 *   the group still runs; it resolves when none does.
 * - When the command exits by itself, what is left of its group (the guard, `sleep 100 &`) is SIGKILLed.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { RotatingLog, type RotatingLogOptions } from './rotating-log.js';
import { groupExited, groupRunning, killGroup } from './shell.js';

export interface ServiceProcessOptions {
  cmd: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Directory of `stdout.log` and `stderr.log` (and their rotated copies). */
  logDir: string;
  logs?: RotatingLogOptions;
}

export interface ServiceExit {
  /** Exit code of the command, null when it was killed by a signal or never started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the wrapper shell could not be started. */
  error?: Error;
}

/**
 * The guard waits for end of file on the pipe (this process gone) and kills the group. A background
 * job of a non-interactive shell gets /dev/null as stdin, so the pipe goes to it as fd 3; the command
 * gets neither (stdin /dev/null, fd 3 closed). The guard and the wrapper ignore SIGTERM (the wrapper
 * only once the command has started, so the command keeps the default): a stop's SIGTERM reaches the
 * command, and the group stays until the command has exited or the grace is over. The wrapper's exit
 * status is the command's.
 */
const WRAPPER =
  'exec 3<&0 0</dev/null; (trap "" TERM; read -r _zkfarm_eof <&3; kill -KILL 0) & ' +
  '/bin/sh -c "$ZKFARM_SERVICE_CMD" 3<&- & _zkfarm_cmd=$!; exec 3<&-; trap "" TERM; wait "$_zkfarm_cmd"';

const POLL_MS = 20;

export class ServiceProcess {
  readonly pid: number | undefined;
  readonly exited: Promise<ServiceExit>;
  readonly startedAt = Date.now();
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable> | undefined;
  readonly #out: RotatingLog | undefined;
  readonly #err: RotatingLog | undefined;
  #exit: ServiceExit | undefined;

  private constructor(options: ServiceProcessOptions) {
    let child: ChildProcessByStdio<Writable, Readable, Readable> | undefined;
    try {
      this.#out = new RotatingLog(join(options.logDir, 'stdout.log'), options.logs);
      this.#err = new RotatingLog(join(options.logDir, 'stderr.log'), options.logs);
      child = spawn('/bin/sh', ['-c', WRAPPER], {
        cwd: options.cwd,
        env: { ...options.env, ZKFARM_SERVICE_CMD: options.cmd },
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (error) {
      this.#out?.close();
      this.#err?.close();
      this.exited = Promise.resolve({ code: null, signal: null, error: error as Error });
      return;
    }
    this.#child = child;
    this.pid = child.pid;
    // Never written, never ended: it closes only when this process (or thread) goes.
    child.stdin.on('error', () => {});
    child.stdout.on('data', (d: Buffer) => this.#out!.write(d));
    child.stderr.on('data', (d: Buffer) => this.#err!.write(d));
    this.exited = new Promise<ServiceExit>((resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
      child.once('exit', (code, signal) => resolve({ code, signal }));
    }).then(async (exit) => {
      this.#exit = exit;
      if (child.pid !== undefined && killGroup(child.pid, 'SIGKILL')) await groupExited(child.pid);
      this.#out!.close();
      this.#err!.close();
      return exit;
    });
  }

  /** Start the command; never throws (a failed start is an `exited` with `error`). */
  static start(options: ServiceProcessOptions): ServiceProcess {
    return new ServiceProcess(options);
  }

  get running(): boolean {
    return this.#child !== undefined && this.#exit === undefined;
  }

  /** SIGTERM the group, SIGKILL it after `graceMs`; resolves when no process of the group runs. */
  async stop(graceMs: number): Promise<ServiceExit> {
    const pid = this.pid;
    if (pid !== undefined && this.#exit === undefined) {
      killGroup(pid, 'SIGTERM');
      const deadline = performance.now() + graceMs;
      while (groupRunning(pid) && performance.now() < deadline) await sleep(POLL_MS);
      if (killGroup(pid, 'SIGKILL')) await groupExited(pid);
    }
    return this.exited;
  }
}
