/**
 * The farm's invariant checker, for any test and for the benchmarks:
 * after a run, every submitted task has exactly one /status; /tasks and every /assign/<w> are empty;
 * every succeeded status has its output directory.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { assignDir, PATHS, parseStatus, statusPath, type TaskStatus } from '../../src/farm/protocol.js';
import { isZkError, type ZkClient } from '../../src/zk/index.js';

export interface InvariantReport {
  statuses: Map<string, TaskStatus>;
  missing: string[];
  leftInTasks: string[];
  leftInAssign: string[];
  missingOutput: string[];
  /** Tasks whose status says they ran more than once. */
  reruns: string[];
  ok: boolean;
  problems: string[];
}

export async function checkInvariants(
  client: ZkClient,
  ids: readonly string[],
  options: { workdir?: string } = {},
): Promise<InvariantReport> {
  const statuses = new Map<string, TaskStatus>();
  const missing: string[] = [];
  await Promise.all(
    ids.map(async (id) => {
      try {
        statuses.set(id, parseStatus((await client.getData(statusPath(id))).data));
      } catch (err) {
        if (isZkError(err, 'NO_NODE')) missing.push(id);
        else throw err;
      }
    }),
  );
  const leftInTasks = await client.getChildren(PATHS.tasks);
  const leftInAssign: string[] = [];
  for (const w of await client.getChildren(PATHS.assign)) {
    for (const t of await client.getChildren(assignDir(w)).catch(() => [] as string[]))
      leftInAssign.push(`${w}/${t}`);
  }
  const missingOutput: string[] = [];
  if (options.workdir) {
    for (const [id, s] of statuses) {
      if (
        s.state === 'succeeded' &&
        s.worker &&
        !existsSync(join(options.workdir, s.worker, id, 'result.json'))
      ) {
        missingOutput.push(id);
      }
    }
  }
  const reruns = [...statuses].filter(([, s]) => s.attempts > 1).map(([id]) => id);
  const problems: string[] = [];
  if (missing.length)
    problems.push(`${missing.length} tasks without a status: ${missing.slice(0, 5).join(', ')}`);
  if (leftInTasks.length) problems.push(`${leftInTasks.length} left in /tasks`);
  if (leftInAssign.length)
    problems.push(`${leftInAssign.length} left in /assign: ${leftInAssign.slice(0, 5).join(', ')}`);
  if (missingOutput.length)
    problems.push(
      `${missingOutput.length} succeeded without output: ${missingOutput.slice(0, 5).join(', ')}`,
    );
  return {
    statuses,
    missing,
    leftInTasks,
    leftInAssign,
    missingOutput,
    reruns,
    ok: problems.length === 0,
    problems,
  };
}

/** Wait until every id has a status (polling /status's children count first, cheap), or throw. */
export async function waitForStatuses(
  client: ZkClient,
  ids: readonly string[],
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const want = new Set(ids);
  for (;;) {
    const have = new Set(await client.getChildren(PATHS.status));
    let n = 0;
    for (const id of want) if (have.has(id)) n++;
    if (n === want.size) return;
    if (Date.now() > deadline)
      throw new Error(`only ${n} of ${want.size} tasks have a status after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
