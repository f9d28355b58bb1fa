/**
 * Services on the dashboard: /api/services (every service's state, for the page's services panel)
 * and the zkfarm_service_* metrics, both read from ZooKeeper when asked (services/api.ts).
 *
 *   zkfarm_service_instances_desired{service}   instances wanted (0 while the service is removed)
 *   zkfarm_service_instances_running{service}   instances whose worker runs them (starting to unhealthy)
 *   zkfarm_service_instances_healthy{service}   instances that pass their health check (endpoints)
 *   zkfarm_service_restarts{service}            restarts of the instances now running, on their workers
 *   zkfarm_service_instances_unplaced{service,reason}  instances the leader cannot place now, by why
 *                                               (no-workers, no-match, no-room, max-per-host)
 */
import client from 'prom-client';
import { listServices, type ServiceState, serviceState } from '../services/index.js';
import type { ZkClient } from '../zk/client.js';

export async function readServices(zk: ZkClient): Promise<ServiceState[]> {
  const names = await listServices(zk);
  const states = await Promise.allSettled(names.map((n) => serviceState(zk, n)));
  // A service removed between the listing and its read is simply not there any more.
  return states.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
}

const byRegistry = new WeakMap<client.Registry, ServiceMetrics>();

/** The service gauges of a registry (made on first use). */
export function serviceMetricsFor(registry: client.Registry): ServiceMetrics {
  let m = byRegistry.get(registry);
  if (!m) {
    m = new ServiceMetrics(registry);
    byRegistry.set(registry, m);
  }
  return m;
}

export class ServiceMetrics {
  readonly #desired: client.Gauge<'service'>;
  readonly #running: client.Gauge<'service'>;
  readonly #healthy: client.Gauge<'service'>;
  readonly #restarts: client.Gauge<'service'>;
  readonly #unplaced: client.Gauge<'service' | 'reason'>;

  constructor(registry: client.Registry) {
    const gauge = (name: string, help: string) =>
      new client.Gauge({ name, help, labelNames: ['service'], registers: [registry] });
    this.#desired = gauge(
      'zkfarm_service_instances_desired',
      'Instances a service wants (0 while it is removed)',
    );
    this.#running = gauge(
      'zkfarm_service_instances_running',
      'Instances of a service that a worker runs now',
    );
    this.#healthy = gauge(
      'zkfarm_service_instances_healthy',
      'Instances of a service that pass their health check',
    );
    this.#restarts = gauge(
      'zkfarm_service_restarts',
      'Restarts of the instances of a service now running, on their workers',
    );
    this.#unplaced = new client.Gauge({
      name: 'zkfarm_service_instances_unplaced',
      help: 'Instances of a service the leader cannot place now, by reason (no-workers, no-match, no-room, max-per-host)',
      labelNames: ['service', 'reason'],
      registers: [registry],
    });
  }

  update(states: readonly ServiceState[]): void {
    for (const g of [this.#desired, this.#running, this.#healthy, this.#restarts, this.#unplaced]) g.reset();
    for (const s of states) {
      const labels = { service: s.name };
      this.#desired.set(labels, s.desired);
      this.#running.set(labels, s.running);
      this.#healthy.set(labels, s.healthy);
      this.#restarts.set(labels, s.restarts);
      for (const u of s.unplaced) this.#unplaced.inc({ service: s.name, reason: u.code });
    }
  }
}
