/**
 * The work directory, checked before anything is written in it, and paths below it written without
 * following symbolic links.
 *
 * - The workdir the operator names may itself be a symlink (a data disk mounted elsewhere): it is
 *   resolved once, at start. The directory it resolves to must be owned by this user and not writable
 *   by group or others (ZKFARM_WORKDIR_UNSAFE otherwise): anyone who can write there could plant a link
 *   where the worker is about to write a result or a log.
 * - Below it nothing is followed: a worker's directory and a task's directory are made one level at a
 *   time and checked with lstat (a real directory, ours), and files are opened with O_NOFOLLOW, so a
 *   link planted at `result.json` or `stdout.log` makes the task fail instead of writing through it.
 */
import { closeSync, constants, lstatSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { mkdir, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';

/** Flags for a file written below the workdir: created or truncated, never through a symlink. */
export const WRITE_NO_FOLLOW =
  constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

const myUid = typeof process.getuid === 'function' ? process.getuid() : undefined;

function unsafe(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.WORKDIR_UNSAFE, message);
}

/**
 * Make the workdir if needed, check it (owner, mode, writable: a real write), and return its real
 * path. ZKFARM_WORKDIR_UNSAFE or ZKFARM_WORKDIR_UNWRITABLE, each saying what to do.
 */
export async function checkWorkdir(dir: string, dirMode: number, fileMode: number): Promise<string> {
  let real: string;
  try {
    await mkdir(dir, { recursive: true, mode: dirMode });
    real = await realpath(dir);
    const st = await stat(real);
    if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    if (myUid !== undefined && st.uid !== myUid)
      throw unsafe(
        `work directory ${real} belongs to uid ${st.uid}, not to this user (uid ${myUid}): its owner could ` +
          'plant links where results and logs are written; use a directory of your own (runtime --workdir <dir>)',
      );
    if ((st.mode & 0o022) !== 0)
      throw unsafe(
        `work directory ${real} is writable by ${st.mode & 0o020 ? 'its group' : 'everyone'} (mode ` +
          `${(st.mode & 0o777).toString(8)}): others could plant links where results and logs are written; ` +
          `chmod go-w ${real}, or use another directory (runtime --workdir <dir>)`,
      );
    // A real write, not access(W_OK): it also catches a read-only mount or a full disk, and root
    // passes access() on directories it could not actually use.
    const probe = `${real}/.zkfarm-write-check-${process.pid}-${Math.random().toString(36).slice(2)}`;
    await writeFile(probe, '', { mode: fileMode, flag: WRITE_NO_FOLLOW | constants.O_EXCL });
    await rm(probe, { force: true });
  } catch (err) {
    if (err instanceof ZkfarmError) throw err;
    throw unwritable(dir, err);
  }
  return real;
}

function unwritable(dir: string, err: unknown): ZkfarmError {
  const code = (err as { code?: string }).code;
  const why =
    code === 'ENOTDIR' || code === 'EEXIST'
      ? 'it, or a directory above it, is a file'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EROFS'
          ? 'the file system is read-only'
          : describeError(err);
  return new ZkfarmError(
    ErrorCodes.WORKDIR_UNWRITABLE,
    `work directory ${dir} cannot be written (${why}): choose another directory with the workdir option ` +
      '(runtime --workdir <dir>), or make this one writable by the user running zkfarm',
    { cause: err },
  );
}

/**
 * Make `path` (one level: its parent must exist) or accept it if it is already a real directory of
 * ours. A symlink or another user's directory there is refused (ZKFARM_WORKDIR_UNSAFE).
 */
export function makeOwnDir(path: string, mode: number): void {
  try {
    mkdirSync(path, { mode });
    return;
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') throw err;
  }
  checkOwnDir(path);
}

/** Throw unless `path` is a real directory (not a link) owned by this user. */
export function checkOwnDir(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink() || !st.isDirectory())
    throw unsafe(
      `${path} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}: the worker does not write through it; remove it`,
    );
  if (myUid !== undefined && st.uid !== myUid)
    throw unsafe(`${path} belongs to uid ${st.uid}, not to this user (uid ${myUid}): remove it`);
}

/** Write a whole file below the workdir, refusing to follow a link at `path` (ELOOP). */
export function writeFileNoFollow(path: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(path, WRITE_NO_FOLLOW, mode);
  } catch (err) {
    if ((err as { code?: string }).code === 'ELOOP')
      throw unsafe(`${path} is a symbolic link: the worker does not write through it; remove it`);
    throw err;
  }
  try {
    writeFileSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
