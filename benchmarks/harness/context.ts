/**
 * What a scenario gets from the orchestrator (benchmarks/harness/index.ts): the run's ZooKeeper, a way to run a
 * measurement in a fresh process, the redis-server for the peer, progress, and the figures other
 * scenarios of the same run already measured (capacity, ceiling), measuring them when they are missing.
 */
import type { ResolvedOptions } from './options.js';
import type { Progress } from './progress.js';
import type { RedisServer } from './redis.js';
import type {
  BullmqResult,
  CeilingResult,
  FarmResult,
  FarmShape,
  Job,
  ScenarioName,
  ScenarioReport,
  ZkTarget,
} from './types.js';

export interface CeilingFigures {
  /** Best median of pipelined single creates (creates/s) and the variant that reached it. */
  single: { variant: string; perSecond: number };
  /** Best median of creates batched in multis. */
  multi: { variant: string; perSecond: number };
}

export interface BenchContext {
  readonly opts: ResolvedOptions;
  readonly zk: { connectString: string; pid: number };
  readonly progress: Progress;
  readonly signal: AbortSignal;
  /** Reports written so far in this run. */
  readonly reports: Partial<Record<ScenarioName, ScenarioReport>>;
  /** A target with a fresh chroot of its own. */
  target(name: string): ZkTarget;
  /** Run one job in a fresh process; `describe` turns its result into the progress line. */
  measure<T>(job: Job, label: string, timeoutMs: number, describe: (r: T) => string): Promise<T>;
  /** The run's redis-server (started on first use), or why there is none. */
  redis(): Promise<RedisServer | { unavailable: string }>;
  /** The default farm shape (throughput's). */
  readonly defaultShape: FarmShape;
  /** Figures shared between scenarios of this run. */
  readonly shared: {
    farmRuns?: FarmResult[];
    bullRuns?: BullmqResult[];
    ceilingRuns?: CeilingResult[][];
    ceiling?: CeilingFigures;
  };
  /** Farm tasks/s of the default shape, cold: throughput's median, or one single-pass measurement made now. */
  capacity(): Promise<number>;
  /** The ceiling of this run: the ceiling scenario's, or one repeat measured now. */
  ceiling(): Promise<CeilingFigures>;
  /** Warm up another server (an ensemble) as the run's own was; resolves with the report's sentence. */
  warmUp(connectString: string): Promise<string>;
}

/**
 * Run one measurement of a series; when it fails (and the run was not interrupted), note why in
 * `failures` and return undefined, so the other measurements of the series still run and the report
 * shows the failure next to what was measured.
 */
export async function tolerant<T>(
  signal: AbortSignal,
  failures: string[],
  label: string,
  fn: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (signal.aborted) throw err;
    const message = err instanceof Error ? err.message : String(err);
    failures.push(`${label}: ${message.split('\n')[0]}`);
    return undefined;
  }
}

/** Throw when a series produced nothing at all. */
export function someOrThrow<T>(values: T[], failures: string[]): T[] {
  if (values.length === 0) throw new Error(failures.join('; ') || 'no measurement completed');
  return values;
}
