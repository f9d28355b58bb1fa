/**
 * Upgrading results in place: from the flat layout (`/status/<task-id>`, before buckets) to buckets
 * (`/status/<bucket>/<task-id>`, protocol.ts statusPath). The leading master runs it when it takes the
 * lead and before each retention sweep, so a farm started on an old layout, or with an old worker still
 * writing flat results during a rolling upgrade, ends up with every result in its bucket.
 *
 * Znodes: lists /status; reads the stat, then the data, of each flat result; moves each one in a multi
 * item (create /status/<bucket>/<id> with the same data, delete /status/<id> at the version read), many
 * items per multi (MultiBatcher); makes buckets first (status-store.ts); when no flat result is left,
 * writes the layout mark in /status's data (`{"layout": "buckets", ...}`, docs/protocol.md).
 *
 * Guarantees:
 * - Each result is moved exactly once: its create and delete are one item of one multi (all or nothing),
 *   and the delete is at the version read, so a result changed meanwhile is read again next time.
 * - Results move in the order they were written (czxid), so retention, which orders by creation, keeps
 *   their relative order; all of them count as finished at the upgrade (their new nodes' creation).
 * - Readers find a result during the move: they look in its bucket first, then at its flat path
 *   (status-store.ts readResult); a waiter's watch on the bucket path fires when the result lands there.
 * - A result already in its bucket (a task that ran again after the old one was recorded): the bucket's
 *   is kept, the flat one removed, and this is logged.
 *
 * Memory: the flat ids and their czxids at once (a flat /status cannot list more than ~60,000 under
 * ZooKeeper's 1 MB packet limit anyway), the data of READ_CHUNK results at a time.
 *
 * SUSPENDED / LOST: requests fail and it throws, or the batcher stops with the term's signal; what was
 * not moved stays flat (still readable) and the next run, or the next leader, moves it.
 */
import { MultiBatcher } from '../recipes/multi-batcher.js';
import type { Stat, ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import { encode, flatStatusPath, PATHS, statusPath } from './protocol.js';
import { ensureBucketsOf, statusChildren } from './status-store.js';

/** Results read and moved per step. */
const READ_CHUNK = 1000;
/** Stats read at once while ordering. */
const STAT_WINDOW = 500;

/** What /status's data says once every result is in its bucket. */
export const LAYOUT_MARK = { layout: 'buckets', bucketDigits: 6 } as const;

export interface UpgradeReport {
  moved: number;
  /** Flat results dropped because their task had a result in its bucket already. */
  duplicates: number;
  /** Flat results left (changed while read, or refused): the next run goes on. */
  left: number;
}

interface Flat {
  id: string;
  zxid: bigint;
}

/** Move every flat result into its bucket; mark /status once none is left. */
export async function upgradeStatusLayout(
  client: ZkClient,
  log: Logger,
  signal?: AbortSignal,
): Promise<UpgradeReport> {
  const report: UpgradeReport = { moved: 0, duplicates: 0, left: 0 };
  const { flat } = await statusChildren(client);
  if (flat.length > 0) {
    log.info({ results: flat.length }, 'moving results from flat /status paths into their buckets');
    const ordered = await inWriteOrder(client, flat);
    const batcher = new MultiBatcher(client, signal ? { signal } : {});
    for (let i = 0; i < ordered.length && !signal?.aborted; i += READ_CHUNK)
      await moveChunk(client, batcher, ordered.slice(i, i + READ_CHUNK), report, log);
    report.left = (await statusChildren(client)).flat.length;
    log.info(report, `moved ${report.moved} results into their buckets`);
  }
  if (report.left === 0 && !signal?.aborted) await markUpgraded(client);
  return report;
}

/** The flat results by czxid (gone ones left out). */
async function inWriteOrder(client: ZkClient, ids: string[]): Promise<string[]> {
  const out: Flat[] = [];
  for (let i = 0; i < ids.length; i += STAT_WINDOW) {
    const part = ids.slice(i, i + STAT_WINDOW);
    const stats = await Promise.all(part.map((id) => client.exists(flatStatusPath(id))));
    stats.forEach((s: Stat | null, k) => {
      if (s) out.push({ id: part[k]!, zxid: s.czxid });
    });
  }
  return out.sort((a, b) => (a.zxid < b.zxid ? -1 : a.zxid > b.zxid ? 1 : 0)).map((f) => f.id);
}

async function moveChunk(
  client: ZkClient,
  batcher: MultiBatcher,
  ids: string[],
  report: UpgradeReport,
  log: Logger,
): Promise<void> {
  const reads = await client.getDataMany(ids.map(flatStatusPath));
  const items: Array<{ id: string; version: number; ops: MoveOps }> = [];
  reads.forEach((r, k) => {
    if (r instanceof Error) {
      if (r.code !== 'NO_NODE') throw r;
      return;
    }
    items.push(moveItem(ids[k]!, r.data, r.stat.version));
  });
  await ensureBucketsOf(
    client,
    items.map((x) => x.id),
  );
  const r = await batcher.write(items);
  report.moved += r.written.length;
  const dropped: typeof items = [];
  for (const { item, error } of r.refused) {
    if (error.code === 'NODE_EXISTS' && error.path === statusPath(item.id)) dropped.push(item);
    else if (error.code !== 'NO_NODE' && error.code !== 'BAD_VERSION')
      log.warn(
        { task: item.id, code: error.code, path: error.path },
        `could not move the result of ${item.id} into its bucket (${error.code} on ${error.path}); it stays at ` +
          `${flatStatusPath(item.id)}, readable, and the next leader term tries again`,
      );
  }
  if (r.stoppedBy !== undefined) throw r.stoppedBy;
  if (dropped.length === 0) return;
  const d = await batcher.write(
    dropped.map((x) => ({
      id: x.id,
      ops: [{ op: 'delete' as const, path: flatStatusPath(x.id), version: x.version }],
    })),
  );
  report.duplicates += d.written.length;
  log.warn(
    { tasks: d.written.slice(0, 10).map((x) => x.id), count: d.written.length },
    "results at flat /status paths whose task had a result in its bucket already were removed (the bucket's is the later run's)",
  );
}

type MoveOps = Array<
  { op: 'create'; path: string; data: Buffer } | { op: 'delete'; path: string; version: number }
>;

function moveItem(id: string, data: Buffer, version: number) {
  return {
    id,
    version,
    ops: [
      { op: 'create', path: statusPath(id), data },
      { op: 'delete', path: flatStatusPath(id), version },
    ] as MoveOps,
  };
}

/** Write the layout mark into /status's data unless it is there. */
async function markUpgraded(client: ZkClient): Promise<void> {
  try {
    const { data, stat } = await client.getData(PATHS.status);
    if (isMarked(data)) return;
    await client.setData(PATHS.status, encode({ ...LAYOUT_MARK, upgradedAt: Date.now() }), stat.version);
  } catch (err) {
    // Gone, or changed meanwhile: the next run marks it.
    if (!isZkError(err, 'NO_NODE', 'BAD_VERSION')) throw err;
  }
}

/** Does /status's data carry the layout mark? */
export function isMarked(data: Buffer | null): boolean {
  if (!data || data.length === 0) return false;
  try {
    return (JSON.parse(data.toString('utf8')) as { layout?: unknown }).layout === LAYOUT_MARK.layout;
  } catch {
    return false;
  }
}
