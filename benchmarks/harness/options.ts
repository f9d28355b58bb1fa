/**
 * Benchmark options and the three size presets.
 *
 * `full` is what the committed report comes from (under 20 minutes on a 2-core machine), `quick` is a
 * look at every scenario in under 3 minutes, `tiny` keeps the harness working in CI (a few hundred
 * tasks). Every load loop is bounded by the counts below and by the timeouts derived from them.
 */
import { ErrorCodes, ZkfarmError } from '../../src/errors.js';
import {
  DEFAULT_SCENARIOS,
  type FaultKind,
  type RedisPersistence,
  SCENARIOS,
  type ScenarioName,
  type Size,
} from './types.js';

export interface BenchOptions {
  /** Scenarios to run, in any order (they always run in the order of SCENARIOS). @defaultValue all but `services` (DEFAULT_SCENARIOS) */
  scenarios?: ScenarioName[];
  /** Reduced sizes (same as `size: 'quick'`). @defaultValue false */
  quick?: boolean;
  /** Size preset; wins over `quick`. @defaultValue 'full' (or 'quick' with `quick`) */
  size?: Size;
  /** Where JSON, Markdown and SVG files go. @defaultValue `<repo>/benchmarks/results` */
  out?: string;
  /** Repeats of every measurement, overriding the preset. */
  repeats?: number;
  /** Tasks per throughput/peer measurement, overriding the preset. */
  tasks?: number;
  /** Redis durability for the BullMQ peer. @defaultValue 'everysec' */
  redisPersistence?: RedisPersistence;
  /** Write a CPU profile of every measurement process (all threads) into `<out>/profiles/`. @defaultValue false */
  cpuProf?: boolean;
  /** `auto`: a bar on a terminal, lines otherwise. @defaultValue 'auto' */
  progress?: 'auto' | 'bar' | 'lines' | 'none';
  /** Where tables go. @defaultValue process.stdout */
  stdout?: NodeJS.WritableStream;
  /** Where progress goes. @defaultValue process.stderr */
  stderr?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Stops the run (everything started is stopped). */
  signal?: AbortSignal;
  /** Install SIGINT/SIGTERM handlers for the run's duration. @defaultValue true */
  handleSignals?: boolean;
}

export interface Preset {
  repeats: { ceiling: number; throughput: number; latency: number; scaling: number; failover: number };
  ceiling: {
    clients: number[];
    singles: number;
    multis: number;
    batch: number;
    window: number;
    multiWindow: number;
    maxMsPerVariant: number;
  };
  throughput: { tasks: number; masters: number; workers: number; capacity: number };
  latency: { idleTasks: number; idleGapMs: number; fractions: number[]; durationMs: number };
  scaling: { workers: number[]; tasks: number; rssRoles: number[] };
  failover: {
    faults: FaultKind[];
    /** One measurement process for all faults in turn, or one per fault. */
    together: boolean;
    sessionTimeout: number;
    steadyMs: number;
    /** Offered rate as a fraction of the measured capacity. */
    rateFraction: number;
  };
  /** Two runtime hosts, a service of 3, the host with two SIGKILLed (scenarios/services.ts). */
  services: { repeats: number; sessionTimeout: number; stopGraceMs: number };
  /** Tasks queued then drained, and the raw creates' window (run only when named). */
  scale: { tasks: number; window: number };
  /** Alternating pairs of a new runtime and a new BullMQ, N tasks each (scenarios/fresh.ts). */
  fresh: { repeats: number; tasks: number };
  /** Alternating pairs of one and two runtime processes on a 3-member ensemble, N tasks a pass (scenarios/multi-host.ts). */
  multiHost: { repeats: number; tasks: number };
  /** Session timeout of the roles outside failover (the farm's default). */
  sessionTimeout: number;
}

const FAULTS: FaultKind[] = ['leader-crash', 'leader-stop', 'worker-crash'];

