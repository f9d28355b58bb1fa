/**
 * The leader's side of services, for one term: keep every service's desired state (plan.ts decides,
 * this file reads and writes).
 *
 * Znodes: reads /workers/* (live workers, their capacity, shell, handlers, queues), /services/<name>
 * (desired state), its instances/*, running/* (the workers' fences and states) and status; writes
 * instances/<n>, status, and /service-placements/<worker>/<name>.<n>; reads the hand-over mark of gone
 * workers and prunes their /service-placements/<worker> once empty (placements.ts).
 *
 * Each change of an instance is one multi: its record in instances/<n> (version-checked) and its
 * placement under the worker(s) it leaves and joins, so a worker is told to run exactly what the
 * record says. A pass reads everything, plans, and applies; a refused multi (something moved
 * meanwhile) is planned again by the next pass. Passes run when /workers or anything under /services
 * changes, every second while there are services (rollout timeouts), and when a gone worker's
 * instances may move. The status says which instances cannot be placed and why (plan.ts); it is
 * written only when that, or the rollout, changes.
 *
 * SUSPENDED: passes fail and are retried with a backoff (recipes/pass-loop.ts).
 * LOST, or the term's end: the term's signal aborts; watches, timers and writes stop.
 */

import { PassLoop } from '../recipes/pass-loop.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import { FENCE_MARGIN_MS, stillRunsAfterExpiry } from './fence.js';
import {
  decode,
  encodeJson,
  endpointsDir,
  type InstanceRecord,
  instancePath,
  instancesDir,
  type Placement,
  placementPath,
  placementsDir,
  type RunRecord,
  runningDir,
  SERVICE_PATHS,
  type ServiceRecord,
  type ServiceSpec,
  type ServiceStatus,
  servicePath,
  serviceStatusPath,
} from './model.js';
import { prunePlacements, readHandOvers } from './placements.js';
import { type Action, plan, type ServiceView, type WorkerView } from './plan.js';

const WORKERS = '/workers';
const TICK_MS = 1000;

type Stored<T> = T & { version: number };

/** How long a worker with a placements node must be unregistered before the node is pruned. */
const PRUNE_GRACE_MS = 5000;

export class ServiceReconciler {
  readonly #session: Session;
  readonly #client: ZkClient;
  readonly #signal: AbortSignal;
  readonly #log: Logger;
  readonly #goneSince = new Map<string, number>();
  readonly #ready = new Set<string>();
  readonly #loop: PassLoop;
  /** Workers with a placements node and no registration: since when (placements pruned after a grace). */
  readonly #unregisteredSince = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  /** Services seen by the last pass. */
  #services = 0;
  #unwatch: (() => void) | undefined;

  constructor(session: Session, signal: AbortSignal, log: Logger) {
    this.#session = session;
    this.#client = session.client;
    this.#signal = signal;
    this.#log = log;
    this.#loop = new PassLoop(() => this.#pass(), { what: 'service reconciliation', signal, log });
  }

