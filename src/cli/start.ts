/**
 * `runtime [start]`: run a farm of masters and workers in this process, one thread per role.
 *
 * Without --zk (or ZKFARM_ZK, or `zk` in the config file) it first starts the embedded ZooKeeper under
 * the workdir and publishes where it listens, so `runtime submit` in another terminal finds it.
 * Every flag and the config file are checked before anything starts: a mistake exits 2 with one line.
 *
 * Shutdown: SIGINT/SIGTERM/SIGHUP → workers drain up to --drain-timeout, masters step down, sessions
 * close, the embedded ZooKeeper stops, exit 0. A second signal ends everything at once (exit 130).
 */
import { dirname } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type pino from 'pino';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { TASK_DIRS, type TaskDirs } from '../exec/index.js';
import { type CliFlags, loadConfigFile, resolveFarmSpec } from '../host/config.js';
import { type ConnectSource, type EmbeddedZooKeeper, startEmbeddedZooKeeper } from '../host/embedded.js';
import { createLogger, flushLogger, Host, LOG_LEVELS } from '../host/index.js';
import type { FarmSpec } from '../host/types.js';
import { type Dashboard, startDashboard } from '../web/index.js';
import { prepareTls, readTlsFiles, splitConnectString } from '../zk/index.js';
import { EXIT_OK, type Io, openSession, wholeNumber } from './common.js';
import {
  addTlsOptions,
  loadTls,
  mergeTls,
  type TlsFlags,
  type TlsSetting,
  tlsHint,
  tlsSettingFromFlags,
} from './zk-tls.js';

export interface StartOptions extends TlsFlags {
  masters?: number;
  workers?: number;
  zk?: string;
  config?: string;
  workdir?: string;
  capacity?: number;
  prefetch?: number | 'auto';
  allowShell?: boolean;
  taskDirs?: TaskDirs;
  sessionTimeout?: number;
  namePrefix?: string;
  logLevel: string;
  auth?: string;
  drainTimeout: number;
  connectTimeout: number;
  restart: boolean;
  http?: string;
  httpControls?: boolean;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export function registerStart(program: Command, io: Io, setExit: (code: number) => void): void {
  const cmd = program
    .command('start', { isDefault: true })
    .description('run masters and workers in this process (the default command)')
    .option('--masters <n>', "masters to run (replaces the config file's masters)", wholeNumber(0))
    .option('--workers <n>', "workers to run (replaces the config file's workers)", wholeNumber(0))
    .option(
      '--zk <connect>',
      'ZooKeeper connect string, host:port[,host:port...][/chroot] (default: embedded)',
    )
    .option('-c, --config <file>', 'a YAML or JSON config file (flags override it)')
    .option(
      '--workdir <dir>',
      "where task output and the embedded ZooKeeper's data go (default ./zkfarm-work)",
    )
    .option('--capacity <n>', 'tasks each worker runs at once (default 4)', wholeNumber(1))
    .option(
      '--prefetch <n|auto>',
      'tasks each worker may hold beyond --capacity: a whole number, or auto to follow task durations (default auto)',
      wholeNumberOrAuto,
    )
    .option(
      '--allow-shell',
      'let workers run {"cmd": ...} tasks (anyone who can write /tasks could run anything)',
    )
    .addOption(
      new Option(
        '--task-dirs <when>',
        'when a task gets <workdir>/<worker>/<task>/ with result.json: on-demand (shell tasks, and ' +
          'handlers that use their outputDir) or always (default on-demand)',
      ).choices(TASK_DIRS),
    )
    .option(
      '--session-timeout <ms>',
      'ZooKeeper session timeout of every role (default 10000)',
      wholeNumber(1),
    )
    .option(
      '--name-prefix <prefix>',
      'role names are <prefix>-master-1, <prefix>-worker-1, ... (default: host name)',
    )
    .option('--log-level <level>', `one of ${LOG_LEVELS.join(', ')}`, 'info')
    .option('--auth <user:password>', 'digest credentials; nodes the farm creates are then only theirs');
  addTlsOptions(cmd)
    .option(
      '--drain-timeout <ms>',
      'on stop, how long workers may finish running tasks',
      wholeNumber(0),
      30_000,
    )
    .option(
      '--connect-timeout <ms>',
      'give up when ZooKeeper cannot be reached this long',
      wholeNumber(1),
      15_000,
    )
    .option('--no-restart', 'do not restart role threads that die')
    .option(
      '--http <host:port>',
      'serve the dashboard, /metrics and /healthz there (loopback unless you say otherwise)',
    )
    .option(
      '--http-controls',
      "let the dashboard pause, drain, crash, add and remove this host's roles (off by default)",
    )
    .allowExcessArguments()
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  runtime --masters 2 --workers 8                 a farm on an embedded ZooKeeper',
        '  runtime --config farm.yaml --workers 4          the file, with 4 workers instead of its own',
        '  runtime --zk zk1:2181,zk2:2181/farm-a --masters 0 --workers 16 --name-prefix gpu1',
        '  runtime --zk-tls                                 an embedded ZooKeeper that speaks TLS only',
        '  runtime --zk zk1:2281/farm-a --zk-ca ca.pem --zk-cert client.pem --zk-key client-key.pem',
        '',
        'Then, from another terminal: runtime submit \'{"handler":"echo","input":"hi"}\' --wait',
      ].join('\n'),
    )
    .action(async (opts: StartOptions, cmd: Command) => {
      if (cmd.args.length > 0) {
        throw new ZkfarmError(
          ErrorCodes.INVALID_ARGUMENT,
          `unknown command "${cmd.args[0]}": the commands are start (the default), submit, status, dashboard and bench (see runtime --help)`,
        );
      }
      setExit(await runStart(opts, io));
    });
}

