/**
 * The reconciler's decisions, as a pure function of what it read: which instance to place, move,
 * update, fail or remove. No I/O, so every rule is tested on its own (test/unit/services-plan.test.ts).
 *
 * Rules, per service (desired = 0 while it is being removed, else `spec.instances`):
 * - Instances numbered ≥ desired are removed (scale down, rm).
 * - An instance number below desired without a placement is placed, with the current revision.
 * - An instance whose worker is gone is moved, keeping its revision, once the worker has been gone
 *   long enough for the instance to have stopped (`mayStillRun`, from the fence bound: fence.ts), or at
 *   once when the worker stopped cleanly and handed its instances over (`handedOver`).
 * - An instance its worker reports `failed` (a crash loop) moves to a worker it has not failed on, until
 *   it has failed on `restart.maxWorkers` workers or none is left: then it is failed for good.
 * - Rolling update: while instances run an older revision, one at a time is given the current one,
 *   the next only once every instance on the current revision is healthy. An instance of the current
 *   revision that fails, or is not healthy within `updateTimeoutMs`, fails the rollout: it stops, and
 *   the rest keep their older revision until the service is changed again.
 * Placement follows placement-rules.ts; when no worker may take an instance, the rule that left none is
 * why (`Unplaced`: a code and a sentence), kept in the service's status until the instance has a
 * place. The status action is planned only when what the status says changes.
 */
import type {
  InstanceRecord,
  RunRecord,
  ServiceRecord,
  ServiceSpec,
  ServiceStatus,
  Unplaced,
} from './model.js';
import { addLoad, chooseWorker, type Load, loads, type WorkerView } from './placement-rules.js';

export type { WorkerView } from './placement-rules.js';

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
  /** How long after its worker is gone an instance may still run (fence.ts: stillRunsAfterExpiry). */
  mayStillRun(inst: InstanceRecord, spec: ServiceSpec): number;
  /** Told when a gone worker's instance may move (the caller plans again then). */
  wakeAt?(time: number): void;
  /** Gone workers that stopped cleanly: they stopped their instances and handed them over (runner.ts). */
  handedOver?: ReadonlySet<string>;
}

export function plan(input: PlanInput): Action[] {
  const live = new Map(input.workers.map((w) => [w.name, w]));
  const load = loads(input.services, input.workers);
  const actions: Action[] = [];
  for (const s of input.services) planService(s, input, live, load, actions);
  return actions;
}

/** What one service's plan adds up to: its actions and what its status should say. */
interface ServicePlan {
  out: Action[];
  unplaced: Unplaced[];
  /** A new rollout state (undefined: unchanged). */
  rollout?: ServiceStatus['rollout'];
  /** Instances given a new place (or failed) in this pass: the rollout leaves them alone. */
  touched: Set<number>;
}

function planService(
  s: ServiceView,
  input: PlanInput,
  live: Map<string, WorkerView>,
  load: Load,
  out: Action[],
): void {
  const { record } = s;
  const desired = record.removing ? 0 : record.spec.instances;
  for (const [n, inst] of s.instances) {
    if (n < desired) continue;
    out.push({ kind: 'remove', service: s.name, instance: n, worker: inst.worker });
    if (inst.state === 'placed') addLoad(load, s.name, inst.worker, -1);
  }
  if (record.removing) {
    if (s.instances.size === 0 && s.running.size === 0) out.push({ kind: 'delete', service: s.name });
    return;
  }
  const p: ServicePlan = { out, unplaced: [], touched: new Set() };
  for (let n = 0; n < desired; n++) planInstance(s, n, input, live, load, p);
  planRollout(s, input.now, desired, p, (i) => !p.touched.has(i) && live.has(s.instances.get(i)!.worker));
  const status: ServiceStatus = {
    rollout: p.rollout ?? s.status?.rollout,
    unplaced: p.unplaced.length > 0 ? p.unplaced : undefined,
    updatedAt: input.now,
  };
  if (!sameStatus(status, s.status)) out.push({ kind: 'status', service: s.name, status });
}

/** Place instance n of `s` on the best worker; false (and why, for the status) when none may take it. */
function place(
  s: ServiceView,
  n: number,
  to: {
    why: string;
    revision: number;
    spec: ServiceSpec;
    exclude: string[];
    failedOn: string[];
    from?: string;
  },
  workers: readonly WorkerView[],
  load: Load,
  p: ServicePlan,
): boolean {
  const chosen = chooseWorker(to.spec, workers, load, to.exclude);
  if ('unplaceable' in chosen) {
    p.unplaced.push({ instance: n, ...chosen.unplaceable });
    return false;
  }
  const w = chosen.worker;
  p.touched.add(n);
  p.out.push({
    kind: 'place',
    service: s.name,
    instance: n,
    worker: w.name,
    sessionTimeout: w.sessionTimeout,
    from: to.from,
    revision: to.revision,
    spec: to.spec,
    failedOn: to.failedOn,
    why: to.why,
  });
  addLoad(load, s.name, w.name, 1);
  if (to.from !== undefined) addLoad(load, s.name, to.from, -1);
  return true;
}

