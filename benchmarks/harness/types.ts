/**
 * Shapes shared by the benchmark orchestrator (benchmarks/harness/index.ts) and its measurement processes
 * (benchmarks/harness/worker-scenario.ts). Only plain JSON crosses between them.
 */

export const SCENARIOS = [
  'ceiling',
  'throughput',
  'latency',
  'scaling',
  'failover',
  'peer',
  'services',
  'scale',
  'fresh',
  'multi-host',
] as const;
/**
 * What a run without `--scenario` measures: every scenario but those run only by name, `services` (two
 * runtime hosts and a SIGKILL) and `scale` (a million tasks: it loads the machine for minutes).
 * `multi-host` is named only too: it starts a 3-member ensemble and runtime processes of its own.
 */
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = SCENARIOS.filter(
  (s) => s !== 'services' && s !== 'scale' && s !== 'multi-host',
);
export type ScenarioName = (typeof SCENARIOS)[number];

/** How big a run is: `full` for the committed report, `quick` for a look, `tiny` for the test. */
export type Size = 'tiny' | 'quick' | 'full';

export type RedisPersistence = 'none' | 'everysec' | 'always';

/** min / median / max of one figure over the repeats of a run. */
export interface Spread {
  min: number;
  median: number;
  max: number;
  /** How many values. */
  n: number;
}

/** A table as printed on the terminal and written into latest.md. */
export interface Table {
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
  /** Lines printed under the table. */
  notes?: string[];
}

/** What one scenario produced: written as `<scenario>-<timestamp>.json`. */
export interface ScenarioReport {
  scenario: ScenarioName;
  title: string;
  /** Sizes and settings it ran with. */
  params: Record<string, unknown>;
  /** The headline figures (spreads, ratios). */
  summary: Record<string, unknown>;
  /** Every measurement, raw. */
  runs: unknown;
  tables: Table[];
  /** Did every farm run end with every task having exactly one status? */
  invariants: { ok: boolean; problems: string[] };
  /** Why the scenario did not run (e.g. no redis-server). */
  skipped?: string;
  /** Why it failed, if it did. */
  error?: string;
  notes: string[];
  startedAt: string;
  durationMs: number;
}

// ---------------------------------------------------------------------------------------------------
// Jobs for a measurement process
// ---------------------------------------------------------------------------------------------------

/** Where the ZooKeeper server of this run is: a connect string with this measurement's own chroot. */
export interface ZkTarget {
  /** `127.0.0.1:port/zkfarm-bench/<unique>`: the measurement works only under this chroot. */
  connect: string;
  /** The java process, for its CPU time. */
  pid: number;
}

export interface FarmShape {
  masters: number;
  workers: number;
  /** Tasks each worker runs at once (its prefetch is the farm's default, `auto`). */
  capacity: number;
  /** Session timeout of every role (ms). */
  sessionTimeout: number;
}

export interface CeilingVariant {
  name: string;
  /** `create`: pipelined single creates; `multi`: creates batched in multis. */
  mode: 'create' | 'multi';
  clients: number;
  /** Creates in total (across clients). */
  creates: number;
  /** Creates per multi (mode `multi`). */
  batch: number;
  /** Requests in flight per client. */
  window: number;
}

export interface CeilingJob {
  kind: 'ceiling';
  zk: ZkTarget;
  variants: CeilingVariant[];
  /** Stop a variant after this long even if not all creates were sent. */
  maxMsPerVariant: number;
}

/**
 * How many passes of N tasks (jobs) one measurement runs on the same farm (queue): 1 measures the first
 * N after start ("cold"); 2 then measures N more, submitted once the first N completed ("warm", the
 * steady state of a farm that has been running).
 */
export type Passes = 1 | 2;

export interface FarmJob {
  kind: 'farm';
  zk: ZkTarget;
  shape: FarmShape;
  /** Tasks per pass. */
  tasks: number;
  passes: Passes;
  /** Give up waiting for one pass's results after this long. */
  timeoutMs: number;
}

export interface BullmqJob {
  kind: 'bullmq';
  redis: { port: number; pid: number };
  workers: number;
  concurrency: number;
  /** Jobs per pass. */
  jobs: number;
  passes: Passes;
  /** Jobs per addBulk call. */
  chunk: number;
  /** Give up waiting for one pass's jobs after this long. */
  timeoutMs: number;
}

export interface LatencyJob {
  kind: 'latency';
  zk: ZkTarget;
  shape: FarmShape;
  /** Tasks submitted one at a time on an idle farm. */
  idleTasks: number;
  /** Pause between idle tasks (ms). */
  idleGapMs: number;
  /** Offered rates (tasks/s), each held for `durationMs`. */
  rates: number[];
  durationMs: number;
  timeoutMs: number;
}

