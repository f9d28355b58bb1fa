/**
 * How a shell task runs: only on a worker that allows shell commands; `/bin/sh -c` in the task's own
 * directory (with its logs there), with the task's identity in its environment (shell.ts does the
 * process work). A non-zero exit, a signal, or a command that could not start is a failed outcome.
 */
import { describeError, ErrorCodes } from '../errors.js';
import { failureFromAbort, TaskFailure } from './failure.js';
import { SHELL_PROGRESS_PREFIX } from './progress.js';
import type { Executed } from './result-file.js';
import { runShell, type ShellResult } from './shell.js';
import type { TaskDir } from './task-dir.js';
import type { ExecRequest } from './types.js';

/** What a command run takes from the executor's options. */
export interface CommandLimits {
  allowShell: boolean;
  maxOutputBytes: number;
  fileMode: number;
  killGraceMs: number;
}

export async function runCommand(
  req: ExecRequest,
  cmd: string,
  taskDir: TaskDir,
  signal: AbortSignal,
  options: CommandLimits,
): Promise<Executed> {
  if (!options.allowShell) {
    throw new TaskFailure(
      ErrorCodes.SHELL_DISABLED,
      'this worker does not run shell commands (the task has a cmd): start the worker with ' +
        '`allowShell: true` (runtime --allow-shell), or give the task a handler instead',
      { retryable: false },
    );
  }
  // A command always runs in its own directory, with its logs there.
  const dir = taskDir.make();
  let run: ShellResult;
  try {
    run = await runShell({
      cmd,
      cwd: dir,
      env: {
        ...process.env,
        ZKFARM_TASK_ID: req.taskId,
        ZKFARM_WORKER: req.workerName,
        ZKFARM_ATTEMPT: String(req.attempt),
        ZKFARM_OUTPUT_DIR: dir,
        ZKFARM_PROGRESS_PREFIX: SHELL_PROGRESS_PREFIX,
      },
      onProgress: req.onProgress,
      signal,
      maxOutputBytes: options.maxOutputBytes,
      fileMode: options.fileMode,
      killGraceMs: options.killGraceMs,
    });
  } catch (err) {
    throw new TaskFailure(
      ErrorCodes.WORKDIR_UNWRITABLE,
      `cannot write the command's logs in ${dir}: ${describeError(err)}`,
      {
        retryable: true,
      },
    );
  }
  return commandOutcome(run, signal);
}

/** A command's end as an outcome: success on exit code 0, else the failure that says why. */
function commandOutcome(run: ShellResult, signal: AbortSignal): Executed {
  const { exitCode, exitSignal, lastStderrLine } = run;
  if (run.spawnError) {
    throw new TaskFailure(
      ErrorCodes.SHELL_FAILED,
      `could not start /bin/sh: ${describeError(run.spawnError)}`,
      {
        retryable: true,
      },
    );
  }
  if (run.killed) {
    const why = failureFromAbort(signal.reason);
    throw new TaskFailure(why.code, why.message, { retryable: why.retryable, exitCode });
  }
  if (exitCode === 0) {
    return { outcome: { state: 'succeeded', exitCode: 0, startedAt: 0, finishedAt: 0 } };
  }
  const how =
    exitCode !== null ? `exited with code ${exitCode}` : `was killed by ${exitSignal ?? 'a signal'}`;
  throw new TaskFailure(
    ErrorCodes.SHELL_FAILED,
    `command ${how}${lastStderrLine ? `: ${lastStderrLine}` : ''}`,
    {
      retryable: true,
      exitCode,
    },
  );
}
