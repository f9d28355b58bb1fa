/**
 * The results the farm records, as the dashboard learns them from ZooKeeper alone.
 *
 * Znodes (read only): per tick, `getChildren /status` (its buckets, at most 100 for a million results)
 * and `exists` on each bucket (its cversion says whether its children changed); a bucket that changed
 * is listed; then `getData /status/<bucket>/<id>` of the new ids. Results still at flat paths (a farm
 * not yet upgraded) are the children of /status that are not buckets; one moved into its bucket by
 * the upgrade is not news.
 *
 * Cost, kept bounded for a busy farm: the buckets being written are listed, one listing each per tick
 * at most (never a watch that would re-list on every new result), and at most `readsPerSecond` status reads. When more results arrive than that,
 * a uniform random sample is read and every counter is scaled by new/read (the `weight`), so the totals
 * stay right on average while the reads stay capped; histograms and the failure list hold only what was
 * read. Ids that vanished before we read them (status retention) count as completed, state unknown.
 *
 * Counters start at zero when the dashboard starts: results present then are the baseline, not news.
 * The newest `initialWindow` of them are read once to fill the recent-failures list.
 */
import { statusBucketPath } from '../farm/protocol.js';
import { bucketIds, readResult, statusChildren } from '../farm/status-store.js';
import type { ZkClient } from '../zk/client.js';
import { type SubmitClock, taskSequence } from './submit-clock.js';

export interface StatusRecord {
  id: string;
  state: 'succeeded' | 'failed' | 'cancelled';
  worker: string | null;
  attempts: number;
  startedAt: number | null;
  finishedAt: number;
  error?: string;
  errorCode?: string;
  /** Submit-to-status latency (ms): from `submittedAt` in the status, else estimated (submit-clock.ts). */
  s2sMs?: number;
  /** finishedAt − startedAt (ms). */
  runMs?: number;
}

export interface FeedTick {
  /** New /status children this tick. */
  added: number;
  /** Statuses read this tick. */
  read: number;
  /** Each read status stands for this many new ones (1 unless sampling). */
  weight: number;
  completed: number;
  succeeded: number;
  failed: number;
  records: StatusRecord[];
}

export interface FeedTotals {
  completed: number;
  succeeded: number;
  failed: number;
  /** Σ (attempts − 1): runs that failed and were tried again. */
  retried: number;
  /** Tasks cancelled on request (their status is `cancelled`). */
  cancelled: number;
  /** Σ attempts of tasks a worker ran: one assignment per run. */
  assigned: number;
  /** New ids gone before they could be read. */
  unknown: number;
  /** Statuses read / not read (sampling). */
  read: number;
  unread: number;
}

export interface StatusFeedOptions {
  /** Most status reads per second. @defaultValue 200 */
  readsPerSecond?: number;
  /** Statuses read at start to fill the failures list. @defaultValue 200 */
  initialWindow?: number;
  /** Failures kept for the list. @defaultValue 50 */
  maxFailures?: number;
  /** Reads in flight at once. @defaultValue 32 */
  concurrency?: number;
}

export class StatusFeed {
  readonly totals: FeedTotals = {
    completed: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
    cancelled: 0,
    assigned: 0,
    unknown: 0,
    read: 0,
    unread: 0,
  };
  /** Per worker (by status.worker): succeeded/failed, weighted like the totals. */
  readonly byWorker = new Map<string, { succeeded: number; failed: number }>();
  /** Results kept at the last tick. */
  count = 0;
  /** When a tick last read only a sample of the new statuses (ms; 0: never). */
  lastSampledAt = 0;
  /** Per bucket: its cversion and ids at the last listing. */
  #known: Map<string, { cversion: number; ids: Set<string> }> | undefined;
  #failures: StatusRecord[] = [];
  #lastPoll = 0;
  readonly #readsPerSecond: number;
  readonly #initialWindow: number;
  readonly #maxFailures: number;
  readonly #concurrency: number;
  readonly #clock: SubmitClock;