/** The latency scenario's reference: BullMQ on the run's redis-server, the farm's series at the same rates. */
export interface BullLatencyJob {
  kind: 'bullmq-latency';
  redis: { port: number; pid: number };
  /** BullMQ Workers, each with `concurrency`: the farm's workers and capacity. */
  workers: number;
  concurrency: number;
  idleTasks: number;
  idleGapMs: number;
  /** The farm's offered rates (jobs/s), each held for `durationMs`. */
  rates: number[];
  durationMs: number;
  timeoutMs: number;
}

export interface RssJob {
  kind: 'rss';
  zk: ZkTarget;
  shape: FarmShape;
  /** Let the roles settle this long before reading RSS. */
  settleMs: number;
  /** The host's `roleResourceLimits` (absent: the host's default, ROLE_RESOURCE_LIMITS). */
  roleResourceLimits?: { maxYoungGenerationSizeMb?: number };
}

export type FaultKind = 'leader-crash' | 'leader-stop' | 'worker-crash';

export interface FailoverJob {
  kind: 'failover';
  zk: ZkTarget;
  shape: FarmShape;
  /** Offered rate of the steady stream (tasks/s). */
  rate: number;
  faults: FaultKind[];
  /** Stream this long before the first fault, and after the last recovery. */
  steadyMs: number;
  /** Give up on one fault's recovery after this long. */
  recoveryTimeoutMs: number;
  timeoutMs: number;
}

export interface ServicesJob {
  kind: 'services';
  zk: ZkTarget;
  /** Of the runtime hosts' roles. */
  sessionTimeout: number;
  /** The service's stop grace. */
  stopGraceMs: number;
  /** The host SIGKILLed (the one with two instances) is the leader's, or the other host leads. */
  killLeader: boolean;
  timeoutMs: number;
}

export interface ScaleJob {
  kind: 'scale';
  tasks: number;
  /** Raw creates in flight at once. */
  window: number;
  shape: FarmShape;
  timeoutMs: number;
}

export interface ScaleResult {
  tasks: number;
  window: number;
  fileTasks: number;
  rawTasks: number;
  submitMs: number;
  submitPerSec: number;
  fileMs: number;
  filePerSec: number;
  rawMs: number;
  rawPerSec: number;
  submitRssMb: number;
  shelveMs: number;
  drainMs: number;
  drainPerSec: number;
  inboxPeak: number;
  largest: { path: string; children: number; bytes: number };
  farmRssMbPeak: number;
  leaderHeapMbPeak: number;
  zk: {
    heapMaxMb: number;
    rssMbPeak: number;
    liveMbQueued: number;
    liveMbDone: number;
    znodesQueued: number;
    znodesDone: number;
    dataDirMb: number;
    snapshots: number;
  };
  check: { ok: boolean; problems: string[] };
}

/** A member of the multi-host scenario's ensemble, as a measurement process reaches it. */
export interface EnsembleMemberTarget {
  id: number;
  host: string;
  port: number;
  /** The java process, for its CPU time. */
  pid: number;
}

/** One measurement of the multi-host scenario (scenarios/multi-host.ts): `hosts` runtime processes, one farm. */
export interface MultiHostJob {
  kind: 'multi-host';
  /** The ensemble's members, comma-separated, with this measurement's own chroot. */
  connect: string;
  members: EnsembleMemberTarget[];
  /** runtime processes the farm's roles are split over. */
  hosts: number;
  /** The roles of the whole farm, over all hosts. */
  shape: FarmShape;
  /** Tasks per pass. */
  tasks: number;
  passes: Passes;
  /** Give up waiting for one pass's results after this long. */
  timeoutMs: number;
}

export type Job =
  | CeilingJob
  | FarmJob
  | BullmqJob
  | LatencyJob
  | BullLatencyJob
  | RssJob
  | FailoverJob
  | ServicesJob
  | ScaleJob
  | MultiHostJob;

/** Messages a measurement process sends to the orchestrator. */
export type ChildMessage =
  | { type: 'progress'; done: number; total: number; label?: string }
  | { type: 'result'; result: unknown }
  | { type: 'error'; message: string; stack?: string };

// ---------------------------------------------------------------------------------------------------
// Results of measurements
// ---------------------------------------------------------------------------------------------------

/** CPU time in ms (user + system). */
export interface CpuFigures {
  /** The whole measurement process: role threads, the submitter, everything. */
  processMs: number;
  /** Its main thread only (the submitter and the harness; role threads run elsewhere). */
  mainThreadMs: number;
  /** The server: ZooKeeper's java, or redis-server. */
  serverMs: number;
  /** Farm runs: the master threads' and the worker threads' share of processMs (NaN without /proc). */
  mastersMs?: number;
  workersMs?: number;
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  count: number;
}

export interface CeilingResult {
  variant: CeilingVariant;
  done: number;
  elapsedMs: number;
  perSecond: number;
  serverCpuMs: number;
}

