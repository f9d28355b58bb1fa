/**
 * The results under /status, sharded into buckets (protocol.ts statusBucket): making the buckets their
 * writers need, finding a result, listing and counting the buckets. Every writer and reader of results
 * goes through here, so the layout is known in one place.
 *
 * Znodes: creates /status/<bucket> (persistent, empty) when a move records a result in a bucket this
 * client has not seen yet; reads /status/<bucket>/<id>, and during an upgrade the flat /status/<id>.
 *
 * Making buckets: ahead of the multi, idempotently (a create whose NODE_EXISTS is fine), remembered per
 * client. Two writers of one bucket race harmlessly: both creates are idempotent and neither is part of
 * a move's multi. Retention removes buckets that are empty, so a bucket remembered may be gone: a move
 * refused with NO_NODE on its status (its bucket is missing) has its bucket made again and is sent again
 * (`writeMoves`), its other operations unchanged, so the move stays one multi.
 *
 * SUSPENDED / LOST: a create that fails throws (the caller's round or flush goes again); nothing is
 * remembered for a bucket whose create did not answer.
 */
import type { MultiBatcher, Refusal, WriteResult } from '../recipes/multi-batcher.js';
import type { Stat, ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import type { Move } from './moves.js';
import {
  flatStatusPath,
  isStatusBucket,
  PATHS,
  statusBucket,
  statusBucketPath,
  statusPath,
} from './protocol.js';

/** Buckets known to exist, per client (a new session's client starts afresh). */
const known = new WeakMap<ZkClient, Set<string>>();
/** More buckets than a farm of 10^8 kept results has: past it, the set starts over (a bound, not a tuning). */
const KNOWN_MAX = 10_000;

function knownOf(client: ZkClient): Set<string> {
  let set = known.get(client);
  if (!set) {
    set = new Set();
    known.set(client, set);
  }
  return set;
}

/** Make the buckets these moves record results in, unless this client knows they exist. */
export function ensureBuckets(client: ZkClient, moves: readonly Move[]): Promise<void> {
  const ids: string[] = [];
  for (const m of moves) if (m.status !== undefined) ids.push(m.id);
  return ids.length > 0 ? ensureBucketsOf(client, ids) : Promise.resolve();
}

/** Make the buckets of these task ids' results, unless this client knows they exist. */
export async function ensureBucketsOf(client: ZkClient, ids: Iterable<string>): Promise<void> {
  const set = knownOf(client);
  const missing = new Set<string>();
  for (const id of ids) {
    const b = statusBucket(id);
    if (!set.has(b)) missing.add(b);
  }
  if (missing.size === 0) return;
  await Promise.all([...missing].map((b) => client.ensurePath(statusBucketPath(b))));
  if (set.size + missing.size > KNOWN_MAX) set.clear();
  for (const b of missing) set.add(b);
}

/** Retention removed this bucket (or saw it gone): it must be made again before the next result. */
export function forgetBucket(client: ZkClient, bucket: string): void {
  known.get(client)?.delete(bucket);
}

/** A move refused because its result's bucket is missing (removed by retention while it was known). */
function bucketMissing(r: Refusal<Move>): boolean {
  return r.item.status !== undefined && r.error.code === 'NO_NODE' && r.error.path === statusPath(r.item.id);
}

/**
 * Write moves with a batcher, their buckets made first; a move refused for a missing bucket is sent
 * again once its bucket is made again (twice at most: a bucket removed again meanwhile is reported as
 * the refusal it is). Like the batcher's write it never rejects: a bucket that cannot be made
 * (connection trouble, the session lost) leaves its moves `unsent`, with the error in `stoppedBy`.
 */
export async function writeMoves<M extends Move>(
  batcher: MultiBatcher,
  client: ZkClient,
  moves: readonly M[],
  onWritten?: (items: M[], mark: number) => void,
): Promise<WriteResult<M>> {
  const unmade = await bucketsFailed(client, moves);
  if (unmade !== undefined) return { written: [], refused: [], unsent: [...moves], stoppedBy: unmade.err };
  const r = await batcher.write(moves, onWritten);
  for (let round = 0; round < 2 && r.stoppedBy === undefined; round++) {
    const again = r.refused.filter(bucketMissing);
    if (again.length === 0) break;
    r.refused = r.refused.filter((x) => !again.includes(x));
    for (const x of again) forgetBucket(client, statusBucket(x.item.id));
    const items = again.map((x) => x.item);
    const failed = await bucketsFailed(client, items);
    if (failed !== undefined) {
      r.unsent.push(...items);
      r.stoppedBy = failed.err;
      break;
    }
    const next = await batcher.write(items, onWritten);
    r.written.push(...next.written);
    r.unsent.push(...next.unsent);
    // An item whose first attempt's answer was lost keeps saying so.
    const lost = new Set(again.filter((x) => x.afterLoss).map((x) => x.item));
    for (const x of next.refused) r.refused.push(lost.has(x.item) ? { ...x, afterLoss: true } : x);
    r.stoppedBy ??= next.stoppedBy;
  }
  return r;
}

/** Make the moves' buckets; the error when that failed. */
async function bucketsFailed(
  client: ZkClient,
  moves: readonly Move[],
): Promise<{ err: unknown } | undefined> {
  try {
    await ensureBuckets(client, moves);
    return undefined;
  } catch (err) {
    return { err };
  }
}

/**
 * A task's result node: in its bucket, else (a farm not yet upgraded) at the flat path; null when it
 * has none.
 */
export async function readResult(client: ZkClient, id: string): Promise<{ data: Buffer; stat: Stat } | null> {
  for (const path of [statusPath(id), flatStatusPath(id)]) {
    try {
      return await client.getData(path);
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err;
    }
  }
  return null;
}

/** Does the task have a result (in its bucket, or at the flat path of a farm not yet upgraded)? */
export async function hasResult(client: ZkClient, id: string): Promise<boolean> {
  const [inBucket, flat] = await Promise.all([
    client.exists(statusPath(id)),
    client.exists(flatStatusPath(id)),
  ]);
  return inBucket !== null || flat !== null;
}

/** The children of /status: its buckets (in id order) and results still at flat paths. */
export async function statusChildren(client: ZkClient): Promise<{ buckets: string[]; flat: string[] }> {
  let names: string[];
  try {
    names = await client.getChildren(PATHS.status);
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return { buckets: [], flat: [] };
    throw err;
  }
  const buckets = names.filter(isStatusBucket).sort(byBucket);
  // Any other child is a result of the flat layout, named by its task id.
  const flat = names.filter((n) => !isStatusBucket(n));
  return { buckets, flat };
}

/** Buckets in id order, `other` last. */
export function byBucket(a: string, b: string): number {
  if (a === b) return 0;
  if (b === 'other') return -1;
  if (a === 'other') return 1;
  return a < b ? -1 : 1;
}

/** Results kept: the children of every bucket, plus results still at flat paths. */
export async function countResults(client: ZkClient): Promise<number> {
  const { buckets, flat } = await statusChildren(client);
  const stats = await Promise.all(buckets.map((b) => client.exists(statusBucketPath(b))));
  return stats.reduce((n, s) => n + (s?.numChildren ?? 0), flat.length);
}

/** The ids in one bucket ([] when it is gone). */
export async function bucketIds(client: ZkClient, bucket: string): Promise<string[]> {
  try {
    return await client.getChildren(statusBucketPath(bucket));
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return [];
    throw err;
  }
}

/** The newest `n` result ids by id (the highest buckets first), in id order. */
export async function newestResultIds(client: ZkClient, n: number): Promise<string[]> {
  const { buckets, flat } = await statusChildren(client);
  const out: string[] = [];
  for (let i = buckets.length - 1; i >= 0 && out.length < n; i--) {
    if (buckets[i] === 'other') continue;
    out.push(
      ...(await bucketIds(client, buckets[i]!))
        .sort()
        .reverse()
        .slice(0, n - out.length),
    );
  }
  if (out.length < n)
    out.push(
      ...flat
        .sort()
        .reverse()
        .slice(0, n - out.length),
    );
  return out.reverse();
}

/** Every result id, bucket by bucket (a listing per bucket: for tools and tests, not a hot path). */
export async function allResultIds(client: ZkClient): Promise<string[]> {
  const { buckets, flat } = await statusChildren(client);
  const lists = await Promise.all(buckets.map((b) => bucketIds(client, b)));
  return [...flat, ...lists.flat()];
}
