/**
 * /api/task/<id>: where a task is and what it holds.
 *
 * Reads the result (status-store.ts: in its bucket, then at the flat path of a farm not yet upgraded);
 * if absent, /tasks/<id>; if absent, /assign/<w>/<id> for each <w> (one read per worker; this is for
 * one click, not a hot path). For a finished task whose output is on this
 * machine (the host's workdir, or the `workdir` option), it lists the files of
 * `<workdir>/<worker>/<id>/` with a bounded preview of each.
 *
 * Nothing from ZooKeeper becomes a path unchecked: the id must be `task-` and 10 digits, the worker name
 * from the status must be a valid role name, the directory must resolve inside the workdir, and only
 * regular files are read (opened with O_NOFOLLOW: a symlink planted there is not followed).
 */
import { constants } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { isSafeName } from '../exec/names.js';
import { type ProgressRecord, readTaskProgress } from '../farm/progress.js';
import { assignPath, backlogPath, isTaskId, PATHS, taskPath } from '../farm/protocol.js';
import { readResult } from '../farm/status-store.js';
import { backlogLanes, findDelayed } from '../farm/task-locator.js';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import { HttpError, WebErrorCodes } from './http.js';

export interface OutputFile {
  name: string;
  size: number;
  /** The first bytes as text, or null for a binary file. */
  preview: string | null;
  truncated: boolean;
}

export interface TaskDetails {
  id: string;
  /** finished: has a status; queued: in /tasks or its queue's backlog; assigned: in /assign/<worker>; unknown: none (never, or removed by retention). */
  where: 'finished' | 'queued' | 'assigned' | 'unknown';
  /** Queued in the deep-queue backlog (/queues/<q>/p<p>/<bucket>/<id>), not in /tasks. */
  backlog?: boolean;
  /** Queued in the due-time area (/delayed/<slot>/<id>): due at its `_zkfarm.notBefore`. */
  delayed?: boolean;
  worker?: string;
  /** The task's JSON as stored (from /tasks or /assign), with the farm's `_zkfarm` bookkeeping. */
  task?: unknown;
  /** The result in /status/<bucket>/<id>. */
  status?: unknown;
  /** A running task's latest progress (/progress/<id>). */
  progress?: ProgressRecord;
  /** When the znode holding it was created (ms). */
  since?: number;
  /** Output files of a finished task, when its output directory is on this machine. */
  files?: OutputFile[];
  /** Why there are no files. */
  filesNote?: string;
}

export interface DetailsOptions {
  /** Root of the workers' output directories on this machine (absolute or relative to the cwd). */
  workdir?: string;
  /** Bytes of each file shown. @defaultValue 4096 */
  previewBytes?: number;
  /** Files listed at most. @defaultValue 50 */
  maxFiles?: number;
}

export async function taskDetails(
  client: ZkClient,
  id: string,
  options: DetailsOptions = {},
): Promise<TaskDetails> {
  if (!isTaskId(id)) {
    throw new HttpError(
      400,
      WebErrorCodes.BAD_REQUEST,
      `not a task id: ${JSON.stringify(id.slice(0, 40))}; ids look like task-0000000042`,
    );
  }
  const status = await readResult(client, id);
  if (status) {
    const value = parse(status.data);
    const out: TaskDetails = { id, where: 'finished', status: value, since: ctime(status.stat) };
    const worker = (value as { worker?: unknown } | undefined)?.worker;
    if (typeof worker === 'string') {
      out.worker = worker;
      if ((value as { outputDir?: unknown } | undefined)?.outputDir === undefined)
        out.filesNote = 'this task wrote no files: its status is its whole record';
      else Object.assign(out, await outputFiles(options, worker, id));
    } else {
      out.filesNote = 'no worker ran this task (the master rejected it)';
    }
    return out;
  }
  const queued = await read(client, taskPath(id));
  if (queued) return { id, where: 'queued', task: parse(queued.data), since: ctime(queued.stat) };
  for (const l of await backlogLanes(client)) {
    const shelved = await read(client, backlogPath(l.queue, l.priority, id));
    if (shelved)
      return { id, where: 'queued', backlog: true, task: parse(shelved.data), since: ctime(shelved.stat) };
  }
  const delayedAt = await findDelayed(client, id);
  const later = delayedAt === undefined ? null : await read(client, delayedAt);
  if (later) return { id, where: 'queued', delayed: true, task: parse(later.data), since: ctime(later.stat) };
  let workers: string[] = [];
  try {
    workers = await client.getChildren(PATHS.assign);
  } catch (err) {
    if (!isZkError(err, 'NO_NODE')) throw err;
  }
  for (const w of workers) {
    const assigned = await read(client, assignPath(w, id));
    if (!assigned) continue;
    const progress = await readTaskProgress(client, id);
    const out: TaskDetails = {
      id,
      where: 'assigned',
      worker: w,
      task: parse(assigned.data),
      since: ctime(assigned.stat),
    };
    return progress ? { ...out, progress } : out;
  }
  // A last look: it may have finished while we searched.
  const late = await readResult(client, id);
  if (late) return taskDetails(client, id, options);
  return { id, where: 'unknown' };
}

async function outputFiles(
  options: DetailsOptions,
  worker: string,
  id: string,
): Promise<Pick<TaskDetails, 'files' | 'filesNote'>> {
  if (!options.workdir)
    return { filesNote: 'the output directory is not on this machine (no workdir known to the dashboard)' };
  if (!isSafeName(worker)) {
    return {
      filesNote: `the status names a worker that is not a valid role name (${JSON.stringify(String(worker).slice(0, 40))}); not reading files`,
    };
  }
  const root = resolve(options.workdir);
  const dir = resolve(root, worker, id);
  if (!dir.startsWith(root + sep))
    return { filesNote: 'the output directory is outside the workdir; not reading files' };
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      filesNote:
        code === 'ENOENT' ? `no output directory ${dir} on this machine` : `cannot list ${dir}: ${code}`,
    };
  }
  const maxFiles = options.maxFiles ?? 50;
  const previewBytes = options.previewBytes ?? 4096;
  const regular = entries.filter((e) => e.isFile()).sort((a, b) => a.name.localeCompare(b.name));
  const files: OutputFile[] = [];
  for (const e of regular.slice(0, maxFiles))
    files.push(await preview(join(dir, e.name), e.name, previewBytes));
  const out: Pick<TaskDetails, 'files' | 'filesNote'> = { files };
  if (regular.length > maxFiles) out.filesNote = `${regular.length - maxFiles} more files not listed`;
  return out;
}

async function preview(path: string, name: string, bytes: number): Promise<OutputFile> {
  let fh: import('node:fs/promises').FileHandle | undefined;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    const st = await fh.stat();
    if (!st.isFile()) return { name, size: 0, preview: null, truncated: false };
    const buf = Buffer.alloc(Math.min(bytes, st.size));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const head = buf.subarray(0, bytesRead);
    const binary = head.includes(0);
    return {
      name,
      size: st.size,
      preview: binary ? null : head.toString('utf8'),
      truncated: st.size > bytesRead,
    };
  } catch {
    return { name, size: 0, preview: null, truncated: false };
  } finally {
    await fh?.close();
  }
}

async function read(client: ZkClient, path: string) {
  try {
    return await client.getData(path);
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return undefined;
    throw err;
  }
}

function parse(data: Buffer): unknown {
  const text = data.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(0, 10_000);
  }
}

function ctime(stat: { ctime: number }): number | undefined {
  return Number.isFinite(stat.ctime) ? stat.ctime : undefined;
}
