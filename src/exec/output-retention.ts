/**
 * Output retention: task directories do not fill the disk.
 *
 * A sweep looks at each worker directory `<workdir>/<worker>/` an Executor has written to, and removes
 * task directories, oldest first (by modification time: result.json is written last), until every limit
 * holds: none older than `maxAgeMs`, at most `maxCount`, at most `maxBytes` in all. A task that is
 * running is never touched, nor anything that is not a task directory of ours (links and files are
 * left alone, and sizes are counted with lstat: nothing is followed). The Executor sweeps every
 * `intervalMs` (an unref'd timer, one sweep at a time) and on `sweepOutputs()`.
 *
 * Cost: one readdir per worker directory and one lstat per file below it per sweep; with the defaults
 * (10,000 directories) that is well under a second a minute on a local disk.
 */
import type { Dirent } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { isSafeName } from './names.js';

export interface OutputRetention {
  /** Remove task directories older than this (ms). @defaultValue 604800000 (7 days) */
  maxAgeMs?: number;
  /** Keep at most this many task directories per worker. @defaultValue 10000 */
  maxCount?: number;
  /** Keep at most this many bytes of task output per worker. @defaultValue 10 GiB */
  maxBytes?: number;
  /** How often to sweep (ms). @defaultValue 60000 */
  intervalMs?: number;
}

export const OUTPUT_RETENTION_DEFAULTS: Readonly<Required<OutputRetention>> = Object.freeze({
  maxAgeMs: 7 * 24 * 3600 * 1000,
  maxCount: 10_000,
  maxBytes: 10 * 1024 ** 3,
  intervalMs: 60_000,
});

export interface SweepReport {
  removed: number;
  bytesRemoved: number;
  kept: number;
  bytesKept: number;
}

interface TaskDirInfo {
  path: string;
  mtimeMs: number;
  bytes: number;
}

/**
 * Sweep the task directories under `workerDirs` (see the module comment); `busy(path)` says a task
 * runs there now.
 */
export async function sweepOutputs(
  workerDirs: Iterable<string>,
  limits: Required<OutputRetention>,
  busy: (path: string) => boolean,
  now = Date.now(),
): Promise<SweepReport> {
  const report: SweepReport = { removed: 0, bytesRemoved: 0, kept: 0, bytesKept: 0 };
  for (const dir of workerDirs) {
    const dirs = (await taskDirs(dir)).filter((d) => !busy(d.path));
    dirs.sort((a, b) => b.mtimeMs - a.mtimeMs); // newest first
    let count = 0;
    let bytes = 0;
    for (const d of dirs) {
      const keep =
        now - d.mtimeMs <= limits.maxAgeMs && count < limits.maxCount && bytes + d.bytes <= limits.maxBytes;
      if (keep) {
        count++;
        bytes += d.bytes;
        continue;
      }
      await rm(d.path, { recursive: true, force: true });
      report.removed++;
      report.bytesRemoved += d.bytes;
    }
    report.kept += count;
    report.bytesKept += bytes;
  }
  return report;
}

async function taskDirs(workerDir: string): Promise<TaskDirInfo[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(workerDir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: TaskDirInfo[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || !isSafeName(e.name)) continue;
    const path = `${workerDir}/${e.name}`;
    try {
      const st = await lstat(path);
      out.push({ path, mtimeMs: st.mtimeMs, bytes: await size(path) });
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

/** Bytes of the regular files below `dir`, counted with lstat (links are not followed). */
async function size(dir: string): Promise<number> {
  let total = 0;
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) total += await size(path);
    else if (e.isFile()) total += (await lstat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}
