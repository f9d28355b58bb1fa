/**
 * The roles of this process, as the host reports them: thread state, session state, and each role's own
 * counters (over Comlink, so a role that is down is simply missing from the stats). Refreshed every
 * `pollMs` and at once when the host says a role started, exited or restarted.
 */
import { EventEmitter } from 'node:events';
import type { Host } from '../host/host.js';
import type { RoleThreadInfo, RoleThreadStats } from '../host/types.js';

export class HostView extends EventEmitter {
  readonly host: Host;
  roles: RoleThreadInfo[] = [];
  stats = new Map<string, RoleThreadStats>();
  /** Restarts of each role seen since the dashboard started (from the host's 'role-restarted' events). */
  readonly restarts = new Map<string, number>();
  readonly #pollMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  readonly #onEvent = () => void this.refresh();
  readonly #onRestart = (name: string) => {
    this.restarts.set(name, (this.restarts.get(name) ?? 0) + 1);
    void this.refresh();
  };

  constructor(host: Host, pollMs = 1000) {
    super();
    this.host = host;
    this.#pollMs = pollMs;
  }

  start(): void {
    this.host.on('role-started', this.#onEvent);
    this.host.on('role-exit', this.#onEvent);
    this.host.on('role-restarted', this.#onRestart);
    const tick = async () => {
      await this.refresh();
      if (this.#stopped) return;
      this.#timer = setTimeout(tick, this.#pollMs);
      this.#timer.unref?.();
    };
    void tick();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.host.off('role-started', this.#onEvent);
    this.host.off('role-exit', this.#onEvent);
    this.host.off('role-restarted', this.#onRestart);
  }

  /** Ask the host again (coalesced with a refresh in flight); emits 'change'. */
  refresh(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        try {
          const [roles, stats] = await Promise.all([this.host.roles(), this.host.allStats()]);
          this.roles = roles;
          this.stats = new Map(stats.map(({ name, ...s }) => [name, s]));
        } catch {
          // the host is stopping; keep the last view
        }
      } while (this.#again && !this.#stopped);
      this.#running = undefined;
      if (!this.#stopped) this.emit('change');
    })();
    return this.#running;
  }

  /** Why the roles are not all up, or undefined when every role runs with a live session. */
  unhealthy(roles: readonly RoleThreadInfo[] = this.roles): string | undefined {
    const problems: string[] = [];
    for (const r of roles) {
      if (r.state !== 'running') problems.push(`${r.kind} ${r.name} is ${r.state}`);
      else if (r.session !== 'connected' && r.session !== 'reconnected') {
        problems.push(`${r.kind} ${r.name} has no live ZooKeeper session (${r.session})`);
      }
    }
    return problems.length > 0 ? problems.join('; ') : undefined;
  }
}
