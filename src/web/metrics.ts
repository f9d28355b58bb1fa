/**
 * /metrics: the farm in Prometheus text format (prom-client, on a registry of our own).
 *
 * Two sources, kept apart by name:
 *   zkfarm_tasks_*, zkfarm_queue_*, zkfarm_task_*, zkfarm_leader*, zkfarm_workers..., zkfarm_role_up
 *       from ZooKeeper alone (FarmObserver): the whole farm, whoever runs it; work without a host
 *   zkfarm_role_*, zkfarm_worker_tasks_*, zkfarm_master_*
 *       from this process's host: its own roles, exact, since each role's thread started
 * docs/dashboard.md says how each one is computed.
 *
 * Counters whose totals come from elsewhere (the feed, a role thread) are advanced by the difference
 * since the last update; a total that went down (a role thread restarted) counts as a reset.
 */
import client from 'prom-client';
import type { SessionState } from '../zk/supervisor.js';
import type { ObserverTick } from './farm-observer.js';
import type { Snapshot } from './snapshot.js';

const SESSION_STATES: readonly SessionState[] = [
  'connecting',
  'connected',
  'suspended',
  'reconnected',
  'lost',
  'closed',
];

/** Seconds: from a few ms (noop tasks) to 10 minutes. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export class FarmMetrics {
  readonly registry = new client.Registry();
  readonly #last = new Map<string, number>();

  readonly submitted = this.#counter(
    'zkfarm_tasks_submitted_total',
    'Tasks submitted since the dashboard started (derived: finished + growth of queued and in flight)',
  );
  readonly assigned = this.#counter(
    'zkfarm_tasks_assigned_total',
    'Runs of finished tasks: the attempts recorded in their statuses (one assignment per run)',
  );
  readonly completed = this.#counter(
    'zkfarm_tasks_completed_total',
    'New children of /status: tasks that got their one result',
  );
  readonly succeeded = this.#counter('zkfarm_tasks_succeeded_total', 'New statuses with state "succeeded"');
  readonly failed = this.#counter('zkfarm_tasks_failed_total', 'New statuses with state "failed"');
  readonly cancelled = this.#counter('zkfarm_tasks_cancelled_total', 'New statuses with state "cancelled"');
  readonly retried = this.#counter(
    'zkfarm_tasks_retried_total',
    'Runs tried again: attempts - 1 of each new status',
  );
  readonly queue = this.#gauge('zkfarm_queue_depth', 'Tasks waiting in /tasks');
  readonly blocked = this.#gauge(
    'zkfarm_queue_blocked_tasks',
    'Tasks in /tasks that no ready worker can take now, by what they need (shell, handler:<name>), as the leader says',
    ['needs'],
  );
  readonly delayed = this.#gauge(
    'zkfarm_queue_delayed_tasks',
    'Tasks in /tasks not due yet (notBefore), as the leader says',
  );
  readonly setAside = this.#gauge(
    'zkfarm_queue_set_aside_tasks',
    'Tasks in /tasks the leader cannot move (unreadable, undeletable, refused), as the leader says',
  );
  readonly queueWaiting = this.#gauge(
    'zkfarm_queue_waiting_tasks',
    'Tasks of a queue waiting (read by the leader), by queue and priority, as the leader says',
    ['queue', 'priority'],
  );
  readonly queueRunning = this.#gauge(
    'zkfarm_queue_running_tasks',
    'Tasks of a queue assigned and not finished, as the leader says',
    ['queue'],
  );
  readonly queuePaused = this.#gauge('zkfarm_queue_paused', '1 when the queue is paused (/queues/<queue>)', [
    'queue',
  ]);
  readonly queueRateLimit = this.#gauge(
    'zkfarm_queue_rate_limit',
    "The queue's rate limit in tasks started per second (absent: none)",
    ['queue'],
  );
  readonly queueConcurrency = this.#gauge(
    'zkfarm_queue_concurrency_limit',
    "The queue's concurrency cap (absent: none)",
    ['queue'],
  );
  readonly queueWorkers = this.#gauge(
    'zkfarm_queue_workers',
    'Live workers serving the queue (0: its tasks wait for one)',
    ['queue'],
  );
  readonly queueBlocked = this.#gauge(
    'zkfarm_queue_held_tasks',
    'Tasks of a queue that wait for a reason (paused, no worker, rate limit, concurrency cap, needs), as the leader says',
    ['queue'],
  );
  readonly inFlight = this.#gauge(
    'zkfarm_tasks_in_flight',
    'Tasks assigned to a worker and not finished (children of /assign/<worker>)',
    ['worker'],
  );
  readonly statuses = this.#gauge(
    'zkfarm_status_nodes',
    'Results kept in /status (retention removes old ones)',
  );
  readonly workers = this.#gauge('zkfarm_workers', 'Live workers (children of /workers)');
  readonly capacity = this.#gauge('zkfarm_worker_capacity', 'Tasks a worker runs at once, as it advertises', [
    'worker',
  ]);
  readonly paused = this.#gauge('zkfarm_worker_paused', '1 when a worker is paused or draining', ['worker']);
  readonly masters = this.#gauge('zkfarm_masters', 'Live masters (children of /masters)');
  readonly leader = this.#gauge('zkfarm_leader', '1 for the master that holds /master', ['master']);
  readonly leaderChanges = this.#counter(
    'zkfarm_leader_changes_total',
    'New /master nodes seen since the dashboard started',
  );
  readonly roleUp = this.#gauge(
    'zkfarm_role_up',
    '1 when the role has its ephemeral znode (/masters/<name> or /workers/<name>): a live session',
    ['role', 'kind'],
  );
  readonly duration = new client.Histogram({
    name: 'zkfarm_task_duration_seconds',
    help: 'Run time of finished tasks (finishedAt - startedAt of their status); sampled statuses only',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly submitToStatus = new client.Histogram({
    name: 'zkfarm_task_submit_to_status_seconds',
    help: 'From submit to result (finishedAt - submittedAt, or the submit time estimated from the task id); sampled statuses only',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly statusesRead = this.#counter(
    'zkfarm_dashboard_statuses_read_total',
    'Statuses the dashboard read',
  );
  readonly statusesUnread = this.#counter(
    'zkfarm_dashboard_statuses_unread_total',
    'New statuses the dashboard did not read (sampling under load)',
  );
  readonly dashboardRequests = this.#counter(
    'zkfarm_dashboard_zk_requests_total',
    'ZooKeeper requests the dashboard itself sent',
  );
  readonly dashboardConnected = this.#gauge(
    'zkfarm_dashboard_zk_connected',
    '1 while the dashboard has a ZooKeeper session',
  );

  // This process's roles (host).
  readonly roleRequests = this.#counter(
    'zkfarm_role_zk_requests_total',
    'ZooKeeper requests a role of this process sent (since its thread started)',
    ['role', 'kind'],
  );
  readonly roleSession = this.#gauge(
    'zkfarm_role_session_state',
    'Session state of a role of this process: 1 for its current state',
    ['role', 'kind', 'state'],
  );
  readonly roleRunning = this.#gauge('zkfarm_role_running', '1 when the role thread of this process runs', [
    'role',
    'kind',
  ]);
  readonly roleRestarts = this.#counter(
    'zkfarm_role_restarts_total',
    'Restarts of a role thread of this process after it died',
    ['role', 'kind'],
  );
  readonly workerRunning = this.#gauge(
    'zkfarm_worker_tasks_running',
    'Tasks a worker of this process runs now',
    ['worker'],
  );
  readonly workerQueued = this.#gauge(
    'zkfarm_worker_tasks_queued',
    'Tasks a worker of this process holds, not started (prefetch)',
    ['worker'],
  );
  readonly workerSucceeded = this.#counter(
    'zkfarm_worker_tasks_succeeded_total',
    'Tasks a worker of this process recorded as succeeded',
    ['worker'],
  );
  readonly workerFailed = this.#counter(
    'zkfarm_worker_tasks_failed_total',
    'Tasks a worker of this process recorded as failed',
    ['worker'],
  );
  readonly workerRetried = this.#counter(
    'zkfarm_worker_tasks_retried_total',
    'Runs a worker of this process put back for another attempt',
    ['worker'],
  );
  readonly masterAssigned = this.#counter(
    'zkfarm_master_tasks_assigned_total',
    'Tasks a master of this process moved from /tasks to a worker while it led',
    ['master'],
  );
  readonly masterGivenBack = this.#counter(
    'zkfarm_master_tasks_given_back_total',
    'Tasks a master of this process gave back from lost workers',
    ['master'],
  );
  readonly masterRejected = this.#counter(
    'zkfarm_master_tasks_rejected_total',
    'Tasks a master of this process failed as invalid or lost too often',
    ['master'],
  );
  readonly masterLeaderChanges = this.#counter(
    'zkfarm_master_leader_changes_total',
    'Times a master of this process saw the leadership change',
    ['master'],
  );

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false)
      client.collectDefaultMetrics({ register: this.registry, prefix: 'zkfarm_dashboard_' });
  }

  #counter<L extends string>(name: string, help: string, labelNames: L[] = []): client.Counter<L> {
    return new client.Counter({ name, help, labelNames, registers: [this.registry] });
  }

  #gauge<L extends string>(name: string, help: string, labelNames: L[] = []): client.Gauge<L> {
    return new client.Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  /** The per-queue gauges (labelled `queue`). */
  #updateQueues(s: Snapshot): void {
    for (const g of [
      this.queueWaiting,
      this.queueRunning,
      this.queuePaused,
      this.queueRateLimit,
      this.queueConcurrency,
      this.queueWorkers,
      this.queueBlocked,
    ])
      g.reset();
    for (const q of s.queues) {
      const queue = q.queue;
      for (const [priority, n] of Object.entries(q.byPriority)) this.queueWaiting.set({ queue, priority }, n);
      this.queueRunning.set({ queue }, q.running);
      this.queuePaused.set({ queue }, q.controls.paused ? 1 : 0);
      if (q.controls.rateLimit !== null) this.queueRateLimit.set({ queue }, q.controls.rateLimit);
      if (q.controls.concurrency !== null) this.queueConcurrency.set({ queue }, q.controls.concurrency);
      this.queueWorkers.set({ queue }, q.servedBy.length);
      this.queueBlocked.set(
        { queue },
        q.blocked.reduce((n, b) => n + b.tasks, 0),
      );
    }
  }

  /** Advance a counter to `total` (see the module comment). */
  #sync<L extends string>(
    counter: client.Counter<L>,
    total: number | undefined,
    labels?: Partial<Record<L, string>>,
  ): void {
    if (total === undefined || !Number.isFinite(total)) return;
    const key = `${(counter as unknown as { name: string }).name}${JSON.stringify(labels ?? {})}`;
    const last = this.#last.get(key) ?? 0;
    const delta = total >= last ? total - last : total;
    this.#last.set(key, total);
    if (delta > 0) {
      if (labels) counter.inc(labels as Partial<Record<L, string | number>>, delta);
      else counter.inc(delta);
    }
  }

  /** Histograms: every status read this tick. */
  observeTick(tick: ObserverTick): void {
    for (const r of tick.feed.records) {
      if (r.runMs !== undefined) this.duration.observe(r.runMs / 1000);
      if (r.s2sMs !== undefined) this.submitToStatus.observe(r.s2sMs / 1000);
    }
  }

  /** Everything else, from a snapshot (exact totals, not the rounded ones of the page). */
  update(s: Snapshot, exact: { totals: Snapshot['totals']; dashboardRequests: number }): void {
    const t = exact.totals;
    this.#sync(this.submitted, t.submitted);
    this.#sync(this.assigned, t.assigned);
    this.#sync(this.completed, t.completed);
    this.#sync(this.succeeded, t.succeeded);
    this.#sync(this.failed, t.failed);
    this.#sync(this.cancelled, t.cancelled);
    this.#sync(this.retried, t.retried);
    this.#sync(this.statusesRead, t.read);
    this.#sync(this.statusesUnread, t.unread);
    this.#sync(this.leaderChanges, s.leaderChanges);
    this.#sync(this.dashboardRequests, exact.dashboardRequests);
    this.dashboardConnected.set(s.zk.state === 'connected' || s.zk.state === 'reconnected' ? 1 : 0);
    this.queue.set(s.queue);
    this.blocked.reset();
    for (const b of s.waiting?.blocked ?? []) this.blocked.set({ needs: b.needs }, b.tasks);
    this.delayed.set(s.waiting?.delayed ?? 0);
    this.setAside.set(s.waiting?.setAsideCount ?? 0);
    this.#updateQueues(s);
    this.statuses.set(s.statuses);

    this.inFlight.reset();
    this.capacity.reset();
    this.paused.reset();
    this.roleUp.reset();
    this.leader.reset();
    this.roleSession.reset();
    this.roleRunning.reset();
    this.workerRunning.reset();
    this.workerQueued.reset();
    let liveWorkers = 0;
    for (const w of s.workers) {
      this.inFlight.set({ worker: w.name }, w.inFlight);
      if (w.capacity !== undefined) this.capacity.set({ worker: w.name }, w.capacity);
      this.paused.set({ worker: w.name }, w.paused || w.draining ? 1 : 0);
      if (w.alive) liveWorkers++;
    }
    this.workers.set(liveWorkers);
    this.masters.set(s.masters.filter((m) => m.alive).length);
    for (const m of s.masters) this.leader.set({ master: m.name }, m.leader ? 1 : 0);
    for (const r of [...s.masters, ...s.workers]) {
      this.roleUp.set({ role: r.name, kind: r.kind }, r.alive ? 1 : 0);
      if (!r.local) continue;
      const labels = { role: r.name, kind: r.kind };
      for (const state of SESSION_STATES)
        this.roleSession.set({ ...labels, state }, r.session === state ? 1 : 0);
      this.roleRunning.set(labels, r.state === 'running' ? 1 : 0);
      this.#sync(this.roleRequests, r.zkRequests, labels);
      this.#sync(this.roleRestarts, r.restarts, labels);
    }
    for (const w of s.workers) {
      if (!w.local) continue;
      const labels = { worker: w.name };
      if (w.running !== undefined) this.workerRunning.set(labels, w.running);
      if (w.queued !== undefined) this.workerQueued.set(labels, w.queued);
      if (w.running === undefined) continue; // down: keep its counters where they were
      this.#sync(this.workerSucceeded, w.succeeded, labels);
      this.#sync(this.workerFailed, w.failed, labels);
      this.#sync(this.workerRetried, w.retried, labels);
    }
    for (const m of s.masters) {
      if (!m.local || m.assigned === undefined) continue;
      const labels = { master: m.name };
      this.#sync(this.masterAssigned, m.assigned, labels);
      this.#sync(this.masterLeaderChanges, m.leaderChanges, labels);
    }
  }

  /** Host-only per-master counters that the snapshot does not carry. */
  updateMasterStats(
    stats: ReadonlyMap<string, { givenBack?: number; rejected?: number; kind: string }>,
  ): void {
    for (const [name, s] of stats) {
      if (s.kind !== 'master') continue;
      this.#sync(this.masterGivenBack, s.givenBack, { master: name });
      this.#sync(this.masterRejected, s.rejected, { master: name });
    }
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
