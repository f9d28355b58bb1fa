/**
 * Where one more instance of a service may go: the placement rules as stages over the live workers,
 * which both choose a worker and, when none is left, say why (plan.ts keeps the reason in the
 * service's status). Pure: no I/O.
 *
 * Stages, in order: live and not stopping; not a worker the instance may not go back to; runs shell
 * (for a `cmd` or a `cmd` health check); has the handler; serves one of `placement.queues`; is on one of `placement.hosts`;
 * has room (instances < capacity); its host has fewer than `placement.maxPerHost` of the service. Among
 * the workers left, the one with the fewest of the service on its host, then on itself, then the
 * fewest instances in all (then by name).
 */
import {
  type InstanceRecord,
  needsShell,
  type ServiceSpec,
  type UnplaceableCode,
  type Unplaced,
} from './model.js';

/** Why no worker may take one more instance. */
export type Unplaceable = Omit<Unplaced, 'instance'>;

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

/** Instances per worker, in all and per service, as the plan goes on. */
export type Load = {
  total: Map<string, number>;
  byService: Map<string, Map<string, number>>;
  /** Each live worker's host. */
  hostOf: Map<string, string>;
};

export function loads(
  services: readonly { name: string; instances: ReadonlyMap<number, InstanceRecord> }[],
  workers: readonly WorkerView[],
): Load {
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
  return { total, byService, hostOf: new Map(workers.map((w) => [w.name, w.host])) };
}

export function addLoad(load: Load, service: string, worker: string, delta: number): void {
  load.total.set(worker, (load.total.get(worker) ?? 0) + delta);
  const m = load.byService.get(service)!;
  m.set(worker, (m.get(worker) ?? 0) + delta);
}

type Stage = { code: UnplaceableCode; keep: (w: WorkerView) => boolean; why: () => string };

/**
 * The placement rules as stages, in order: each keeps the workers that pass it. The first stage that
 * leaves none is why the instance cannot be placed; the workers left after the last one may take it.
 */
function stages(spec: ServiceSpec, load: Load, exclude: readonly string[]): Stage[] {
  const p = spec.placement;
  const onHost = hostCounts(spec, load);
  const list = (xs: readonly string[]) => xs.join(', ');
  return [
    {
      code: 'no-workers',
      keep: (w) => !w.draining,
      why: () => 'no live worker (or every one is stopping)',
    },
    {
      code: 'no-workers',
      keep: (w) => !exclude.includes(w.name),
      why: () => `no live worker but ${list(exclude)}, which it may not go back to`,
    },
    {
      code: 'no-match',
      keep: (w) => !needsShell(spec) || w.shell,
      why: () =>
        `no live worker runs shell commands, which its ${spec.cmd !== undefined ? 'cmd' : 'health check'} needs (start one with --allow-shell)`,
    },
    {
      code: 'no-match',
      keep: (w) => spec.handler === undefined || w.handlers.includes(spec.handler),
      why: () => `no live worker has the handler "${spec.handler}"`,
    },
    {
      code: 'no-match',
      keep: (w) => !p.queues || p.queues.some((q) => w.queues.includes(q)),
      why: () => `no live worker serves placement.queues (${list(p.queues ?? [])})`,
    },
    {
      code: 'no-match',
      keep: (w) => !p.hosts || p.hosts.includes(w.host),
      why: () => `no live worker is on placement.hosts (${list(p.hosts ?? [])})`,
    },
    {
      code: 'no-room',
      keep: (w) => (load.total.get(w.name) ?? 0) < w.capacity,
      why: () => 'every worker that may run it is full (its instances reach its capacity)',
    },
    {
      code: 'max-per-host',
      keep: (w) => p.maxPerHost === undefined || (onHost.get(w.host) ?? 0) < p.maxPerHost,
      why: () =>
        `every host with a worker that may run it has placement.maxPerHost (${p.maxPerHost}) instances already`,
    },
  ];
}

/** Instances of `spec`'s service per host. */
function hostCounts(spec: ServiceSpec, load: Load): Map<string, number> {
  const mine = load.byService.get(spec.name) ?? new Map<string, number>();
  const out = new Map<string, number>();
  for (const [worker, n] of mine) {
    const host = load.hostOf.get(worker);
    if (host !== undefined) out.set(host, (out.get(host) ?? 0) + n);
  }
  return out;
}

/**
 * The best worker for one more instance of `spec` (the fewest of the service on its host, then on
 * itself, then the fewest instances in all), or why none may take it.
 */
export function chooseWorker(
  spec: ServiceSpec,
  workers: readonly WorkerView[],
  load: Load,
  exclude: readonly string[],
): { worker: WorkerView } | { unplaceable: Unplaceable } {
  let left = workers;
  for (const stage of stages(spec, load, exclude)) {
    left = left.filter(stage.keep);
    if (left.length === 0) return { unplaceable: { code: stage.code, reason: stage.why() } };
  }
  const mine = load.byService.get(spec.name) ?? new Map<string, number>();
  const onHost = hostCounts(spec, load);
  const key = (w: WorkerView) => [
    onHost.get(w.host) ?? 0,
    mine.get(w.name) ?? 0,
    load.total.get(w.name) ?? 0,
  ];
  let best = left[0]!;
  let bestKey = key(best);
  for (const w of left.slice(1)) {
    const k = key(w);
    if (lexLess(k, bestKey) || (lexEqual(k, bestKey) && w.name < best.name)) {
      best = w;
      bestKey = k;
    }
  }
  return { worker: best };
}

const lexLess = (a: number[], b: number[]) => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
};
const lexEqual = (a: number[], b: number[]) => a.every((v, i) => v === b[i]);
