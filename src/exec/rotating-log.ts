/**
 * A log file that rotates by size: `name.log` grows up to `maxBytes`, then becomes `name.log.1` (the
 * older ones shift to `.2` … `.keep`, the oldest is deleted) and a new `name.log` starts. A long-running
 * program's output never fills the disk: at most (keep + 1) × maxBytes stay.
 *
 * Writes are synchronous and in order: a service's output arrives in chunks of at most a pipe's
 * buffer, and rotation must not interleave with a write. A write that fails (disk full, directory
 * removed) is dropped, counted and reported once: a program must never block on its log.
 */
import { closeSync, constants, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { WRITE_NO_FOLLOW } from './workdir.js';

/** Appending, created when missing, never through a symlink (workdir.ts). */
const APPEND_NO_FOLLOW = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW;

export interface RotatingLogOptions {
  /** Size at which the file rotates. @defaultValue 10 MiB */
  maxBytes?: number;
  /** Rotated files kept beside the current one. @defaultValue 3 */
  keep?: number;
  /** @defaultValue 0o600 */
  fileMode?: number;
  /** Told once when a write fails. */
  onError?: (err: unknown) => void;
}

export class RotatingLog {
  readonly path: string;
  readonly #max: number;
  readonly #keep: number;
  readonly #mode: number;
  readonly #onError: (err: unknown) => void;
  #fd: number | undefined;
  #size = 0;
  #failed = false;
  /** Bytes dropped because a write failed. */
  dropped = 0;

  constructor(path: string, options: RotatingLogOptions = {}) {
    this.path = path;
    this.#max = options.maxBytes ?? 10 * 1024 * 1024;
    this.#keep = options.keep ?? 3;
    this.#mode = options.fileMode ?? 0o600;
    this.#onError = options.onError ?? (() => {});
    // Appends to what an earlier run of the instance wrote: its last lines explain the restart.
    this.#fd = openSync(path, APPEND_NO_FOLLOW, this.#mode);
    this.#size = fstatSync(this.#fd).size;
  }

  write(chunk: Buffer): void {
    if (this.#fd === undefined) return;
    try {
      if (this.#size > 0 && this.#size + chunk.length > this.#max) this.#rotate();
      writeSync(this.#fd, chunk);
      this.#size += chunk.length;
    } catch (err) {
      this.dropped += chunk.length;
      if (!this.#failed) this.#onError(err);
      this.#failed = true;
    }
  }

  #rotate(): void {
    closeSync(this.#fd!);
    this.#fd = undefined;
    rmSync(`${this.path}.${this.#keep}`, { force: true });
    for (let i = this.#keep - 1; i >= 1; i--) {
      try {
        renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      } catch {
        // not there yet
      }
    }
    if (this.#keep > 0) renameSync(this.path, `${this.path}.1`);
    else rmSync(this.path, { force: true });
    this.#fd = openSync(this.path, WRITE_NO_FOLLOW, this.#mode);
    this.#size = 0;
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
