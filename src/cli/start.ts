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
import type { Command } from 'commander';
import type pino from 'pino';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { OptionsOf } from '../farm/option-schema.js';
import { type CliFlags, loadConfigFile, resolveFarmSpec } from '../host/config.js';
import { type ConnectSource, type EmbeddedZooKeeper, startEmbeddedZooKeeper } from '../host/embedded.js';
import type { SpawnRoleThread } from '../host/host.js';
import { createLogger, flushLogger, Host, ROLE_STOP_GRACE_MS } from '../host/index.js';
import { type RuntimeFlag, runtimeFlags } from '../host/options.js';
import type { FarmSpec } from '../host/types.js';
import { type Dashboard, type RoleFaults, startDashboard } from '../web/index.js';
import { EXIT_FAILURE, EXIT_OK, type FlagField, flagOption, type Io, openSession } from './common.js';

/** The options of `runtime start`, as commander hands them over (see host/options.ts for each). */
export type StartOptions = OptionsOf<typeof runtimeFlags> & {
  logLevel: string;
  drainTimeout: number;
  connectTimeout: number;
  restart: boolean;
};

/** The flags that shape the farm: resolveFarmSpec merges them over the config file. */
const FARM_FLAGS = [
  'masters',
  'workers',
  'workdir',
  'capacity',
  'prefetch',
  'allowShell',
  'taskDirs',
  'sessionTimeout',
  'namePrefix',
  'auth',
] as const satisfies ReadonlyArray<keyof CliFlags & RuntimeFlag>;

/** Flags whose default commander fills in: those that no config file setting could supply instead. */
const CLI_DEFAULTS: ReadonlySet<RuntimeFlag> = new Set(['logLevel', 'drainTimeout', 'connectTimeout']);

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * How long past --drain-timeout a stop may take before runtime ends at once: the roles' own grace
 * (ROLE_STOP_GRACE_MS, after which their threads are terminated), then the dashboard and the embedded
 * ZooKeeper (stopped with SIGTERM, then SIGKILL after 5 s).
 */
export const STOP_BOUND_MS = ROLE_STOP_GRACE_MS + 10_000;

export function registerStart(program: Command, io: Io, setExit: (code: number) => void): void {
  const command = program.command('start', { isDefault: true });
  for (const [key, spec] of Object.entries(runtimeFlags) as Array<[RuntimeFlag, FlagField]>) {
    command.addOption(flagOption(spec, { applyDefault: CLI_DEFAULTS.has(key) }));
  }
  command
    .description('run masters and workers in this process (the default command)')
    .allowExcessArguments()
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  runtime --masters 2 --workers 8                 a farm on an embedded ZooKeeper',
        '  runtime --config farm.yaml --workers 4          the file, with 4 workers instead of its own',
        '  runtime --zk zk1:2181,zk2:2181/farm-a --masters 0 --workers 16 --name-prefix gpu1',
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
): Promise<{ spec: FarmSpec; source: ConnectSource | 'config' | 'embedded' }> {
  if (opts.httpChaos && !(opts.httpControls && opts.http !== undefined)) {
    throw new ZkfarmError(
      ErrorCodes.CONFIG_INVALID,
      '--http-chaos: the Crash button is a dashboard control: give --http <host:port> and --http-controls too',
    );
  }
  const config = opts.config !== undefined ? await loadConfigFile(opts.config) : undefined;
  const flags: CliFlags = {};
  for (const key of FARM_FLAGS) if (opts[key] !== undefined) Object.assign(flags, { [key]: opts[key] });
  const zk = opts.zk ?? (env['ZKFARM_ZK']?.trim() || undefined);
  if (zk !== undefined) flags.zk = zk;
  const spec = resolveFarmSpec(config, flags);
  const source =
    opts.zk !== undefined
      ? 'flag'
      : flags.zk !== undefined
        ? 'env'
        : config?.zk !== undefined
          ? 'config'
          : 'embedded';
  return { spec, source };
}

