/**
 * The farm's invariants, checked after every benchmark run that used a farm (the same idea as
 * test/helpers/invariants.ts, which src/ does not import):
 *
 * - every submitted task has exactly one /status (ZooKeeper allows one node per path; "exactly one" also
 *   means it is not still in /tasks or /assign), and /status holds nothing else;
 * - /tasks and every /assign/<worker> are empty;
 * - every succeeded status that names an output directory has its result.json there;
 * - re-executions are counted from the status (`attempts > 1`), not forbidden: execution is at least once.
 *
 * Reading the statuses also yields each status znode's ctime (the ZooKeeper server's clock when the
 * status was created), which the scenarios use as the moment a result was recorded.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { assignDir, PATHS, parseStatus, statusPath, type TaskStatus } from '../../src/farm/protocol.js';
import { countResults } from '../../src/farm/status-store.js';
import { isZkError, type ZkClient } from '../../src/zk/index.js';
import type { FarmCheckSummary } from './types.js';

export interface StatusRecord {
  status: TaskStatus;
  /** Creation time of /status/<id> (ms since epoch, server clock). */
  ctime: number;
}

export const ctimeOf = (stat: { ctime: number }): number => stat.ctime;

/** Read the status of every id (pipelined, `chunk` at a time). Ids without a status are `missing`. */
export async function readStatuses(
  client: ZkClient,
  ids: readonly string[],
  chunk = 1000,
): Promise<{ records: Map<string, StatusRecord>; missing: string[]; unreadable: string[] }> {
  const records = new Map<string, StatusRecord>();
  const missing: string[] = [];
  const unreadable: string[] = [];
  for (let i = 0; i < ids.length; i += chunk) {
    await Promise.all(
      ids.slice(i, i + chunk).map(async (id) => {
        try {
          const { data, stat } = await client.getData(statusPath(id));
          records.set(id, { status: parseStatus(data), ctime: ctimeOf(stat) });
        } catch (err) {
          if (isZkError(err, 'NO_NODE')) missing.push(id);
          else if (err instanceof SyntaxError || (err as Error).name === 'ZodError') unreadable.push(id);
          else throw err;
        }
      }),
    );
  }
  return { records, missing, unreadable };
}

export interface FarmCheck extends FarmCheckSummary {
  records: Map<string, StatusRecord>;
}

/** Check the invariants for the tasks `ids` (all tasks this run submitted under its chroot). */
export async function checkFarm(
  client: ZkClient,
  ids: readonly string[],
  options: { workdir?: string } = {},
): Promise<FarmCheck> {
  const { records, missing, unreadable } = await readStatuses(client, ids);
  const problems: string[] = [];
  const sample = (xs: string[]) => xs.slice(0, 5).join(', ');
  if (missing.length) problems.push(`${missing.length} tasks without a status (${sample(missing)})`);
  if (unreadable.length)
    problems.push(`${unreadable.length} statuses that are not valid status JSON (${sample(unreadable)})`);
  const leftInTasks = await client.getChildren(PATHS.tasks);
  if (leftInTasks.length)
    problems.push(`${leftInTasks.length} tasks left in /tasks (${sample(leftInTasks)})`);
  const leftInAssign: string[] = [];
  for (const w of await client.getChildren(PATHS.assign)) {
    for (const t of await client.getChildren(assignDir(w)).catch(() => [] as string[]))
      leftInAssign.push(`${w}/${t}`);
  }
  if (leftInAssign.length)
    problems.push(`${leftInAssign.length} tasks left in /assign (${sample(leftInAssign)})`);
  const statusCount = await countResults(client);
  if (statusCount !== records.size) {
    problems.push(
      `/status holds ${statusCount} nodes for ${records.size} submitted tasks with a status (a duplicate or a stray task)`,
    );
  }
  let succeeded = 0;
  let failed = 0;
  let reruns = 0;
  const failures: string[] = [];
  const noOutput: string[] = [];
  for (const [id, r] of records) {
    if (r.status.state === 'succeeded') {
      succeeded++;
      if (
        options.workdir &&
        r.status.worker &&
        r.status.outputDir !== undefined &&
        !existsSync(join(options.workdir, r.status.worker, id, 'result.json'))
      ) {
        noOutput.push(id);
      }
    } else {
      failed++;
      if (failures.length < 3) failures.push(`${id}: ${r.status.error ?? 'no reason given'}`);
    }
    if (r.status.attempts > 1) reruns++;
  }
  if (failed) problems.push(`${failed} tasks failed (${failures.join('; ')})`);
  if (noOutput.length)
    problems.push(`${noOutput.length} succeeded tasks without result.json (${sample(noOutput)})`);
  return { ok: problems.length === 0, problems, statuses: records.size, succeeded, failed, reruns, records };
}

/** The plain-data part of a check, for a result. */
export function summaryOf(check: FarmCheck): FarmCheckSummary {
  const { records: _records, ...rest } = check;
  return rest;
}