  get #active(): boolean {
    return !this.#signal.aborted && this.#session.alive;
  }

  /** Start passes (the first one sets up the watches; a failure there is retried like any pass). */
  start(): void {
    this.#signal.addEventListener('abort', () => this.#stop(), { once: true });
    // The tick only times rollouts and moves: a farm without services is not read every second.
    this.#timer = setInterval(() => {
      if (this.#services > 0) this.kick();
    }, TICK_MS);
    this.#timer.unref();
    this.kick();
  }

  async #watch(): Promise<void> {
    await this.#client.ensurePath(SERVICE_PATHS.services);
    await this.#client.ensurePath(SERVICE_PATHS.placements);
    const unwatch = await this.#client.addWatch(SERVICE_PATHS.services, 'persistentRecursive', () =>
      this.kick(),
    );
    if (this.#signal.aborted) return unwatch();
    this.#unwatch = unwatch;
    this.#session.watchChildren(WORKERS, () => this.kick());
  }

  #stop(): void {
    clearInterval(this.#timer);
    this.#unwatch?.();
  }

  /** Run a pass (single flight; a call during one makes another follow: recipes/pass-loop.ts). */
  kick(): void {
    if (this.#active) this.#loop.kick();
  }

  async #pass(): Promise<void> {
    if (!this.#unwatch) await this.#watch();
    const [workers, services] = await Promise.all([this.#readWorkers(), this.#readServices()]);
    if (!this.#active) return;
    this.#services = services.length;
    const now = Date.now();
    const live = new Set(workers.map((w) => w.name));
    const gone = new Set<string>();
    for (const s of services)
      for (const i of s.instances.values()) if (!live.has(i.worker)) gone.add(i.worker);
    for (const w of this.#goneSince.keys()) if (!gone.has(w)) this.#goneSince.delete(w);
    for (const w of gone) if (!this.#goneSince.has(w)) this.#goneSince.set(w, now);
    // Read after the listing of /workers that found them gone (placements.ts says why that matters).
    const handedOver = await readHandOvers(this.#client, [...gone]);
    if (!this.#active) return;
    const mayStillRun = (inst: InstanceRecord, spec: ServiceSpec) =>
      // A worker that did not say its session timeout: assume the worst (the whole grace past the margin).
      inst.sessionTimeout
        ? stillRunsAfterExpiry(inst.sessionTimeout, spec.stopGraceMs)
        : spec.stopGraceMs + FENCE_MARGIN_MS;
    const actions = plan({
      now,
      workers,
      services,
      goneSince: this.#goneSince,
      mayStillRun,
      wakeAt: (t) => this.#loop.wakeAt(t),
      handedOver,
    });
    const byName = new Map(services.map((s) => [s.name, s]));
    let refused = false;
    for (const a of actions) {
      if (!this.#active) return;
      try {
        await this.#apply(a, byName.get(a.service)!);
      } catch (err) {
        // Something changed meanwhile (a version, a node): the next pass plans again from what is there.
        if (!isZkError(err)) throw err;
        this.#log.debug(
          { err, action: a.kind, service: a.service },
          'service change refused; planning again',
        );
        refused = true;
        this.kick();
      }
    }
    if (!this.#active || refused) return;
    const pruned = await prunePlacements(
      this.#client,
      live,
      (name, n) => byName.get(name)?.instances.get(n),
      (w) => this.#goneLongEnough(w, live),
    );
    if (pruned.length > 0) this.#log.info({ workers: pruned }, 'placements of gone workers pruned');
  }

  /**
   * A worker makes its placements node as it starts, a moment before it registers: one not seen live for
   * PRUNE_GRACE_MS is gone, one just missing is more likely starting (its node is left alone).
   */
  #goneLongEnough(worker: string, live: ReadonlySet<string>): boolean {
    for (const w of this.#unregisteredSince.keys()) if (live.has(w)) this.#unregisteredSince.delete(w);
    const now = Date.now();
    const since = this.#unregisteredSince.get(worker) ?? now;
    this.#unregisteredSince.set(worker, since);
    if (now - since >= PRUNE_GRACE_MS) {
      this.#unregisteredSince.delete(worker);
      return true;
    }
    this.#loop.wakeAt(since + PRUNE_GRACE_MS);
    return false;
  }

  async #readWorkers(): Promise<WorkerView[]> {
    const names = await this.#client.getChildren(WORKERS);
    const data = await this.#client.getDataMany(names.map((n) => `${WORKERS}/${n}`));
    const out: WorkerView[] = [];
    names.forEach((name, i) => {
      const d = data[i];
      if (!d || d instanceof Error) return;
      const w = workerView(name, d.data);
      if (w) out.push(w);
    });
    return out;
  }

  async #readServices(): Promise<(ServiceView & { versions: Map<number, number> })[]> {
    const names = await this.#client.getChildren(SERVICE_PATHS.services);
    const out = await Promise.all(names.map((n) => this.#readService(n)));
    return out.filter((s) => s !== undefined);
  }

  async #readService(name: string): Promise<(ServiceView & { versions: Map<number, number> }) | undefined> {
    const c = this.#client;
    let record: ServiceRecord | undefined;
    try {
      record = decode<ServiceRecord>((await c.getData(servicePath(name))).data);
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return undefined;
      throw err;
    }
    if (!record?.spec) return undefined;
    if (!this.#ready.has(name)) {
      for (const dir of [instancesDir(name), runningDir(name), endpointsDir(name)]) await c.ensurePath(dir);
      this.#ready.add(name);
    }
    const [inst, runs, status] = await Promise.all([
      readAll<InstanceRecord & { spec?: ServiceSpec }>(c, instancesDir(name)),
      readAll<RunRecord>(c, runningDir(name)),
      c.getData(serviceStatusPath(name)).then(
        (r) => decode<ServiceStatus>(r.data),
        () => undefined,
      ),
    ]);
    const versions = new Map([...inst].map(([n, v]) => [n, v.version]));
    return { name, record, status, instances: inst, running: runs, versions };
  }

  async #apply(a: Action, s: ServiceView & { versions: Map<number, number> }): Promise<void> {
    const c = this.#client;
    switch (a.kind) {
      case 'place': {
        const rec: InstanceRecord & { spec: ServiceSpec } = {
          worker: a.worker,
          sessionTimeout: a.sessionTimeout,
          revision: a.revision,
          placedAt: Date.now(),
          failedOn: a.failedOn,
          state: 'placed',
          spec: a.spec,
        };
        const p: Placement = { service: a.service, instance: a.instance, revision: a.revision, spec: a.spec };
        await c.ensurePath(placementsDir(a.worker));
        const tx = c.transaction();
        const version = s.versions.get(a.instance);
        if (version === undefined) tx.create(instancePath(a.service, a.instance), encodeJson(rec));
        else tx.setData(instancePath(a.service, a.instance), encodeJson(rec), version);
        if (a.from !== undefined && (await c.exists(placementPath(a.from, a.service, a.instance))))
          tx.remove(placementPath(a.from, a.service, a.instance));
        tx.create(placementPath(a.worker, a.service, a.instance), encodeJson(p));
        await tx.commit();
        this.#log.info(
          { service: a.service, instance: a.instance, worker: a.worker, revision: a.revision },
          `service instance placed: ${a.why}`,
        );
        return;
      }
      case 'remove':
      case 'fail': {
        const tx = c.transaction();
        if (a.kind === 'remove')
          tx.remove(instancePath(a.service, a.instance), s.versions.get(a.instance) ?? -1);
        else {
          const old = s.instances.get(a.instance)!;
          tx.setData(
            instancePath(a.service, a.instance),
            encodeJson({ ...old, state: 'failed', reason: a.reason, failedOn: a.failedOn }),
            s.versions.get(a.instance) ?? -1,
          );
        }
        if (await c.exists(placementPath(a.worker, a.service, a.instance)))
          tx.remove(placementPath(a.worker, a.service, a.instance));
        await tx.commit();
        if (a.kind === 'fail')
          this.#log.warn(
            { service: a.service, instance: a.instance },
            `service instance failed: ${a.reason}`,
          );
        return;
      }
      case 'status': {
        const data = encodeJson(a.status);
        try {
          await c.setData(serviceStatusPath(a.service), data);
        } catch (err) {
          if (!isZkError(err, 'NO_NODE')) throw err;
          await c.create(serviceStatusPath(a.service), data);
        }
        const r = a.status.rollout;
        if (r?.state === 'failed')
          this.#log.warn({ service: a.service, revision: r.revision }, `rolling update stopped: ${r.reason}`);
        return;
      }
      case 'delete':
        await c.removeRecursive(servicePath(a.service));
        this.#ready.delete(a.service);
        this.#log.info({ service: a.service }, 'service removed');
        return;
    }
  }
}

async function readAll<T>(c: ZkClient, dir: string): Promise<Map<number, Stored<T>>> {
  let names: string[];
  try {
    names = await c.getChildren(dir);
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return new Map();
    throw err;
  }
  const nums = names.map(Number).filter((n) => Number.isInteger(n) && n >= 0);
  const data = await c.getDataMany(nums.map((n) => `${dir}/${n}`));
  const out = new Map<number, Stored<T>>();
  nums.forEach((n, i) => {
    const d = data[i];
    if (!d || d instanceof Error) return;
    const v = decode<T>(d.data);
    if (v) out.set(n, { ...v, version: d.stat.version });
  });
  return out;
}

/** A worker as /workers/<name> describes it; `queues` defaults to the default queue. */
export function workerView(name: string, data: Buffer): WorkerView | undefined {
  const v = decode<Record<string, unknown>>(data);
  if (!v || typeof v['capacity'] !== 'number') return undefined;
  const queues = Array.isArray(v['queues'])
    ? v['queues']
        .map((q) => (typeof q === 'string' ? q : String((q as { name?: unknown })?.name ?? '')))
        .filter(Boolean)
    : ['default'];
  return {
    name,
    host: String(v['host'] ?? ''),
    capacity: Math.max(1, Math.floor(v['capacity'])),
    shell: v['shell'] === true,
    handlers: Array.isArray(v['handlers']) ? v['handlers'].filter((h) => typeof h === 'string') : [],
    queues,
    draining: v['draining'] === true,
    sessionTimeout: typeof v['sessionTimeout'] === 'number' ? v['sessionTimeout'] : undefined,
  };
}
