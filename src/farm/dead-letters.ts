/**
 * Dead letters: the tasks that ended failed (past their attempts, timed out, lost with their worker),
 * found in their results, and what re-running one submits.
 *
 * Znodes: reads /status, /status/<bucket> (listings) and /status/<bucket>/<id> (multiReads of at most
 * READ_CHUNK results at a time); nothing is written here (a re-run is submitted by the Submitter).
 *
 * A failed result carries the task as it was submitted (`task`, protocol.ts), so a re-run needs nothing
 * but the result. A re-run carries the key `zkfarm-rerun:<original id>` (task-keys.ts), so asking twice
 * for the same re-run within the key window submits it once and answers the same id. Results are immutable: the link goes from the re-run to the original
 * (`_zkfarm.retryOf`, copied into the re-run's own result as `retryOf`).
 *
 * Cost: `failedResults` reads every kept result once, bucket by bucket, in id order; memory holds one
 * bucket's listing (at most 10,000 ids) and one chunk of results. Made for an operator's command, not a
 * hot path.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import { flatStatusPath, parseStatus, statusPath, type Task, type TaskStatus } from './protocol.js';
import { DEFAULT_QUEUE } from './queues.js';
import { bucketIds, statusChildren } from './status-store.js';

/** The idempotency key of a re-run: this prefix and the original's id. */
export const RERUN_KEY_PREFIX = 'zkfarm-rerun:';

/** Results read per multiRead while scanning. */
const READ_CHUNK = 500;

export interface FailedFilter {
  /** Only results finished at or after this time (ms since the epoch). */
  since?: number;
  /** Only tasks of this queue. */
  queue?: string;
  /** Only failures with this error code (e.g. ZKFARM_TASK_TIMEOUT). */
  errorCode?: string;
}

export interface FailedResult {
  id: string;
  status: TaskStatus;
}

function matches(s: TaskStatus, f: FailedFilter): boolean {
  if (s.state !== 'failed') return false;
  if (f.since !== undefined && s.finishedAt < f.since) return false;
  if (f.queue !== undefined && (s.task?.queue ?? DEFAULT_QUEUE) !== f.queue) return false;
  return f.errorCode === undefined || s.errorCode === f.errorCode;
}

/** Every kept failed result that matches, in id order (results at flat paths first). */
export async function* failedResults(
  client: ZkClient,
  filter: FailedFilter = {},
): AsyncGenerator<FailedResult> {
  const { buckets, flat } = await statusChildren(client);
  yield* readMatching(client, flat.sort(), flatStatusPath, filter);
  for (const bucket of buckets)
    yield* readMatching(client, (await bucketIds(client, bucket)).sort(), statusPath, filter);
}

async function* readMatching(
  client: ZkClient,
  ids: string[],
  pathOf: (id: string) => string,
  filter: FailedFilter,
): AsyncGenerator<FailedResult> {
  for (let i = 0; i < ids.length; i += READ_CHUNK) {
    const chunk = ids.slice(i, i + READ_CHUNK);
    const reads = await client.getDataMany(chunk.map(pathOf));
    for (const [j, r] of reads.entries()) {
      if (r instanceof Error) continue; // removed meanwhile (retention)
      let status: TaskStatus;
      try {
        status = parseStatus(r.data);
      } catch {
        continue; // not a result (written by hand): nothing to re-run
      }
      if (matches(status, filter)) yield { id: chunk[j]!, status };
    }
  }
}

/**
 * The task that re-runs a failed result: the task as submitted, its bookkeeping fresh, linked to the
 * original. Throws ZKFARM_NOT_RETRYABLE saying why when there is nothing to re-run.
 */
export function rerunOf(id: string, status: TaskStatus | undefined): Task {
  const no = (why: string) =>
    new ZkfarmError(ErrorCodes.NOT_RETRYABLE, `task ${id} cannot be re-run: ${why}`);
  if (!status) throw no('it has no result (still queued or running, or its result was removed by retention)');
  // A cancelled task keeps its task too: cancelled by mistake, it can be run after all.
  if (status.state !== 'failed' && status.state !== 'cancelled')
    throw no(`it ${status.state}: only failed or cancelled tasks are re-run`);
  if (!status.task)
    throw no(
      status['taskOmitted']
        ? 'the task was too large to keep in its result: submit it again yourself'
        : 'its result does not keep the task (it failed before it could be read, or before zkfarm kept failed tasks)',
    );
  // Its own idempotency key: re-running one failure twice (within the key window) makes one task. The
  // original's key is not reused: it is held by the original, so the re-run would be taken for it.
  const { key: _original, ...task } = status.task;
  return { ...task, key: `${RERUN_KEY_PREFIX}${id}`, _zkfarm: { attempts: 0, retryOf: id } };
}