function count(spec: FarmSpec, kind: 'master' | 'worker'): string {
  const n = spec.roles.filter((r) => r.kind === kind).length;
  return `${n} ${kind}${n === 1 ? '' : 's'}`;
}

export async function runStart(opts: StartOptions, io: Io): Promise<number> {
  const { spec, source } = await planFarm(opts);
  const wantEmbedded = source === 'embedded';

  let host: Host | undefined;
  let dashboard: Dashboard | undefined;
  let embedded: EmbeddedZooKeeper | undefined;
  let logger: pino.Logger | undefined;
  let signals = 0;
  let requestStop!: () => void;
  const stopRequested = new Promise<'stop'>((resolve) => {
    requestStop = () => resolve('stop');
  });
  const stopAtOnce = (code: number) => {
    // Exiting kills the role threads; the zk layer's exit hook SIGKILLs the embedded java synchronously.
    void host?.kill();
    void embedded?.kill();
    if (logger) flushLogger(logger);
    process.exit(code);
  };
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      io.err(
        `runtime: ${sig}: stopping (workers drain up to ${opts.drainTimeout} ms); press Ctrl-C again to stop at once`,
      );
      // The stop is bounded whatever the roles and ZooKeeper do (docs/reliability.md).
      const bound = opts.drainTimeout + STOP_BOUND_MS;
      setTimeout(() => {
        io.err(`runtime: the stop did not end within ${bound} ms; stopping at once`);
        stopAtOnce(EXIT_FAILURE);
      }, bound).unref();
      requestStop();
      return;
    }
    io.err(`runtime: ${sig} again: stopping at once`);
    stopAtOnce(130);
  };
  for (const sig of SIGNALS) process.on(sig, onSignal);

  try {
    if (wantEmbedded) {
      embedded = await startEmbeddedZooKeeper({ workdir: spec.workdir });
      spec.connect = embedded.connect;
      io.err(
        `runtime: embedded ZooKeeper listening on ${embedded.connect} (data kept in ${embedded.dataDir})`,
      );
    } else {
      // A clear message now beats roles retrying forever against a wrong address.
      const sup = await openSession(spec.connect, source, {
        ...(spec.auth !== undefined ? { auth: spec.auth } : {}),
        connectTimeout: opts.connectTimeout,
      });
      await sup.stop();
    }
    if (signals > 0) return await shutdown();

    logger = createLogger({ level: opts.logLevel });
    const { roles, ...settings } = spec;
    const threads = await roleThreads(opts);
    host = Host.create(settings, { logger, restart: opts.restart, spawn: threads.spawn });
    // A signal during the start stops the host, whatever its roles are waiting for.
    const started = host.startRoles(roles);
    started.catch(() => {});
    if ((await Promise.race([started.then(() => 'started' as const), stopRequested])) === 'stop')
      return await shutdown();
    if (opts.http !== undefined) {
      dashboard = await startDashboard({
        http: opts.http,
        host,
        controls: opts.httpControls === true,
        faults: threads.faults,
        logger,
      });
      io.err(
        `runtime: dashboard at ${dashboard.url}${opts.httpControls ? ` (controls on${threads.faults ? ', Crash on' : ''})` : ' (read-only: --http-controls turns controls on)'}`,
      );
    }
    const zkHint = wantEmbedded ? '' : ` --zk ${spec.connect}`;
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

/**
 * How role threads are made: plainly, unless the dashboard's Crash control is wanted (fault injection, from
 * zkfarm/testing) or runtime runs from its TypeScript sources (development, tests), which threads cannot
 * load by themselves. The testing module is loaded only then.
 */
async function roleThreads(opts: StartOptions): Promise<{ spawn?: SpawnRoleThread; faults?: RoleFaults }> {
  const chaos = opts.httpChaos === true;
  if (!chaos && !import.meta.url.endsWith('.ts')) return {};
  const testing = await import('../testing/index.js');
  if (!chaos) return { spawn: testing.sourceThreads };
  const faults = new testing.FaultInjector();
  return { spawn: faults.spawn, faults };
}
