/**
 * The farm as ZooKeeper sees it, read in one pass for `runtime status`.
 *
 * Reads (never writes): /master (the leader, and what it says waits in the queue and why), /masters/* (every master), /queues/* (per-queue controls), /workers/* (live workers and
 * what they advertise), the child counts of /assign/<w> (their load), /tasks (queue depth), and the
 * results kept (the child counts of the buckets under /status) and the last results by id order (the
 * highest buckets: recent failures). The reads are not one snapshot: a task
 * moving while we read may be counted in two places or none.
 */
import { backlogTotal } from '../farm/backlog-index.js';
import { type MasterInfo, PATHS, parseStatus, parseWorkerInfo, type TaskStatus } from '../farm/protocol.js';
import { QueueAdmin, type QueueOverview } from '../farm/queue-admin.js';
import { countResults, newestResultIds, readResult } from '../farm/status-store.js';
import type { ZkClient } from '../zk/client.js';
import { childrenIfExists as children } from '../zk/compound.js';
import { isZkError } from '../zk/errors.js';

export interface WorkerState {
  name: string;
  capacity: number;
  prefetch: number;
  paused: boolean;
  draining: boolean;
  /** Tasks assigned to it now (children of /assign/<name>). */
  load: number;
  host: string;
  pid: number;
  startedAt: number;
}

export interface FailureSummary {
  id: string;
  worker: string | null;
  attempts: number;
  finishedAt: number;
  error: string;
  errorCode?: string;
}

export interface FarmState {
  leader: MasterInfo | null;
  /** Masters other than the leader, by name. */
  standbys: string[];
  workers: WorkerState[];
  /** Tasks waiting: in /tasks, and in the deep-queue backlog as the leader last counted it (`backlog`). */
  queued: number;
  /** Of `queued`, the tasks in the deep-queue backlog (/queues/<q>/p<p>/...), from the leader's summary. */
  backlog: number;
  /** Tasks in /assign/* (including those of workers that are gone and not yet given back). */
  assigned: number;
  /** Results kept in /status. */
  statuses: number;
  /** Per queue: waiting by priority, running, controls, who serves it, why tasks wait. */
  queues: QueueOverview[];
  /** Failed tasks among the last `recentWindow` statuses, newest first. */
  recentFailures: FailureSummary[];
  /** How many of the newest statuses were looked at for failures. */
  recentWindow: number;
}

export interface ReadOptions {
  /** Statuses to look at for failures (newest by id). @defaultValue 200 */
  window?: number;
  /** Failures to report at most. @defaultValue 10 */
  maxFailures?: number;
}

async function dataOf(client: ZkClient, path: string): Promise<Buffer | null> {
  try {
    return (await client.getData(path)).data;
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return null;
    throw err;
  }
}

async function childCount(client: ZkClient, path: string): Promise<number> {
  return (await client.exists(path))?.numChildren ?? 0;
}

function parseMaster(data: Buffer | null): MasterInfo | null {
  if (!data) return null;
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<MasterInfo>;
    if (typeof v.name === 'string') {
      return {
        name: v.name,
        host: String(v.host ?? ''),
        pid: Number(v.pid ?? 0),
        since: Number(v.since ?? 0),
        ...(v.queue && typeof v.queue === 'object' ? { queue: v.queue } : {}),
      };
    }
  } catch {
    // The original wrote the bare name.
  }
  return { name: data.toString('utf8'), host: '', pid: 0, since: 0 };
}

export async function readFarmState(client: ZkClient, options: ReadOptions = {}): Promise<FarmState> {
  const window = options.window ?? 200;
  const maxFailures = options.maxFailures ?? 10;
  const [leaderData, masters, workerNames, assignees, queued, statusCount, newest] = await Promise.all([
    dataOf(client, PATHS.master),
    children(client, PATHS.masters),
    children(client, PATHS.workers),
    children(client, PATHS.assign),
    childCount(client, PATHS.tasks),
    countResults(client),
    newestResultIds(client, window),
  ]);
  const leader = parseMaster(leaderData);
  const loads = new Map(
    await Promise.all(
      assignees.map(async (w) => [w, await childCount(client, `${PATHS.assign}/${w}`)] as const),
    ),
  );
  const workers = (
    await Promise.all(
      workerNames.sort().map(async (name): Promise<WorkerState | undefined> => {
        const info = parseWorkerInfo(await dataOf(client, `${PATHS.workers}/${name}`));
        if (!info) return undefined;
        return {
          name,
          capacity: info.capacity,
          prefetch: info.prefetch,
          paused: info.paused,
          draining: info.draining === true,
          load: loads.get(name) ?? 0,
          host: info.host,
          pid: info.pid,
          startedAt: info.startedAt,
        };
      }),
    )
  ).filter((w): w is WorkerState => w !== undefined);

  const statuses = await Promise.all(
    newest.map(async (id) => {
      const data = (await readResult(client, id))?.data;
      if (!data) return undefined;
      try {
        return { id, status: parseStatus(data) };
      } catch {
        return undefined;
      }
    }),
  );
  const recentFailures = statuses
    .filter((s): s is { id: string; status: TaskStatus } => s?.status.state === 'failed')
    .reverse()
    .slice(0, maxFailures)
    .map(({ id, status }) => {
      const f: FailureSummary = {
        id,
        worker: status.worker,
        attempts: status.attempts,
        finishedAt: status.finishedAt,
        error: status.error ?? '(no reason recorded)',
      };
      if (typeof status.errorCode === 'string') f.errorCode = status.errorCode;
      return f;
    });

  const backlog = backlogTotal(leader?.queue);
  return {
    leader,
    standbys: masters.filter((m) => m !== leader?.name).sort(),
    workers,
    queued: queued + backlog,
    backlog,
    assigned: [...loads.values()].reduce((a, b) => a + b, 0),
    queues: await new QueueAdmin(client).list(),
    statuses: statusCount,
    recentFailures,
    recentWindow: newest.length,
  };
}