/** Check everything the user gave and build the spec; starts nothing. */
export async function planFarm(
  opts: StartOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{
  spec: FarmSpec;
  source: ConnectSource | 'config' | 'embedded';
  tls: TlsSetting | undefined;
  httpToken?: string;
}> {
  if (!(LOG_LEVELS as readonly string[]).includes(opts.logLevel)) {
    throw new ZkfarmError(
      ErrorCodes.CONFIG_INVALID,
      `--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${opts.logLevel}"`,
    );
  }
  const config = opts.config !== undefined ? await loadConfigFile(opts.config) : undefined;
  const flags: CliFlags = {};
  const zk = opts.zk ?? (env['ZKFARM_ZK']?.trim() || undefined);
  if (zk !== undefined) flags.zk = zk;
  if (opts.masters !== undefined) flags.masters = opts.masters;
  if (opts.workers !== undefined) flags.workers = opts.workers;
  if (opts.workdir !== undefined) flags.workdir = opts.workdir;
  if (opts.capacity !== undefined) flags.capacity = opts.capacity;
  if (opts.prefetch !== undefined) flags.prefetch = opts.prefetch;
  if (opts.allowShell) flags.allowShell = true;
  if (opts.taskDirs !== undefined) flags.taskDirs = opts.taskDirs;
  if (opts.sessionTimeout !== undefined) flags.sessionTimeout = opts.sessionTimeout;
  if (opts.namePrefix !== undefined) flags.namePrefix = opts.namePrefix;
  if (opts.auth !== undefined) flags.auth = opts.auth;
  const spec = resolveFarmSpec(config, flags);
  const source =
    opts.zk !== undefined
      ? 'flag'
      : flags.zk !== undefined
        ? 'env'
        : config?.zk !== undefined
          ? 'config'
          : 'embedded';
  const tls = mergeTls(config?.zkTls, tlsSettingFromFlags(opts));
  checkTls(spec, source, tls);
  return { spec, source, tls, ...(config?.httpToken !== undefined ? { httpToken: config.httpToken } : {}) };
}

/**
 * TLS for the farm's sessions, read and checked now (before anything starts). The embedded ZooKeeper
 * makes its own certificates: files named for it are a mistake; its client files are read at start.
 */
function checkTls(spec: FarmSpec, source: string, tls: TlsSetting | undefined): void {
  if (tls === undefined) return;
  if (source === 'embedded') {
    const named = Object.keys(tls);
    if (named.length > 0)
      throw new ZkfarmError(
        ErrorCodes.CONFIG_INVALID,
        `--zk-${named[0]} (zk.tls.${named[0]}): the embedded ZooKeeper makes its own certificates in ` +
          '<workdir>/tls/; TLS files are for a ZooKeeper given with --zk (or zk.connect): give both, or neither',
      );
    return;
  }
  spec.tls = loadTls(tls, undefined, spec.connect);
  if (spec.tls) prepareTls(spec.tls);
}

function count(spec: FarmSpec, kind: 'master' | 'worker'): string {
  const n = spec.roles.filter((r) => r.kind === kind).length;
  return `${n} ${kind}${n === 1 ? '' : 's'}`;
}

export async function runStart(opts: StartOptions, io: Io): Promise<number> {
  const { spec, source, tls, httpToken } = await planFarm(opts);
  const wantEmbedded = source === 'embedded';

  let host: Host | undefined;
  let dashboard: Dashboard | undefined;
  let embedded: EmbeddedZooKeeper | undefined;
  let logger: pino.Logger | undefined;
  let signals = 0;
  let requestStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => {
    requestStop = resolve;
  });
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      io.err(
        `runtime: ${sig}: stopping (workers drain up to ${opts.drainTimeout} ms); press Ctrl-C again to stop at once`,
      );
      requestStop();
      return;
    }
    io.err(`runtime: ${sig} again: stopping at once`);
    // Exiting kills the role threads; the zk layer's exit hook SIGKILLs the embedded java synchronously.
    void host?.kill();
    void embedded?.kill();
    if (logger) flushLogger(logger);
    process.exit(130);
  };
  for (const sig of SIGNALS) process.on(sig, onSignal);

  try {
    if (wantEmbedded) {
      embedded = await startEmbeddedZooKeeper({
        workdir: spec.workdir,
        admission: { keptResults: spec.retention?.maxCount },
        tls: tls !== undefined,
      });
      spec.connect = embedded.connect;
      if (embedded.tls) spec.tls = readTlsFiles(embedded.tls);
      io.err(
        `runtime: embedded ZooKeeper listening on ${embedded.connect}` +
          (embedded.tls ? `, TLS only with certificates in ${dirname(embedded.tls.ca)}` : '') +
          ` (data kept in ${embedded.dataDir}, heap ${embedded.heap.heapMb} MiB)`,
      );
      if (embedded.heap.capped)
        io.err(
          `runtime: the embedded ZooKeeper's heap holds about ${embedded.heap.tasksThatFit} tasks of 512 KiB ` +
            'besides the kept results: queue fewer large tasks than that at once (Submitter maxQueue), or pass large inputs as files',
        );
    } else {
      // A clear message now beats roles retrying forever against a wrong address. The servers only: the
      // chroot may not exist yet, and the roles create it.
      const sup = await openSession(splitConnectString(spec.connect).hosts.join(','), source, {
        ...(spec.auth !== undefined ? { auth: spec.auth } : {}),
        ...(spec.tls !== undefined ? { tls: spec.tls } : {}),
        connectTimeout: opts.connectTimeout,
      });
      await sup.stop();
    }
    if (signals > 0) return await shutdown();

    logger = createLogger({ level: opts.logLevel });
    host = await Host.start(spec, { logger, restart: opts.restart });
    if (opts.http !== undefined) {
      dashboard = await startDashboard({
        http: opts.http,
        host,
        controls: opts.httpControls === true,
        logger,
        ...(httpToken !== undefined ? { token: httpToken } : {}),
      });
      // The URL with the token lets a browser use the controls (and see results of a farm with ACLs).
      io.err(
        `runtime: dashboard at ${dashboard.loginUrl}${opts.httpControls ? ' (controls on)' : ' (read-only: --http-controls turns controls on)'}`,
      );
    }
    const zkHint = wantEmbedded ? '' : ` --zk ${spec.connect}${tlsHint(tls)}`;
    io.err(
      `runtime: ready: ${count(spec, 'master')}, ${count(spec, 'worker')} on ${spec.connect} ` +
        `(workdir ${spec.workdir})`,
    );
    io.err(
      `runtime: from another terminal: npx runtime submit '{"handler":"echo","input":"hello"}' --wait${zkHint}` +
        `   |   npx runtime status${zkHint}   |   Ctrl-C here stops the farm`,
    );
    await stopRequested;
    return await shutdown();
  } catch (err) {
    await dashboard?.close().catch(() => {});
    await host?.stop({ drain: false, deadlineMs: 2000 }).catch(() => {});
    await embedded?.stop().catch(() => {});
    throw err;
  } finally {
    for (const sig of SIGNALS) process.removeListener(sig, onSignal);
    if (logger) flushLogger(logger);
  }

  async function shutdown(): Promise<number> {
    await dashboard?.close();
    await host?.stop({ drain: true, deadlineMs: opts.drainTimeout });
    await embedded?.stop();
    io.err('runtime: stopped');
    return EXIT_OK;
  }
}

/** `--prefetch`: a whole number >= 0, or "auto". */
function wholeNumberOrAuto(value: string): number | 'auto' {
  if (value.trim() === 'auto') return 'auto';
  try {
    return wholeNumber(0)(value);
  } catch {
    throw new InvalidArgumentError(`expected a whole number >= 0, or "auto", got "${value}"`);
  }
}
