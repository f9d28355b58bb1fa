/**
 * Cancelling tasks from the library (Submitter.cancel) and the CLI: request, then wait a bounded time
 * for the task's final status, which says what happened.
 *
 * Znodes: creates /cancel/<id> (cancel-request.ts; NODE_EXISTS: asked already, which is fine), reads
 * /status/<bucket>/<id> (watched through `waitFor`), reads where the task is (task-locator.ts), and
 * deletes its own request for a task found nowhere (nothing else would answer it sooner).
 *
 * Outcomes, one per id: `cancelled` (its status is `cancelled`), `finished-first` (it has another
 * final status: it ended before the cancel reached it, and that result stands), `not-found` (neither
 * waiting, held, nor finished: never submitted, or its result removed by retention), `pending` (the
 * request stands but no status came within `waitMs`: the farm answers it when a master or the worker
 * holding the task gets to it).
 *
 * SUSPENDED / LOST: a request whose create fails for connection trouble is reported by the error
 * (the create is safe to send again: NODE_EXISTS then means it was made).
 */
import { ErrorCodes, hasCode, ZkfarmError } from '../errors.js';
import { assertSafeName } from '../exec/names.js';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import { type CancelRequest, cancelPath, encodeCancelRequest } from './cancel-request.js';
import {
  backlogLanePath,
  PATHS,
  parseStatus,
  parseTask,
  queueOf,
  type TaskStatus,
  taskPath,
} from './protocol.js';
import { readResult } from './status-store.js';
import { backlogLanes, whereIs } from './task-locator.js';

export type CancelOutcome = 'cancelled' | 'finished-first' | 'not-found' | 'pending';

export interface CancelResult {
  id: string;
  outcome: CancelOutcome;
  /** The task's final status, when it has one. */
  status?: TaskStatus;
}

export interface CancelOptions extends CancelRequest {
  /** How long to wait for each task's final status (ms); 0: do not wait. @defaultValue 10000 */
  waitMs?: number;
}

export interface CancelPorts {
  client: () => ZkClient;
  /** The task's final status (rejects with ZKFARM_WAIT_TIMEOUT, or ZKFARM_TASK_NOT_FOUND). */
  waitFor: (id: string, timeoutMs: number) => Promise<TaskStatus>;
}

/** Requests sent at once, and waits held at once (each a watch). */
const WINDOW = 256;
/** At most this many ids are each checked at once for being nowhere; beyond, the waits' locator tells. */
const FEW = 32;
/** Between the two looks that find a task nowhere (a task given back between reads is seen by the second). */
const RECHECK_MS = 250;

/**
 * Every request is made first, then the outcomes are awaited together: the farm answers many requests
 * in one pass (cancel-desk.ts), so a queue's thousands of tasks take one wait, not one each.
 */
export async function cancelTasks(
  ports: CancelPorts,
  ids: readonly string[],
  options: CancelOptions = {},
): Promise<CancelResult[]> {
  for (const id of ids) assertSafeName(id, 'task id');
  const waitMs = options.waitMs ?? 10_000;
  if (!Number.isFinite(waitMs) || waitMs < 0)
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `cancel: waitMs must be a number of milliseconds ≥ 0, got ${String(waitMs)}`,
    );
  const request = { by: options.by, reason: options.reason };
  const checkNowhere = ids.length <= FEW;
  const asked = await windowed(ids, (id) => ask(ports, id, request, checkNowhere));
  const deadline = Date.now() + waitMs;
  return windowed(ids, async (id, i) => asked[i] ?? (await settle(ports, id, deadline)));
}

/** `fn` over `items`, WINDOW at a time, answers in order. */
async function windowed<T>(
  items: readonly string[],
  fn: (id: string, i: number) => Promise<T>,
): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < items.length; i += WINDOW)
    out.push(...(await Promise.all(items.slice(i, i + WINDOW).map((id, j) => fn(id, i + j)))));
  return out;
}

/** What a final status says about a cancel. */
export function outcomeOf(status: TaskStatus): CancelResult {
  return { id: '', outcome: status.state === 'cancelled' ? 'cancelled' : 'finished-first', status };
}

