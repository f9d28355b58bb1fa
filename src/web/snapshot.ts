/**
 * What the page shows, in one JSON object: the farm as ZooKeeper shows it, merged with what this
 * process's host knows of its own roles. Sent over /events and served at /api/state.
 *
 * A role present in both is one card: ZooKeeper says whether it is alive (its ephemeral znode exists),
 * the host adds its thread state, session state and exact counters. A role known only to ZooKeeper
 * runs elsewhere (`local: false`): its counters are those the dashboard saw in /status.
 */

import type { QueueOverview } from '../farm/queue-admin.js';
import type { QueueSummary } from '../farm/queue-view.js';
import type { RoleThreadInfo, RoleThreadStats } from '../host/types.js';
import type { SessionState } from '../zk/supervisor.js';
import type { FarmObserver } from './farm-observer.js';
import type { Point } from './history.js';
import type { HostView } from './host-view.js';
import type { FeedTotals, StatusRecord } from './status-feed.js';

export interface RoleCard {
  name: string;
  kind: 'master' | 'worker';
  /** A role of this process: controls apply to it. */
  local: boolean;
  /** Its ephemeral znode exists (/masters/<name> or /workers/<name>). */
  alive: boolean;
  /** The host's state of the role ('running', 'failed', ...), or 'live'/'gone' from ZooKeeper alone. */
  state: string;
  /** The role's session state as the host reports it, or 'live'/'gone' from ZooKeeper alone. */
  session: string;
  sessionId?: string;
  /** Sessions the role has had (more than 1: it lost one). */
  sessions?: number;
  restarts?: number;
  host?: string;
  pid?: number;
  /** Masters: when it started (or took the lead). Workers: when it registered. */
  since?: number;
  zkRequests?: number;
}

export interface MasterCard extends RoleCard {
  kind: 'master';
  leader: boolean;
  assigned?: number;
  leaderChanges?: number;
}

export interface WorkerCard extends RoleCard {
  kind: 'worker';
  capacity?: number;
  prefetch?: number;
  paused: boolean;
  draining: boolean;
  /** Children of /assign/<name>: running plus prefetched. */
  inFlight: number;
  /** Exact, local workers only. */
  running?: number;
  queued?: number;
  /** Local: the role's own counters since its thread started. Remote: seen in /status since the dashboard started. */
  succeeded: number;
  failed: number;
  retried?: number;
  /** Local: run time percentiles of its last 1000 tasks (ms). */
  latency?: { p50: number; p95: number; max: number };
}

export interface Snapshot {
  /** ms since the epoch. */
  t: number;
  zk: { state: SessionState; connect: string };
  controls: boolean;
  /** No host: the farm from ZooKeeper alone, nothing to control. */
  readOnly: boolean;
  leader: string | null;
  leaderSince: number | null;
  leaderChanges: number;
  masters: MasterCard[];
  workers: WorkerCard[];
  queue: number;
  /** What the leader says waits in /tasks for a reason (blocked needs, delayed, set aside), if it leads. */
  waiting: QueueSummary | null;
  /** Per queue: controls, waiting by priority, running, who serves it, why tasks wait. */
  queues: QueueOverview[];
  inFlight: number;
  /** Σ of running over the workers (exact for local workers, in flight for the others). */
  running: number;
  statuses: number;
  /** Tasks finished per second over the last 10 s. */
  rate: number;
  failed5m: number;
  latency: { p50: number | null; p95: number | null; p99: number | null; count: number };
  totals: FeedTotals & { submitted: number };
  failures: StatusRecord[];
  /** In the last minute more results arrived than the dashboard reads: counts are scaled from a sample. */
  sampling: boolean;
  point?: Point;
}

export interface SnapshotInput {
  observer: FarmObserver;
  hostView?: HostView;
  zkState: SessionState;
  connect: string;
  controls: boolean;
  point?: Point;
}

