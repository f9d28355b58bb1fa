/**
 * Status retention: results do not pile up forever.
 *
 * The leading master sweeps /status every `intervalMs`: it deletes the oldest statuses beyond `maxCount`,
 * then, oldest first, those created more than `maxAgeMs` ago (it stops at the first younger one: ids grow
 * with time). Deletes go in multis. A status is only ever deleted, never changed, so a sweep racing a
 * reader at worst makes that reader see NO_NODE for a result older than the retention.
 *
 * Keep `maxCount` well under ~50,000: a listing of /status must fit ZooKeeper's 1 MB packet limit.
 */
import { isZkError, type ZkClient } from '../zk/index.js';
import { PATHS, statusPath } from './protocol.js';

export interface RetentionOptions {
  /** Keep at most this many statuses. @defaultValue 10000 */
  maxCount?: number;
  /** Delete statuses older than this (ms). @defaultValue 86400000 (one day) */
  maxAgeMs?: number;
  /** Sweep interval (ms). @defaultValue 60000 */
  intervalMs?: number;
}

/** One sweep; returns how many statuses were removed. */
export async function sweepStatuses(
  client: ZkClient,
  options: RetentionOptions = {},
  now = Date.now(),
): Promise<number> {
  const maxCount = options.maxCount ?? 10_000;
  const maxAge = options.maxAgeMs ?? 86_400_000;
  const stat = await client.exists(PATHS.status);
  if (!stat || stat.numChildren === 0) return 0;
  const ids = (await client.getChildren(PATHS.status)).sort();
  const doomed = ids.slice(0, Math.max(0, ids.length - maxCount));
  // Age: walk from the oldest remaining until one is young enough.
  for (const id of ids.slice(doomed.length)) {
    const s = await client.exists(statusPath(id));
    if (!s) continue;
    if (now - s.ctime <= maxAge) break;
    doomed.push(id);
  }
  let removed = 0;
  for (let i = 0; i < doomed.length; i += 100) {
    const chunk = doomed.slice(i, i + 100);
    const tx = client.transaction();
    for (const id of chunk) tx.remove(statusPath(id));
    try {
      await tx.commit();
      removed += chunk.length;
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
      for (const id of chunk) if (await client.removeIfExists(statusPath(id))) removed++;
    }
  }
  return removed;
}