export interface FarmCheckSummary {
  ok: boolean;
  problems: string[];
  statuses: number;
  succeeded: number;
  failed: number;
  /** Tasks whose status says they ran more than once (attempts > 1). */
  reruns: number;
}

/** The figures of one pass of N tasks on a farm (each pass timed and counted on its own). */
export interface FarmPass {
  /** First submit of the pass sent → the pass's last status created (its znode ctime). */
  elapsedMs: number;
  tasksPerSecond: number;
  /** First submit sent → submitMany() returned (backpressure included). */
  submitMs: number;
  zkRequests: { submitter: number; masters: number; workers: number; total: number; perTask: number };
  cpu: CpuFigures;
  /** Status ctime − task ctime (the submit as the server saw it), when statuses carry submittedAt. */
  latencyUnderLoad?: Percentiles;
  /** The process's RSS at the end of the pass. */
  rssMb: number;
}

/**
 * One farm measurement. Its own fields are the first pass (cold: the first N tasks after start, what
 * the harness always measured); `warm` is the second pass on the same farm, when it ran.
 */
export interface FarmResult extends FarmPass {
  shape: FarmShape;
  /** Tasks per pass. */
  tasks: number;
  /** Host.start() for all roles, until a leader and every worker is registered. */
  hostStartMs: number;
  /** The next N tasks, submitted once the first N had their status (absent with `passes: 1`). */
  warm?: FarmPass;
  /** Over every task of every pass. */
  check: FarmCheckSummary;
}

/** The figures of one pass of N jobs on a BullMQ queue. */
export interface BullmqPass {
  /** First addBulk of the pass sent → the pass's last `completed` event. */
  elapsedMs: number;
  jobsPerSecond: number;
  addMs: number;
  /** Redis commands processed during the pass (INFO total_commands_processed), per job. */
  redisCommandsPerJob: number;
  cpu: CpuFigures;
  /** The process's RSS at the end of the pass. */
  rssMb: number;
  /** `completed` events and processor calls for this pass's jobs. */
  completed: number;
  processed: number;
}

/** One BullMQ measurement: its own fields are the first pass (cold), `warm` the second on the same queue. */
export interface BullmqResult extends BullmqPass {
  workers: number;
  concurrency: number;
  /** Jobs per pass. */
  jobs: number;
  warm?: BullmqPass;
  /** Over every job of every pass (`completed`, `processed`: all passes together). */
  check: { ok: boolean; problems: string[]; completed: number; processed: number };
}

export interface RateLatency {
  /** Offered rate (tasks/s). */
  rate: number;
  /** Rate actually submitted. */
  achievedRate: number;
  tasks: number;
  /** Send → status created. */
  latency: Percentiles;
  /** Send → handler started (worker clock): queueing and assignment. */
  toStart: Percentiles;
  /** Largest delay of a submit behind its schedule (the generator falling behind). */
  maxSubmitLagMs: number;
}

export interface LatencyResult {
  shape: FarmShape;
  hostStartMs: number;
  /** The first task on a farm that has been idle since it started. */
  firstTaskMs: number;
  /** Single tasks on an idle farm. */
  idle: Percentiles;
  /**
   * One ZooKeeper read (`exists`) after the same idle gap, in ms: what each of the round trips on an idle
   * task's path costs on this machine when ZooKeeper's threads and the client's have gone to sleep.
   */
  idleRoundTrip?: Percentiles;
  /** The load series as a farm just started meets it. */
  rates: RateLatency[];
  /** The same series again on the same farm, warmed by the first. */
  warmRates?: RateLatency[];
  check: FarmCheckSummary;
}

/** BullMQ's figures of the latency series; `recorded` is the Redis clock of the job's `completed` event. */
export interface BullLatencyResult {
  firstTaskMs: number;
  idle: Percentiles;
  /** One Redis PING after the same idle gap, in ms. */
  idleRoundTrip: Percentiles;
  rates: RateLatency[];
  warmRates: RateLatency[];
  /** Every job completed exactly once, none failed, none left. */
  check: { ok: boolean; problems: string[]; completed: number };
}

export interface RssResult {
  roles: number;
  shape: FarmShape;
  /** RSS of the process with its host made and no role started yet. */
  beforeMb: number;
  afterMb: number;
  perRoleMb: number;
  hostStartMs: number;
}