  constructor(clock: SubmitClock, options: StatusFeedOptions = {}) {
    this.#clock = clock;
    this.#readsPerSecond = options.readsPerSecond ?? 200;
    this.#initialWindow = options.initialWindow ?? 200;
    this.#maxFailures = options.maxFailures ?? 50;
    this.#concurrency = options.concurrency ?? 32;
  }

  /** Failures seen, newest first. */
  get failures(): readonly StatusRecord[] {
    return this.#failures;
  }

  /** Look for new statuses once. */
  async poll(client: ZkClient, now = Date.now()): Promise<FeedTick> {
    const empty: FeedTick = {
      added: 0,
      read: 0,
      weight: 1,
      completed: 0,
      succeeded: 0,
      failed: 0,
      records: [],
    };
    const elapsed = this.#lastPoll ? Math.max(100, now - this.#lastPoll) : 1000;
    this.#lastPoll = now;
    const changed = await this.#changed(client);
    // Known ids and cversions move on only once the new ones are read: a failed read is retried next tick.
    const commit = () => this.#commit(changed);
    if (!this.#known) {
      await this.#seed(
        client,
        [...changed.lists.values()].flatMap((l) => l.ids),
      );
      commit();
      return empty;
    }
    const added = this.#added(changed);
    if (added.length === 0) {
      commit();
      return empty;
    }

    const budget = Math.max(1, Math.round((this.#readsPerSecond * Math.min(elapsed, 5000)) / 1000));
    const toRead = added.length <= budget ? added : pick(added, budget);
    if (toRead.length < added.length) this.lastSampledAt = now;
    const records = (
      await mapLimit(toRead, this.#concurrency, (id) => readStatus(client, id, this.#clock))
    ).filter((r): r is StatusRecord => r !== undefined);
    commit();
    const tick = this.#count(added.length, toRead.length, records);
    this.#addFailures(records);
    return tick;
  }

  /** Count the statuses read into the totals, each weighing for the unread ones it stands for. */
  #count(added: number, toRead: number, records: StatusRecord[]): FeedTick {
    const weight = records.length > 0 ? added / records.length : 0;
    const t = this.totals;
    t.completed += added;
    t.read += records.length;
    t.unread += added - toRead;
    if (records.length === 0) t.unknown += added;
    let succeeded = 0;
    let failed = 0;
    for (const r of records) {
      const w = this.#worker(r.worker);
      if (r.state === 'succeeded') {
        succeeded += weight;
        if (w) w.succeeded += weight;
      } else if (r.state === 'cancelled') {
        // Neither: a cancel is the user's choice, not the task's failure.
        t.cancelled += weight;
      } else {
        failed += weight;
        if (w) w.failed += weight;
      }
      t.retried += Math.max(0, r.attempts - 1) * weight;
      if (r.worker !== null) t.assigned += Math.max(1, r.attempts) * weight;
    }
    t.succeeded += succeeded;
    t.failed += failed;
    return { added, read: records.length, weight, completed: added, succeeded, failed, records };
  }

  /** Ids listed this tick that were not known (one moved by the upgrade from flat into its bucket is not new). */
  #added(changed: Changed): string[] {
    const known = this.#known!;
    const flat = known.get(FLAT)?.ids;
    const added: string[] = [];
    for (const [b, l] of changed.lists) {
      const before = known.get(b)?.ids;
      for (const id of l.ids) if (!before?.has(id) && !(b !== FLAT && flat?.has(id))) added.push(id);
    }
    return added;
  }

  #commit(changed: Changed): void {
    const known = this.#known ?? new Map<string, { cversion: number; ids: Set<string> }>();
    this.#known = known;
    for (const b of changed.gone) known.delete(b);
    for (const [b, l] of changed.lists) known.set(b, { cversion: l.cversion, ids: new Set(l.ids) });
    this.count = changed.count;
  }