export function buildSnapshot(input: SnapshotInput, now = Date.now()): Snapshot {
  const { observer, hostView } = input;
  const view = observer.view();
  const localRoles = new Map<string, RoleThreadInfo>((hostView?.roles ?? []).map((r) => [r.name, r]));
  const stats = hostView?.stats ?? new Map<string, RoleThreadStats>();

  const masters = new Map<string, MasterCard>();
  for (const m of view.masters) {
    masters.set(m.name, {
      name: m.name,
      kind: 'master',
      local: false,
      alive: true,
      state: 'live',
      session: 'live',
      leader: view.leader?.name === m.name,
      host: m.host,
      pid: m.pid,
      since: m.since,
    });
  }
  const workers = new Map<string, WorkerCard>();
  for (const w of view.workers) {
    const seen = observer.feed.byWorker.get(w.name);
    workers.set(w.name, {
      name: w.name,
      kind: 'worker',
      local: false,
      alive: w.alive,
      state: w.alive ? 'live' : 'gone',
      session: w.alive ? 'live' : 'gone',
      capacity: w.capacity,
      prefetch: w.prefetch,
      paused: w.paused === true,
      draining: w.draining === true,
      inFlight: w.inFlight,
      succeeded: Math.round(seen?.succeeded ?? 0),
      failed: Math.round(seen?.failed ?? 0),
      host: w.host,
      pid: w.pid,
      since: w.startedAt,
    });
  }

  for (const r of localRoles.values()) {
    const s = stats.get(r.name);
    const local = {
      local: true,
      state: r.state,
      session: r.session,
      sessionId: r.sessionId,
      sessions: r.sessions,
      restarts: hostView?.restarts.get(r.name) ?? 0,
      zkRequests: s?.zkRequests,
    };
    if (r.kind === 'master') {
      const card: MasterCard = masters.get(r.name) ?? {
        name: r.name,
        kind: 'master',
        alive: false,
        leader: false,
        ...local,
      };
      Object.assign(card, local, { assigned: s?.assigned, leaderChanges: s?.leaderChanges });
      // ZooKeeper's /master is the truth about who leads; a master that is down leads nothing.
      card.leader = view.leader?.name === r.name && r.state === 'running';
      masters.set(r.name, card);
    } else {
      const card: WorkerCard = workers.get(r.name) ?? {
        name: r.name,
        kind: 'worker',
        alive: false,
        paused: false,
        draining: false,
        inFlight: 0,
        succeeded: 0,
        failed: 0,
        ...local,
      };
      Object.assign(card, local);
      card.capacity ??= r.capacity;
      card.paused = card.paused || r.paused === true;
      if (s) {
        card.running = s.running;
        card.queued = s.queued;
        card.succeeded = s.succeeded ?? 0;
        card.failed = s.failed ?? 0;
        card.retried = s.retried;
        if (s.latency && s.latency.count > 0)
          card.latency = { p50: s.latency.p50, p95: s.latency.p95, max: s.latency.max };
      }
      workers.set(r.name, card);
    }
  }

  const byName = <T extends { name: string }>(a: T, b: T) =>
    a.name.localeCompare(b.name, undefined, { numeric: true });
  const workerList = [...workers.values()].sort(byName);
  const totals = observer.feed.totals;
  return {
    t: now,
    zk: { state: input.zkState, connect: input.connect },
    controls: input.controls,
    readOnly: hostView === undefined,
    leader: view.leader?.name ?? null,
    leaderSince: view.leader?.since || null,
    leaderChanges: view.leaderChanges,
    masters: [...masters.values()].sort(byName),
    workers: workerList,
    queue: view.queue,
    waiting: view.leader?.queue ?? null,
    queues: view.queues,
    inFlight: view.inFlight,
    running: workerList.reduce((n, w) => n + (w.running ?? w.inFlight), 0),
    statuses: view.statuses,
    rate: observer.history.rate(now),
    failed5m: Math.round(observer.history.failedSince(now)),
    latency: observer.history.latency(now),
    totals: { ...roundTotals(totals), submitted: view.submitted },
    failures: observer.feed.failures.slice(0, 20),
    sampling: now - observer.feed.lastSampledAt < 60_000,
    point: input.point,
  };
}

function roundTotals(t: FeedTotals): FeedTotals {
  const out = { ...t };
  for (const k of Object.keys(out) as Array<keyof FeedTotals>) out[k] = Math.round(out[k]);
  return out;
}
