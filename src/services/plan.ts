/**
 * The reconciler's decisions, as a pure function of what it read: which instance to place, move,
 * update, fail or remove. No I/O, so every rule is tested on its own (test/unit/services-plan.test.ts).
 *
 * Rules, per service (desired = 0 while it is being removed, else `spec.instances`):
 * - Instances numbered ≥ desired are removed (scale down, rm).
 * - An instance number below desired without a placement is placed, with the current revision.
 * - An instance whose worker is gone is moved, keeping its revision, once the worker has been gone
 *   long enough for the instance to have stopped (`mayStillRun`, from runner.ts's fence bound).
 * - An instance its worker reports `failed` (a crash loop) moves to a worker it has not failed on, until
 *   it has failed on `restart.maxWorkers` workers or none is left: then it is failed for good.
 * - Rolling update: while instances run an older revision, one at a time is given the current one,
 *   the next only once every instance on the current revision is healthy. An instance of the current
 *   revision that fails, or is not healthy within `updateTimeoutMs`, fails the rollout: it stops, and
 *   the rest keep their older revision until the service is changed again.
 * Placement: live workers that are not draining, run shell (for a `cmd`) or have the handler, serve
 * one of `placement.queues`, are on one of `placement.hosts`, and have room (instances < capacity) and
 * at most `maxPerHost` of the service on their host; among them the one with the fewest of the service
 * on its host, then on itself, then the fewest instances in all.
 */
import type { InstanceRecord, RunRecord, ServiceRecord, ServiceSpec, ServiceStatus } from './model.js';

export interface WorkerView {
  name: string;
  host: string;
  capacity: number;
  shell: boolean;
  handlers: readonly string[];
  queues: readonly string[];
  draining: boolean;
  /** Its session's timeout, when it publishes it. */
  sessionTimeout?: number;
}

export interface ServiceView {
  name: string;
  record: ServiceRecord;
  status?: ServiceStatus;
  instances: ReadonlyMap<number, InstanceRecord & { spec?: ServiceSpec }>;
  running: ReadonlyMap<number, RunRecord>;
}

export type Action =
  | {
      kind: 'place';
      service: string;
      instance: number;
      worker: string;
      sessionTimeout?: number;
      from?: string;
      revision: number;
      spec: ServiceSpec;
      failedOn: string[];
      why: string;
    }
  | { kind: 'remove'; service: string; instance: number; worker: string }
  | { kind: 'fail'; service: string; instance: number; worker: string; failedOn: string[]; reason: string }
  | { kind: 'status'; service: string; status: ServiceStatus }
  | { kind: 'delete'; service: string };

export interface PlanInput {
  now: number;
  workers: readonly WorkerView[];
  services: readonly ServiceView[];
  /** When each worker that instances are placed on was first seen gone (ms). */
  goneSince: ReadonlyMap<string, number>;
  /** How long after its worker is gone an instance may still run (runner.ts: stillRunsAfterExpiry). */
  mayStillRun(inst: InstanceRecord, spec: ServiceSpec): number;
  /** Told when a gone worker's instance may move (the caller plans again then). */
  wakeAt?(time: number): void;
}

type Load = { total: Map<string, number>; byService: Map<string, Map<string, number>> };

function loads(services: readonly ServiceView[]): Load {
  const total = new Map<string, number>();
  const byService = new Map<string, Map<string, number>>();
  for (const s of services) {
    const m = new Map<string, number>();
    byService.set(s.name, m);
    for (const i of s.instances.values()) {
      if (i.state !== 'placed') continue;
      total.set(i.worker, (total.get(i.worker) ?? 0) + 1);
      m.set(i.worker, (m.get(i.worker) ?? 0) + 1);
    }
  }
  return { total, byService };
}

function addLoad(load: Load, service: string, worker: string, delta: number): void {
  load.total.set(worker, (load.total.get(worker) ?? 0) + delta);
  const m = load.byService.get(service)!;
  m.set(worker, (m.get(worker) ?? 0) + delta);
}

