/**
 * `GET /healthz`: 200 once every role of the host runs with a live session (without a host: once the
 * dashboard's own session is live), else 503 with the reason, for load balancers and supervisors.
 */
import type { Host } from '../host/host.js';
import type { Supervisor } from '../zk/supervisor.js';
import type { HostView } from './host-view.js';

export interface HealthSources {
  host: Host | undefined;
  hostView: HostView | undefined;
  supervisor: Supervisor;
  /** The connect string as it may be shown. */
  connect: string;
}

export async function health({
  host,
  hostView,
  supervisor: sup,
  connect,
}: HealthSources): Promise<{ ok: boolean; body: Record<string, unknown> }> {
  if (host) {
    const roles = await host.roles();
    const reason = hostView!.unhealthy(roles);
    const list = roles.map((r) => ({ name: r.name, kind: r.kind, state: r.state, session: r.session }));
    return reason
      ? { ok: false, body: { status: 'unavailable', reason, roles: list } }
      : { ok: true, body: { status: 'ok', roles: list } };
  }
  const live = sup.state === 'connected' || sup.state === 'reconnected';
  return live
    ? { ok: true, body: { status: 'ok', zk: sup.state } }
    : {
        ok: false,
        body: {
          status: 'unavailable',
          reason: `the dashboard has no ZooKeeper session (${sup.state}) to ${connect}`,
          zk: sup.state,
        },
      };
}
