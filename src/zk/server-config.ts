/**
 * What a ZooKeeper server the launcher starts runs with: its zoo.cfg settings (loopback only, every
 * four-letter word allowed, no admin server, no limit of connections per address) and its JVM
 * options, written as Java Properties. Shared by the standalone launcher (server.ts) and the ensemble
 * (ensemble.ts).
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';

/** Every server the launcher starts listens here, and only here. */
export const LOOPBACK = '127.0.0.1';

/**
 * The collector of every server the launcher starts: the serial one (least CPU per task on a few cores),
 * with a young generation of 32 MB. Left to size itself (a third of the heap) it collected every ~250 ms
 * under load and paused ZooKeeper for ~27 ms each time (up to ~100), holding up every task in flight; at
 * 32 MB it pauses ~4× as often for ~8 ms, for the same total (benchmarks/README.md, "ZooKeeper's
 * young-generation pauses").
 */
export const SERVER_GC_OPTS: readonly string[] = ['-XX:+UseSerialGC', '-Xmn32m'];
const DEFAULT_JAVA_OPTS = ['-Xmx256m', ...SERVER_GC_OPTS];
const COLLECTOR = /^-XX:\+Use\w+GC$/;

/**
 * `base` then `extra` (later options win in a JVM), except that a collector picked in `extra` replaces
 * ours with its own defaults: a JVM given two collectors refuses to start.
 */
export function withJavaOpts(base: readonly string[], extra: readonly string[]): string[] {
  const ownCollector = extra.some((o) => COLLECTOR.test(o));
  return [...(ownCollector ? base.filter((o) => !SERVER_GC_OPTS.includes(o)) : base), ...extra];
}
const FIXED_JAVA_OPTS = [
  '-Dzookeeper.admin.enableServer=false',
  '-Dzookeeper.jmx.log4j.disable=true',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
  '-Dorg.slf4j.simpleLogger.showDateTime=true',
  '-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS',
];

/** The settings a server runs with, for reports. */
export interface ZkServerConfig {
  mode: 'standalone' | 'quorum';
  java: string;
  classpath: string;
  mainClass: string;
  javaOpts: string[];
  configFile: string;
  /** The zoo.cfg settings, in file order. */
  settings: Record<string, string>;
}

/** The settings a caller may choose, for a standalone server and for each member of an ensemble. */
export interface ZkServerSettings {
  /** @defaultValue 2000 */
  tickTime?: number;
  /** Server-side session timeout bounds (ms). @defaultValue ZooKeeper's 2×/20× tickTime */
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  /** More zoo.cfg settings; they override ours. */
  extraConfig?: Record<string, string | number | boolean>;
  /** JVM options. @defaultValue ['-Xmx256m', '-XX:+UseSerialGC', '-Xmn32m'] (admin server off is always added) */
  javaOpts?: string[];
}

/** The JVM options: the fixed ones, then the caller's (or the defaults). */
export function javaOptions(javaOpts: string[] | undefined): string[] {
  return [...FIXED_JAVA_OPTS, ...(javaOpts ?? DEFAULT_JAVA_OPTS)];
}

/** zoo.cfg's text: Java Properties. */
export function configText(settings: Record<string, string>): string {
  // Java Properties: a backslash is an escape character.
  const lines = Object.entries(settings).map(([k, v]) => `${k}=${v.replace(/\\/g, '\\\\')}`);
  return `# written by zkfarm\n${lines.join('\n')}\n`;
}

/** ZKFARM_INVALID_ARGUMENT unless `value` is absent or a whole number above 0. */
export function checkPositive(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `${name} must be a positive integer, got ${String(value)}`,
    );
  }
}

/** The settings of a plaintext server on `port` with its data in `dataDir`. */
export function baseSettings(opts: ZkServerSettings, dataDir: string, port: number): Record<string, string> {
  checkPositive('tickTime', opts.tickTime);
  checkPositive('minSessionTimeout', opts.minSessionTimeout);
  checkPositive('maxSessionTimeout', opts.maxSessionTimeout);
  const s: Record<string, string> = {
    tickTime: String(opts.tickTime ?? 2000),
    initLimit: '10',
    syncLimit: '5',
    dataDir,
    clientPort: String(port),
    clientPortAddress: LOOPBACK,
    // Many clients from one address (tests, benchmarks): the default limit of 60 is too low.
    maxClientCnxns: '0',
    '4lw.commands.whitelist': '*',
    'admin.enableServer': 'false',
  };
  if (opts.minSessionTimeout !== undefined) s['minSessionTimeout'] = String(opts.minSessionTimeout);
  if (opts.maxSessionTimeout !== undefined) s['maxSessionTimeout'] = String(opts.maxSessionTimeout);
  return s;
}

/** The caller's extra settings as zoo.cfg strings. */
export function stringify(
  extra: Record<string, string | number | boolean> | undefined,
): Record<string, string> {
  return Object.fromEntries(Object.entries(extra ?? {}).map(([k, v]) => [k, String(v)]));
}