export const PRESETS: Record<Size, Preset> = {
  full: {
    repeats: { ceiling: 3, throughput: 5, latency: 2, scaling: 2, failover: 2 },
    ceiling: {
      clients: [1, 4],
      singles: 20_000,
      multis: 100_000,
      batch: 100,
      window: 256,
      multiWindow: 8,
      maxMsPerVariant: 20_000,
    },
    throughput: { tasks: 20_000, masters: 2, workers: 8, capacity: 4 },
    latency: { idleTasks: 30, idleGapMs: 100, fractions: [0.1, 0.25, 0.5, 0.75, 0.9], durationMs: 8000 },
    scaling: { workers: [1, 2, 4, 8, 16, 32], tasks: 5000, rssRoles: [8, 32, 64] },
    failover: { faults: FAULTS, together: false, sessionTimeout: 10_000, steadyMs: 4000, rateFraction: 0.5 },
    services: { repeats: 5, sessionTimeout: 4000, stopGraceMs: 1000 },
    scale: { tasks: 1_000_000, window: 256 },
    fresh: { repeats: 5, tasks: 20_000 },
    multiHost: { repeats: 3, tasks: 20_000 },
    sessionTimeout: 10_000,
  },
  quick: {
    repeats: { ceiling: 2, throughput: 3, latency: 1, scaling: 1, failover: 1 },
    ceiling: {
      clients: [1, 4],
      singles: 3000,
      multis: 15_000,
      batch: 100,
      window: 256,
      multiWindow: 8,
      maxMsPerVariant: 5000,
    },
    throughput: { tasks: 1500, masters: 2, workers: 8, capacity: 4 },
    latency: { idleTasks: 10, idleGapMs: 50, fractions: [0.25, 0.5, 0.75], durationMs: 2000 },
    scaling: { workers: [1, 4, 16], tasks: 800, rssRoles: [8, 32] },
    failover: { faults: FAULTS, together: true, sessionTimeout: 4000, steadyMs: 1500, rateFraction: 0.5 },
    services: { repeats: 1, sessionTimeout: 4000, stopGraceMs: 1000 },
    scale: { tasks: 20_000, window: 256 },
    fresh: { repeats: 2, tasks: 5000 },
    multiHost: { repeats: 2, tasks: 3000 },
    sessionTimeout: 10_000,
  },
  tiny: {
    repeats: { ceiling: 1, throughput: 1, latency: 1, scaling: 1, failover: 1 },
    ceiling: {
      clients: [1, 2],
      singles: 500,
      multis: 2000,
      batch: 100,
      window: 64,
      multiWindow: 4,
      maxMsPerVariant: 3000,
    },
    throughput: { tasks: 200, masters: 2, workers: 4, capacity: 4 },
    latency: { idleTasks: 3, idleGapMs: 20, fractions: [0.5], durationMs: 600 },
    scaling: { workers: [1, 2], tasks: 100, rssRoles: [4] },
    failover: {
      faults: ['leader-stop', 'worker-crash'],
      together: true,
      sessionTimeout: 4000,
      steadyMs: 600,
      rateFraction: 0.3,
    },
    services: { repeats: 1, sessionTimeout: 4000, stopGraceMs: 1000 },
    scale: { tasks: 4000, window: 64 },
    fresh: { repeats: 1, tasks: 300 },
    multiHost: { repeats: 1, tasks: 300 },
    sessionTimeout: 10_000,
  },
};

export interface ResolvedOptions {
  scenarios: ScenarioName[];
  size: Size;
  preset: Preset;
  out: string;
  redisPersistence: RedisPersistence;
  cpuProf: boolean;
  progress: 'bar' | 'lines' | 'none';
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  signal: AbortSignal | undefined;
  handleSignals: boolean;
}

function invalid(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, message);
}

/** Parse a comma-separated scenario list, naming the allowed ones when a name is wrong. */
export function parseScenarios(text: string): ScenarioName[] {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0)
    throw invalid(`--scenario: expected a comma-separated list of ${SCENARIOS.join(', ')}, got "${text}"`);
  for (const n of names) {
    if (!(SCENARIOS as readonly string[]).includes(n)) {
      throw invalid(`--scenario: unknown scenario "${n}"; expected one or more of ${SCENARIOS.join(', ')}`);
    }
  }
  return names as ScenarioName[];
}

export function resolveOptions(options: BenchOptions, defaultOut: string): ResolvedOptions {
  const size: Size = options.size ?? (options.quick ? 'quick' : 'full');
  if (!(size in PRESETS)) throw invalid(`size: expected tiny, quick or full, got ${JSON.stringify(size)}`);
  const base = PRESETS[size];
  const preset: Preset = structuredClone(base);
  if (options.repeats !== undefined) {
    if (!Number.isInteger(options.repeats) || options.repeats < 1 || options.repeats > 50) {
      throw invalid(`repeats: expected a whole number from 1 to 50, got ${options.repeats}`);
    }
    const r = options.repeats;
    preset.repeats = { ceiling: r, throughput: r, latency: r, scaling: r, failover: r };
    preset.services.repeats = r;
    preset.fresh.repeats = r;
    preset.multiHost.repeats = r;
  }
  if (options.tasks !== undefined) {
    if (!Number.isInteger(options.tasks) || options.tasks < 10 || options.tasks > 1_000_000) {
      throw invalid(`tasks: expected a whole number from 10 to 1000000, got ${options.tasks}`);
    }
    preset.throughput.tasks = options.tasks;
    preset.scale.tasks = options.tasks;
    preset.fresh.tasks = options.tasks;
    preset.multiHost.tasks = options.tasks;
  }
  const persistence = options.redisPersistence ?? 'everysec';
  if (!['none', 'everysec', 'always'].includes(persistence)) {
    throw invalid(`redisPersistence: expected none, everysec or always, got ${JSON.stringify(persistence)}`);
  }
  const selected = options.scenarios?.length ? options.scenarios : [...DEFAULT_SCENARIOS];
  for (const s of selected) {
    if (!(SCENARIOS as readonly string[]).includes(s))
      throw invalid(`scenarios: unknown scenario "${s}"; expected ${SCENARIOS.join(', ')}`);
  }
  const stderr = options.stderr ?? process.stderr;
  const progress = options.progress ?? 'auto';
  return {
    scenarios: SCENARIOS.filter((s) => selected.includes(s)),
    size,
    preset,
    out: options.out ?? defaultOut,
    redisPersistence: persistence,
    cpuProf: options.cpuProf ?? false,
    progress: progress === 'auto' ? (stderr.isTTY ? 'bar' : 'lines') : progress,
    stdout: options.stdout ?? process.stdout,
    stderr,
    signal: options.signal,
    handleSignals: options.handleSignals ?? true,
  };
}