/** The best worker for one more instance of `spec`, or undefined when none may take it. */
export function chooseWorker(
  spec: ServiceSpec,
  workers: readonly WorkerView[],
  load: Load,
  exclude: readonly string[],
): WorkerView | undefined {
  const mine = load.byService.get(spec.name) ?? new Map<string, number>();
  const hostCount = new Map<string, number>();
  for (const w of workers) hostCount.set(w.host, (hostCount.get(w.host) ?? 0) + (mine.get(w.name) ?? 0));
  const p = spec.placement;
  let best: WorkerView | undefined;
  let bestKey: number[] = [];
  for (const w of workers) {
    if (w.draining || exclude.includes(w.name)) continue;
    if (spec.cmd !== undefined && !w.shell) continue;
    if (spec.handler !== undefined && !w.handlers.includes(spec.handler)) continue;
    if (p.queues && !p.queues.some((q) => w.queues.includes(q))) continue;
    if (p.hosts && !p.hosts.includes(w.host)) continue;
    if ((load.total.get(w.name) ?? 0) >= w.capacity) continue;
    const onHost = hostCount.get(w.host) ?? 0;
    if (p.maxPerHost !== undefined && onHost >= p.maxPerHost) continue;
    const key = [onHost, mine.get(w.name) ?? 0, load.total.get(w.name) ?? 0];
    if (!best || lexLess(key, bestKey) || (lexEqual(key, bestKey) && w.name < best.name)) {
      best = w;
      bestKey = key;
    }
  }
  return best;
}

const lexLess = (a: number[], b: number[]) => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
};
const lexEqual = (a: number[], b: number[]) => a.every((v, i) => v === b[i]);

export function plan(input: PlanInput): Action[] {
  const live = new Map(input.workers.map((w) => [w.name, w]));
  const load = loads(input.services);
  const actions: Action[] = [];
  for (const s of input.services) planService(s, input, live, load, actions);
  return actions;
}

function planService(
  s: ServiceView,
  input: PlanInput,
  live: Map<string, WorkerView>,
  load: Load,
  out: Action[],
): void {
  const { record } = s;
  const spec = record.spec;
  const desired = record.removing ? 0 : spec.instances;
  for (const [n, inst] of s.instances) {
    if (n < desired) continue;
    out.push({ kind: 'remove', service: s.name, instance: n, worker: inst.worker });
    if (inst.state === 'placed') addLoad(load, s.name, inst.worker, -1);
  }
  if (record.removing) {
    if (s.instances.size === 0 && s.running.size === 0) out.push({ kind: 'delete', service: s.name });
    return;
  }
  const workers = [...live.values()];
  const touched = new Set<number>();
  const place = (
    n: number,
    why: string,
    revision: number,
    instSpec: ServiceSpec,
    exclude: string[],
    failedOn: string[],
    from?: string,
  ) => {
    const w = chooseWorker(instSpec, workers, load, exclude);
    if (!w) return false;
    touched.add(n);
    out.push({
      kind: 'place',
      service: s.name,
      instance: n,
      worker: w.name,
      sessionTimeout: w.sessionTimeout,
      from,
      revision,
      spec: instSpec,
      failedOn,
      why,
    });
    addLoad(load, s.name, w.name, 1);
    if (from !== undefined) addLoad(load, s.name, from, -1);
    return true;
  };
  for (let n = 0; n < desired; n++) {
    const inst = s.instances.get(n);
    const run = s.running.get(n);
    if (!inst) {
      place(n, 'new instance', record.revision, spec, [], []);
      continue;
    }
    if (inst.state === 'failed') {
      // Failed for good until the service changes: a new revision gets a fresh start.
      if (inst.revision < record.revision)
        place(n, `new revision ${record.revision}`, record.revision, spec, [], [], inst.worker);
      continue;
    }
    const instSpec = inst.spec ?? spec;
    if (!live.has(inst.worker)) {
      const since = input.goneSince.get(inst.worker) ?? input.now;
      const movable = since + input.mayStillRun(inst, instSpec);
      if (input.now < movable) input.wakeAt?.(movable);
      else
        place(
          n,
          `worker ${inst.worker} is gone`,
          inst.revision,
          instSpec,
          [inst.worker],
          inst.failedOn,
          inst.worker,
        );
      continue;
    }
    if (run && run.worker === inst.worker && run.revision === inst.revision && run.state === 'failed') {
      if (inst.revision === record.revision && isRolling(s)) continue; // the rollout decides (below)
      const failedOn = [...inst.failedOn, inst.worker];
      const reason = run.reason ?? 'failed';
      if (
        failedOn.length >= instSpec.restart.maxWorkers ||
        !place(
          n,
          `failed on ${inst.worker}: ${reason}`,
          inst.revision,
          instSpec,
          failedOn,
          failedOn,
          inst.worker,
        )
      ) {
        touched.add(n);
        out.push({
          kind: 'fail',
          service: s.name,
          instance: n,
          worker: inst.worker,
          failedOn,
          reason: `failed on ${failedOn.join(', ')}: ${reason}`,
        });
        addLoad(load, s.name, inst.worker, -1);
      }
    }
  }
  planRollout(s, input.now, desired, out, (i) => !touched.has(i) && live.has(s.instances.get(i)!.worker));
}