  /** The buckets whose children changed since the last tick (and the flat results), listed. */
  async #changed(client: ZkClient): Promise<Changed> {
    const { buckets, flat } = await statusChildren(client);
    const stats = await Promise.all(buckets.map((b) => client.exists(statusBucketPath(b))));
    const lists = new Map<string, { cversion: number; ids: string[] }>();
    if (flat.length > 0 || this.#known?.has(FLAT)) lists.set(FLAT, { cversion: -1, ids: flat });
    let count = flat.length;
    const present = new Set<string>([FLAT]);
    for (const [i, b] of buckets.entries()) {
      const s = stats[i];
      if (!s) continue;
      present.add(b);
      count += s.numChildren;
      if (this.#known?.get(b)?.cversion !== s.cversion)
        lists.set(b, { cversion: s.cversion, ids: await bucketIds(client, b) });
    }
    const gone = [...(this.#known?.keys() ?? [])].filter((b) => !present.has(b));
    return { count, lists, gone };
  }

  /** Fill the failures list from the newest statuses present at start (not counted). */
  async #seed(client: ZkClient, children: string[]): Promise<void> {
    const newest = [...children].sort().slice(-this.#initialWindow);
    const records = await mapLimit(newest, this.#concurrency, (id) => readStatus(client, id, this.#clock));
    this.#addFailures(records.filter((r): r is StatusRecord => r !== undefined));
  }

  #addFailures(records: StatusRecord[]): void {
    const failed = records.filter((r) => r.state === 'failed');
    if (failed.length === 0) return;
    this.#failures = [...failed, ...this.#failures]
      .sort((a, b) => b.finishedAt - a.finishedAt || (a.id < b.id ? 1 : -1))
      .slice(0, this.#maxFailures);
  }

  #worker(name: string | null): { succeeded: number; failed: number } | undefined {
    if (name === null) return undefined;
    let w = this.byWorker.get(name);
    if (!w) {
      w = { succeeded: 0, failed: 0 };
      this.byWorker.set(name, w);
    }
    return w;
  }
}

/** The key of results still at flat paths among the known buckets. */
const FLAT = '';

interface Changed {
  /** Results kept (all buckets, and flat). */
  count: number;
  /** Buckets listed this tick (changed, or new). */
  lists: Map<string, { cversion: number; ids: string[] }>;
  /** Buckets known before that are gone. */
  gone: string[];
}

/** Read and parse one status leniently (another client may have written it); undefined when gone or not a status. */
async function readStatus(
  client: ZkClient,
  id: string,
  clock: SubmitClock,
): Promise<StatusRecord | undefined> {
  const found = await readResult(client, id);
  if (!found) return undefined;
  const data = found.data;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const known = v?.['state'] === 'succeeded' || v?.['state'] === 'failed' || v?.['state'] === 'cancelled';
  if (typeof v !== 'object' || v === null || !known) return undefined;
  const finishedAt = num(v['finishedAt']) ?? Date.now();
  const startedAt = num(v['startedAt']) ?? null;
  const r: StatusRecord = {
    id,
    state: v['state'] as StatusRecord['state'],
    worker: typeof v['worker'] === 'string' ? v['worker'] : null,
    attempts: num(v['attempts']) ?? 0,
    startedAt,
    finishedAt,
  };
  if (typeof v['error'] === 'string') r.error = v['error'].slice(0, 2000);
  if (typeof v['errorCode'] === 'string') r.errorCode = v['errorCode'].slice(0, 100);
  if (startedAt !== null) r.runMs = Math.max(0, finishedAt - startedAt);
  const submittedAt = num(v['submittedAt']) ?? clock.timeOf(taskSequence(id));
  if (submittedAt !== undefined) r.s2sMs = Math.max(0, Math.round(finishedAt - submittedAt));
  return r;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** `k` distinct items chosen uniformly at random. */
function pick<T>(items: readonly T[], k: number): T[] {
  const a = [...items];
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(Math.random() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, k);
}

/** Map with at most `limit` calls in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return out;
}