function planInstance(
  s: ServiceView,
  n: number,
  input: PlanInput,
  live: Map<string, WorkerView>,
  load: Load,
  p: ServicePlan,
): void {
  const { record } = s;
  const spec = record.spec;
  const workers = [...live.values()];
  const inst = s.instances.get(n);
  const run = s.running.get(n);
  if (!inst) {
    place(
      s,
      n,
      { why: 'new instance', revision: record.revision, spec, exclude: [], failedOn: [] },
      workers,
      load,
      p,
    );
    return;
  }
  if (inst.state === 'failed') {
    // Failed for good until the service changes: a new revision gets a fresh start.
    if (inst.revision < record.revision)
      place(
        s,
        n,
        {
          why: `new revision ${record.revision}`,
          revision: record.revision,
          spec,
          exclude: [],
          failedOn: [],
          from: inst.worker,
        },
        workers,
        load,
        p,
      );
    return;
  }
  const instSpec = inst.spec ?? spec;
  if (!live.has(inst.worker)) {
    // A worker that stopped cleanly stopped its instances first: they may move at once.
    const since = input.goneSince.get(inst.worker) ?? input.now;
    const movable = input.handedOver?.has(inst.worker)
      ? input.now
      : since + input.mayStillRun(inst, instSpec);
    if (input.now < movable) input.wakeAt?.(movable);
    else
      place(
        s,
        n,
        {
          why: input.handedOver?.has(inst.worker)
            ? `worker ${inst.worker} stopped and handed it over`
            : `worker ${inst.worker} is gone`,
          revision: inst.revision,
          spec: instSpec,
          exclude: [inst.worker],
          failedOn: inst.failedOn,
          from: inst.worker,
        },
        workers,
        load,
        p,
      );
    return;
  }
  if (!run || run.worker !== inst.worker || run.revision !== inst.revision || run.state !== 'failed') return;
  if (inst.revision === record.revision && isRolling(s)) return; // the rollout decides (below)
  const failedOn = [...inst.failedOn, inst.worker];
  const reason = run.reason ?? 'failed';
  const moved =
    failedOn.length < instSpec.restart.maxWorkers &&
    place(
      s,
      n,
      {
        why: `failed on ${inst.worker}: ${reason}`,
        revision: inst.revision,
        spec: instSpec,
        exclude: failedOn,
        failedOn,
        from: inst.worker,
      },
      workers,
      load,
      p,
    );
  if (moved) return;
  // Nowhere else to go: failed for good, which is not "unplaced".
  p.unplaced = p.unplaced.filter((u) => u.instance !== n);
  p.touched.add(n);
  p.out.push({
    kind: 'fail',
    service: s.name,
    instance: n,
    worker: inst.worker,
    failedOn,
    reason: `failed on ${failedOn.join(', ')}: ${reason}`,
  });
  addLoad(load, s.name, inst.worker, -1);
}

/** The same account, but for when it was written. */
function sameStatus(a: ServiceStatus, b: ServiceStatus | undefined): boolean {
  const key = (x: ServiceStatus | undefined) => JSON.stringify([x?.rollout ?? null, x?.unplaced ?? null]);
  return key(a) === key(b);
}

/** Instances below the current revision remain (and the rollout of this revision has not failed). */
function isRolling(s: ServiceView): boolean {
  return [...s.instances.values()].some((i) => i.revision < s.record.revision);
}

function planRollout(
  s: ServiceView,
  now: number,
  desired: number,
  p: ServicePlan,
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
      p.rollout = { revision: rev, state: 'done' };
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
      p.rollout = { revision: rev, state: 'failed', reason, instance: n };
    }
    return; // one at a time: wait for this one
  }
  if (old.length === 0) return; // the old ones left are being moved
  // The next old instance: one that is not healthy first (it serves nobody now).
  old.sort(([a], [b]) => healthRank(s.running.get(a)) - healthRank(s.running.get(b)) || a - b);
  const [n, i] = old[0]!;
  p.out.push({
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
    p.rollout = { revision: rev, state: 'rolling', instance: n };
}

const healthRank = (r: RunRecord | undefined) => (r?.state === 'healthy' ? 1 : 0);