/** Instances below the current revision remain (and the rollout of this revision has not failed). */
function isRolling(s: ServiceView): boolean {
  return [...s.instances.values()].some((i) => i.revision < s.record.revision);
}

function planRollout(
  s: ServiceView,
  now: number,
  desired: number,
  out: Action[],
  free: (n: number) => boolean,
): void {
  const rev = s.record.revision;
  const rollout = s.status?.rollout;
  const current = (i: InstanceRecord) => i.revision === rev;
  const list = [...s.instances].filter(([n, i]) => n < desired && i.state === 'placed');
  const old = list.filter(([n, i]) => !current(i) && free(n));
  if (rollout?.revision === rev && rollout.state === 'failed') return;
  if (list.every(([, i]) => current(i))) {
    if (rollout?.revision === rev && rollout.state === 'rolling')
      out.push({
        kind: 'status',
        service: s.name,
        status: { rollout: { revision: rev, state: 'done' }, updatedAt: now },
      });
    return;
  }
  for (const [n, i] of list.filter(([, i]) => current(i))) {
    const run = s.running.get(n);
    const ok = run && run.revision === rev && run.worker === i.worker;
    if (ok && run.state === 'healthy') continue;
    const failed = ok && (run.state === 'failed' || run.state === 'exited');
    const late = now - i.placedAt > s.record.spec.updateTimeoutMs;
    if (failed || late) {
      const reason = failed
        ? `instance ${n} of revision ${rev} failed on ${i.worker}: ${run.reason ?? run.lastExit ?? run.state}`
        : `instance ${n} of revision ${rev} was not healthy within ${s.record.spec.updateTimeoutMs} ms (updateTimeoutMs)`;
      out.push({
        kind: 'status',
        service: s.name,
        status: { rollout: { revision: rev, state: 'failed', reason, instance: n }, updatedAt: now },
      });
    }
    return; // one at a time: wait for this one
  }
  if (old.length === 0) return; // the old ones left are being moved
  // The next old instance: one that is not healthy first (it serves nobody now).
  old.sort(([a], [b]) => healthRank(s.running.get(a)) - healthRank(s.running.get(b)) || a - b);
  const [n, i] = old[0]!;
  out.push({
    kind: 'place',
    service: s.name,
    instance: n,
    worker: i.worker,
    sessionTimeout: i.sessionTimeout,
    from: i.worker,
    revision: rev,
    spec: s.record.spec,
    failedOn: [],
    why: `rolling update to revision ${rev}`,
  });
  if (rollout?.revision !== rev || rollout.state !== 'rolling')
    out.push({
      kind: 'status',
      service: s.name,
      status: { rollout: { revision: rev, state: 'rolling', instance: n }, updatedAt: now },
    });
}

const healthRank = (r: RunRecord | undefined) => (r?.state === 'healthy' ? 1 : 0);
