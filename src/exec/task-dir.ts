/**
 * A task's output directory `<workdir>/<worker>/<task-id>/`, made at most once and only when first
 * needed (a task that writes no files costs the file system nothing), one level at a time through
 * workdir.ts (owner-only, no link followed). A failure is ZKFARM_WORKDIR_UNWRITABLE.
 */
import { existsSync } from 'node:fs';
import { describeError, ErrorCodes } from '../errors.js';
import { TaskFailure } from './failure.js';
import { checkOwnDir, makeOwnDir } from './workdir.js';

/** A task's output directory, made at most once, when first needed, one level at a time (workdir.ts). */
export class TaskDir {
  made = false;
  readonly path: string;
  constructor(
    private readonly workerDir: string,
    taskId: string,
    private readonly mode: number,
    private readonly workerDirs: Set<string>,
  ) {
    this.path = `${workerDir}/${taskId}`;
  }

  /** Make the directory (once) and return its path; `ZKFARM_WORKDIR_UNWRITABLE` when it cannot be made. */
  make(): string {
    if (this.made) return this.path;
    try {
      if (!this.workerDirs.has(this.workerDir)) {
        makeOwnDir(this.workerDir, this.mode);
        this.workerDirs.add(this.workerDir);
      }
      makeOwnDir(this.path, this.mode);
    } catch (err) {
      throw new TaskFailure(
        ErrorCodes.WORKDIR_UNWRITABLE,
        `cannot make the task's output directory ${this.path}: ${describeError(err)}`,
        { retryable: true },
      );
    }
    this.made = true;
    return this.path;
  }

  /** Before writing in a directory made elsewhere (a pool thread): it must be ours and no link. */
  check(): void {
    try {
      checkOwnDir(this.workerDir);
      checkOwnDir(this.path);
    } catch (err) {
      throw new TaskFailure(
        ErrorCodes.WORKDIR_UNWRITABLE,
        `not writing the task's output in ${this.path}: ${describeError(err)}`,
        { retryable: false },
      );
    }
  }

  /** After code elsewhere (a pool thread) may have made it. */
  noticeIfMade(): void {
    if (!this.made && existsSync(this.path)) this.made = true;
  }
}