export interface FaultResult {
  fault: FaultKind;
  /** The role hit. */
  role: string;
  /** Client clock when the fault was injected (ms since epoch). */
  at: number;
  /** Longest interval without a new status, from the fault until it was recovered. */
  gapMs: number;
  /** The longest interval without a submit in the same window (the generator stalled if this is large). */
  submitGapMs: number;
  /** The same, measured over the steady stream before the fault (the baseline). */
  baselineGapMs: number;
  /** Fault → the last status of every task submitted before the fault or delayed by it (latency > 1 s). */
  recoverMs: number;
  /** Largest submit-to-status latency of a task submitted in the fault's window (fault's neighbours included). */
  maxLatencyMs: number;
  /** Tasks submitted in the fault's window that took more than 1 s. */
  delayedTasks: number;
  /** Fault → a new leader holds /master (master faults only). */
  leaderChangeMs?: number;
  /** Tasks with attempts > 1 among those submitted before the fault. */
  reruns: number;
  /** The slowest task of the window, times relative to the fault (ms), to see where its time went. */
  slowest?: {
    id: string;
    worker: string | null;
    attempts: number;
    sentMs: number;
    startedMs: number | null;
    finishedMs: number | null;
    recordedMs: number;
  };
}

export interface FailoverResult {
  shape: FarmShape;
  rate: number;
  tasks: number;
  faults: FaultResult[];
  check: FarmCheckSummary;
}

/** One side of a pair of the fresh scenario (scenarios/fresh.ts). */
export interface FreshSide {
  /** From its start to `ready` (ms). */
  readyMs: number;
  /** How long the submitting process ran (ms). */
  submitMs: number;
  /** N ÷ (submitting process started → the last result written). */
  perSecond: number;
  /**
   * CPU (ms) from the submit's start until every result was counted: the process that runs the roles
   * (runtime; BullMQ's workers process) and the server (the embedded ZooKeeper's JVM; redis-server).
   */
  cpu: { appMs: number; serverMs: number };
  /** What its check found wrong (empty: every task one result). */
  problems: string[];
}

/** One alternating pair of the fresh scenario. */
export interface FreshRun {
  farm: FreshSide;
  bull: FreshSide;
  ratio: number;
}

/** One run of the services scenario (scenarios/services.ts); times in ms from the SIGKILL. */
export interface ServicesResult {
  sessionTimeout: number;
  stopGraceMs: number;
  /** Creation of the service → 3 healthy instances. */
  startMs: number;
  /** → 3 healthy endpoints, all on the surviving host. */
  healthyAgainMs: number;
  /** → all 3 ports answer HTTP again. */
  answeringAgainMs: number;
  /** → the killed host's copies are gone from /proc. */
  copiesGoneMs: number;
  /** Most copies of the server alive at once (/proc), and most instances answering at once (HTTP). */
  mostCopies: number;
  mostAnswering: number;
  /** The killed host held the leading master. */
  leaderKilled: boolean;
  /** Instances the killed host ran. */
  onVictim: number;
  /** Copies still alive after the surviving host stopped (SIGTERM). */
  leftAfterStop: number;
}

/** One ensemble member over a pass of the multi-host scenario: its CPU and its `mntr` counters' changes. */
export interface MemberPass {
  id: number;
  /** `zk_server_state` was leader. */
  leader: boolean;
  cpuMs: number;
  /** zk_packets_received / zk_packets_sent: client requests in, responses and notifications out. */
  packetsReceived: number;
  packetsSent: number;
  /** zk_bytes_received_count / zk_response_bytes: client bytes in, and out. */
  bytesReceived: number;
  bytesSent: number;
  /** Client connections at the end of the pass (zk_num_alive_connections). */
  connections: number;
}

/** The figures of one pass of N tasks of the multi-host scenario. */
export interface MultiHostPass {
  /** First submit sent → the pass's last status created (its znode's ctime). */
  elapsedMs: number;
  tasksPerSecond: number;
  /** First submit sent → the harness saw every status: the window the CPU and counters cover. */
  windowMs: number;
  submitMs: number;
  /** CPU of each runtime process over the window, in host order. */
  hostsCpuMs: number[];
  /** CPU of the measurement process (the submitter, and the harness counting statuses). */
  measurerCpuMs: number;
  members: MemberPass[];
  /** Requests of the harness's own session (left out of the farm's count), and of the submitter. */
  adminRequests: number;
  submitterRequests: number;
  /** Write transactions: the leader's proposals (zk_proposal_count). */
  txns: number;
  /** Change of zk_approximate_data_size: the bytes of data the pass left in the tree. */
  dataBytes: number;
  /** Tasks of the pass each host's workers ran, in host order. */
  tasksByHost: number[];
}

/** One measurement of the multi-host scenario: one farm over `hosts` runtime processes, one or two passes. */
export interface MultiHostResult {
  hosts: number;
  /** The roles of each host, in host order. */
  perHost: Array<{ masters: number; workers: number }>;
  capacity: number;
  tasks: number;
  /** The first runtime started → every host said ready, a leader and every worker registered. */
  startMs: number;
  /** The host whose master led (index in host order). */
  leaderHost: number;
  /** Cold (the first N after start), then the steady state (N more on the same farm). */
  passes: MultiHostPass[];
  check: FarmCheckSummary;
}