/** The request made; an answer already when the task has its status (or, checked, is nowhere). */
async function ask(
  ports: CancelPorts,
  id: string,
  request: CancelRequest,
  checkNowhere: boolean,
): Promise<CancelResult | undefined> {
  const client = ports.client();
  const done = await readResult(client, id);
  if (done) return { ...outcomeOf(parseStatus(done.data)), id };
  await createRequest(client, id, request);
  if (!checkNowhere || !(await nowhere(client, id))) return undefined;
  await client.remove(cancelPath(id)).catch(() => {});
  // It may have finished between the reads: its status says so.
  const late = await readResult(client, id);
  return late ? { ...outcomeOf(parseStatus(late.data)), id } : { id, outcome: 'not-found' };
}

async function settle(ports: CancelPorts, id: string, deadline: number): Promise<CancelResult> {
  const left = deadline - Date.now();
  if (left <= 0) return { id, outcome: 'pending' };
  try {
    return { ...outcomeOf(await ports.waitFor(id, left)), id };
  } catch (err) {
    if (hasCode(err, ErrorCodes.WAIT_TIMEOUT)) return { id, outcome: 'pending' };
    if (hasCode(err, ErrorCodes.TASK_NOT_FOUND)) return { id, outcome: 'not-found' };
    throw err;
  }
}

/** Create the request; one already there is the same request. */
async function createRequest(client: ZkClient, id: string, request: CancelRequest): Promise<void> {
  const data = encodeCancelRequest({ by: request.by, reason: request.reason });
  try {
    await client.create(cancelPath(id), data);
  } catch (err) {
    if (isZkError(err, 'NODE_EXISTS')) return;
    if (!isZkError(err, 'NO_NODE')) throw err;
    // A farm whose masters predate cancellation has no /cancel yet.
    await client.ensurePath(PATHS.cancel);
    await client.create(cancelPath(id), data).catch((e: unknown) => {
      if (!isZkError(e, 'NODE_EXISTS')) throw e;
    });
  }
}

async function nowhere(client: ZkClient, id: string): Promise<boolean> {
  if ((await whereIs(client, id)).kind !== 'nowhere') return false;
  await new Promise((r) => setTimeout(r, RECHECK_MS));
  return (await whereIs(client, id)).kind === 'nowhere';
}

/**
 * The ids of the tasks of `queue` still waiting (in /tasks, read in multiReads, and in the queue's
 * backlog lanes), in id order: what `runtime cancel --queue` cancels. Data that is not a task belongs
 * to no queue. A listing, not a snapshot: tasks handed out meanwhile are answered `finished-first` or
 * `cancelled` by the worker, tasks submitted meanwhile are not included.
 */
export async function waitingTasksOf(client: ZkClient, queue: string): Promise<string[]> {
  const ids = new Set<string>();
  const inbox = await client.getChildren(PATHS.tasks);
  const reads = await client.getDataMany(inbox.map(taskPath));
  reads.forEach((r, i) => {
    if (!('data' in r)) return;
    const parsed = parseTask(r.data);
    if (parsed.ok && queueOf(parsed.task) === queue) ids.add(inbox[i]!);
  });
  for (const lane of await backlogLanes(client)) {
    if (lane.queue !== queue) continue;
    const lanePath = backlogLanePath(lane.queue, lane.priority);
    for (const bucket of await childrenOf(client, lanePath))
      for (const id of await childrenOf(client, `${lanePath}/${bucket}`)) ids.add(id);
  }
  return [...ids].sort();
}

async function childrenOf(client: ZkClient, path: string): Promise<string[]> {
  return client.getChildren(path).catch((err: unknown) => {
    if (isZkError(err, 'NO_NODE')) return [];
    throw err;
  });
}

/**
 * A `waitFor` for callers without a Submitter (the dashboard): the status read every 100 ms until it
 * is there, or ZKFARM_WAIT_TIMEOUT. Cancels are few and short waits, so a poll costs less than a watch
 * kept for each.
 */
export function pollingWaitFor(client: () => ZkClient): CancelPorts['waitFor'] {
  return async (id, timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await readResult(client(), id);
      if (found) return parseStatus(found.data);
      if (Date.now() >= deadline)
        throw new ZkfarmError(ErrorCodes.WAIT_TIMEOUT, `no result for ${id} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
}
