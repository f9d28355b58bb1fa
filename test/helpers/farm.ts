/**
 * In-process farms for tests: masters, workers, submitters and an admin client on one chroot, each
 * stopped after the file, and a logger that keeps what the roles log, for assertions.
 *
 *   const cleanups = useCleanups();   // first: its hook must run before the server stops
 *   const zk = useZooKeeper();
 *   const farm = useFarm(cleanups, { workdir });
 *   const m = await farm.master(root, 'm1');
 */
import type { MasterOptions, WorkerOptions } from '../../src/farm/index.js';
import { Master, Submitter, type SubmitterOptions, Worker } from '../../src/farm/index.js';
import { type ConnectOptions, connect, type Logger, type ZkClient } from '../../src/zk/index.js';
import type { Cleanup } from './cleanups.js';
import { type FaultProxy, proxyConnectString, startFaultProxy } from './faults.js';
import { RunLog } from './run-log.js';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  obj: Record<string, unknown>;
  /** The message and the logged error's message, for matching. */
  text: string;
}

export interface CapturedLogger extends Logger {
  readonly lines: LogLine[];
  /** Lines at `level` whose text matches `pattern`. */
  count(level: LogLine['level'], pattern: RegExp): number;
}

/** A logger that keeps every line (up to 20,000) and hands each to `onLine` as it comes. */
export function captureLogger(onLine?: (line: LogLine) => void): CapturedLogger {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (obj: object, msg = ''): void => {
      const o = obj as Record<string, unknown>;
      const err = o['err'] instanceof Error ? ` ${(o['err'] as Error).message}` : '';
      const line: LogLine = { level, msg, obj: o, text: `${msg}${err}` };
      if (lines.length < 20_000) lines.push(line);
      onLine?.(line);
    };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    count: (level, pattern) => lines.filter((l) => l.level === level && pattern.test(l.text)).length,
  };
}

export interface FarmDefaults {
  workdir: string;
  /** @defaultValue 4000 */
  sessionTimeout?: number;
}

export interface FarmFactory {
  master(root: string, name: string, extra?: Partial<MasterOptions>): Promise<Master>;
  worker(root: string, name: string, extra?: Partial<WorkerOptions>): Promise<Worker>;
  submitter(root: string, extra?: Partial<SubmitterOptions>): Promise<Submitter>;
  /** A client on a supervised session of its own. */
  admin(root: string, extra?: Partial<ConnectOptions>): Promise<ZkClient>;
  /** The execution log of the workers made on this chroot (run-log.ts). */
  runs(root: string): RunLog;
  /** `root` through a fault proxy of its own (to slow, cut or blackhole one role's link). */
  proxied(root: string): Promise<{ proxy: FaultProxy; connect: string }>;
}

export function useFarm(cleanups: Cleanup[], defaults: FarmDefaults): FarmFactory {
  const sessionTimeout = defaults.sessionTimeout ?? 4000;
  const logs = new Map<string, RunLog>();
  const runsOf = (root: string) => {
    const log = logs.get(root) ?? new RunLog();
    logs.set(root, log);
    return log;
  };
  return {
    runs: runsOf,
    async proxied(root) {
      const proxy = await startFaultProxy({ target: root });
      cleanups.push(() => proxy.close());
      return { proxy, connect: proxyConnectString(proxy, root) };
    },
    async master(root, name, extra = {}) {
      const m = new Master({ name, connect: root, sessionTimeout, ...extra });
      cleanups.push(() => m.stop());
      await m.start();
      return m;
    },
    async worker(root, name, extra = {}) {
      const w = new Worker({
        name,
        connect: root,
        sessionTimeout,
        workdir: defaults.workdir,
        capacity: 4,
        ...extra,
        logger: runsOf(root).logger(name, extra.logger),
      });
      cleanups.push(() => w.stop({ drain: false }));
      await w.start();
      return w;
    },
    async submitter(root, extra = {}) {
      const s = await Submitter.open({ connect: root, sessionTimeout: 10_000, ...extra });
      cleanups.push(() => s.close());
      return s;
    },
    async admin(root, extra = {}) {
      const sup = connect({ connect: root, sessionTimeout: 10_000, ...extra });
      cleanups.push(() => sup.stop());
      return (await sup.ready).client;
    },
  };
}
