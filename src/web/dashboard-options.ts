/**
 * What `startDashboard` takes, and the check that refuses a bad option before anything starts
 * (ZKFARM_INVALID_ARGUMENT naming it, what was expected and what was received).
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { Host } from '../host/host.js';
import type { Logger } from '../zk/connect-options.js';
import type { ZkTlsOptions } from '../zk/transport.js';
import type { RoleFaults } from './controls.js';

export interface DashboardOptions {
  /** Where to listen, `host:port`; port 0 picks a free port. @defaultValue '127.0.0.1:8080' */
  http?: string;
  /** ZooKeeper connect string (`host:port[,...][/chroot]`). @defaultValue the host's, when a host is given */
  connect?: string;
  /** The roles of this process: their states and counters, and what the controls act on. */
  host?: Host;
  /** Allow the POST controls (pause, resume, drain, add workers, submit test tasks). @defaultValue false */
  controls?: boolean;
  /**
   * Fault injection for the Crash control (with `controls`): zkfarm/testing's FaultInjector, the host's
   * `spawn`. Testing machinery, for failover practice: without it the page has no Crash buttons and
   * the endpoint answers 403. @defaultValue none
   */
  faults?: RoleFaults;
  /**
   * The token controls need (and, for a farm with ACLs, the feed and task details), at least 16
   * characters. @defaultValue $ZKFARM_DASHBOARD_TOKEN, else a random one: see `Dashboard.loginUrl`
   */
  token?: string;
  /** Host names besides this machine's own that the dashboard is served under (a proxy's, a DNS name). */
  allowedHosts?: string[];
  /** Most workers the page may add to the host (those still running count). @defaultValue 8 */
  maxAddedWorkers?: number;
  /** ZooKeeper digest identity `user:password` for an access-controlled farm. @defaultValue the host's */
  auth?: string;
  /** TLS to ZooKeeper. @defaultValue the host's, else plain TCP */
  tls?: ZkTlsOptions;
  /** Root of the workers' output on this machine, for a task's files. @defaultValue the host's workdir */
  workdir?: string;
  /** @defaultValue the host's logger, else silent */
  logger?: Logger;
  /** Poll interval of the farm's counts and results (ms). @defaultValue 1000 */
  pollMs?: number;
  /** Most /status reads per second; beyond, a sample is read and counts are scaled. @defaultValue 200 */
  statusReadsPerSecond?: number;
  /** Session timeout of the dashboard's own ZooKeeper session (ms). @defaultValue 10000 */
  sessionTimeout?: number;
  /**
   * The task events panel: one event stream of the farm (about three reads per task it sees; turn it off
   * for a farm running thousands of tasks a second). @defaultValue true
   */
  taskEvents?: boolean;
  /** Most live-feed connections at once. @defaultValue 64 */
  maxClients?: number;
  /**
   * How long startDashboard waits for its first look at the farm (the baseline its counters count
   * from) before it resolves anyway (ZooKeeper unreachable: the page then says so). @defaultValue 5000
   */
  startWaitMs?: number;
}

/** The options as given, each checked; ZKFARM_INVALID_ARGUMENT naming the first bad one. */
export function checkDashboardOptions(o: DashboardOptions): DashboardOptions {
  if (typeof o !== 'object' || o === null)
    throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, 'startDashboard: expected an options object');
  const bad = (name: string, expected: string, got: unknown) =>
    new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `dashboard option ${name}: expected ${expected}, got ${JSON.stringify(got)}`,
    );
  if (o.maxAddedWorkers !== undefined && !(Number.isInteger(o.maxAddedWorkers) && o.maxAddedWorkers >= 0))
    throw bad('maxAddedWorkers', 'a whole number ≥ 0', o.maxAddedWorkers);
  if (
    o.allowedHosts !== undefined &&
    !(Array.isArray(o.allowedHosts) && o.allowedHosts.every((h) => typeof h === 'string' && h !== ''))
  )
    throw bad('allowedHosts', 'an array of host names', o.allowedHosts);
  if (o.controls !== undefined && typeof o.controls !== 'boolean')
    throw bad('controls', 'true or false', o.controls);
  if (o.taskEvents !== undefined && typeof o.taskEvents !== 'boolean')
    throw bad('taskEvents', 'true or false', o.taskEvents);
  if (o.faults !== undefined && typeof o.faults?.crash !== 'function')
    throw bad('faults', "zkfarm/testing's FaultInjector (something with crash(name))", typeof o.faults);
  if (o.connect !== undefined && (typeof o.connect !== 'string' || o.connect.trim() === ''))
    throw bad('connect', 'a connect string like 127.0.0.1:2181[/chroot]', o.connect);
  for (const key of [
    'pollMs',
    'statusReadsPerSecond',
    'sessionTimeout',
    'maxClients',
    'startWaitMs',
  ] as const) {
    const v = o[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0))
      throw bad(key, 'a positive number', v);
  }
  if (o.pollMs !== undefined && o.pollMs < 100) throw bad('pollMs', 'at least 100 (ms)', o.pollMs);
  return o;
}
