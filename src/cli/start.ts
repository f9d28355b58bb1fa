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
import type { Command } from 'commander';
import type pino from 'pino';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { OptionsOf } from '../farm/option-schema.js';
import { type CliFlags, resolveFarmSpec } from '../host/config.js';
import { loadConfigFile } from '../host/config-file.js';
import type { ConnectSource } from '../host/discovery.js';
import { type EmbeddedZooKeeper, extraJavaOpts, startEmbeddedZooKeeper } from '../host/embedded.js';
import {
  rehearsalLine,
  rehearsalTasks,
  warmEmbedded,
  warmEmbeddedRequests,
  warmUpBudget,
} from '../host/embedded-warm-up.js';
import { createLogger, flushLogger, Host } from '../host/index.js';
import { type RuntimeFlag, runtimeFlags } from '../host/options.js';
import type { SpawnRoleThread } from '../host/role-handle.js';
import { TasksWaiting } from '../host/tasks-waiting.js';
import type { FarmSpec } from '../host/types.js';
import { changeService, createService, listServices, type ServiceSpec } from '../services/index.js';
import { type Dashboard, type RoleFaults, startDashboard } from '../web/index.js';
import { splitConnectString } from '../zk/connect-string.js';
import { prepareTls, readTlsFiles } from '../zk/transport.js';
import { EXIT_OK, type FlagField, flagOption, type Io, openSession } from './common.js';
import { StopSignals } from './stop-signals.js';
import { loadTls, mergeTls, type TlsSetting, tlsHint, tlsSettingFromFlags } from './zk-tls.js';

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
  'queues',
  'queueOrder',
  'allowShell',
  'taskDirs',
  'sessionTimeout',
  'namePrefix',
  'auth',
] as const satisfies ReadonlyArray<keyof CliFlags & RuntimeFlag>;

/** Flags whose default commander fills in: those that no config file setting could supply instead. */
const CLI_DEFAULTS: ReadonlySet<RuntimeFlag> = new Set(['logLevel', 'drainTimeout', 'connectTimeout']);

export { STOP_BOUND_MS } from './stop-signals.js';

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
  services?: ServiceSpec[];
}> {
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
  const tls = mergeTls(config?.zkTls, tlsSettingFromFlags(opts));
  checkTls(spec, source, tls);
  return {
    spec,
    source,
    tls,
    ...(config?.httpToken !== undefined ? { httpToken: config.httpToken } : {}),
    ...(config?.services !== undefined ? { services: config.services } : {}),
  };
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

/** What runtime has started, so that a stop, a failure or a second signal can end each part. */
class RunningFarm {
  host: Host | undefined;
  dashboard: Dashboard | undefined;
  embedded: EmbeddedZooKeeper | undefined;
  /** The embedded ZooKeeper's warm-up, under way while the roles start (host/embedded-warm-up.ts). */
  warming: Promise<string | undefined> = Promise.resolve(undefined);
  /** Its bound (ZKFARM_ZK_WARM_UP_MS); the request path is warmed after the roles' start within half of it. */
  warmUpMs = 0;
  /** Tasks the roles rehearse with before they start (host/rehearsal.ts): on the embedded ZooKeeper only. */
  rehearsal = 0;
  /** Until ready, on the embedded ZooKeeper: a user's tasks end the warm-up meant for them. */
  tasksWaiting: TasksWaiting | undefined;
  logger: pino.Logger | undefined;

  /** Watch the embedded farm's /tasks while it warms up (host/tasks-waiting.ts). */
  #watchTasks(spec: FarmSpec): void {
    if (!this.embedded || (this.rehearsal === 0 && this.warmUpMs === 0)) return;
    this.tasksWaiting = new TasksWaiting(spec, this.logger);
  }

  /** The embedded server's per-request path, once the roles have started and the machine is quiet. */
  async warmRequestPath(stopRequested: Promise<unknown>, io: Io): Promise<void> {
    if (!this.embedded) return;
    const stop = new AbortController();
    void stopRequested.then(() => stop.abort());
    const waiting = this.tasksWaiting?.signal;
    if (waiting?.aborted) stop.abort();
    waiting?.addEventListener('abort', () => stop.abort(), { once: true });
    const line = await warmEmbeddedRequests(this.embedded, this.warmUpMs, stop.signal);
    if (line) io.err(line);
    await this.tasksWaiting?.close();
  }

  /** The embedded ZooKeeper, or a first look at the given one (a clear message beats roles retrying). */
  async zooKeeper(
    spec: FarmSpec,
    source: ConnectSource | 'config' | 'embedded',
    tls: TlsSetting | undefined,
    opts: StartOptions,
    io: Io,
  ) {
    if (source === 'embedded') {
      const warmUpMs = warmUpBudget(process.env); // a bad value is refused before anything starts
      this.warmUpMs = warmUpMs;
      this.rehearsal = rehearsalTasks(process.env);
      const embedded = await startEmbeddedZooKeeper({
        workdir: spec.workdir,
        admission: { keptResults: spec.retention?.maxCount },
        tls: tls !== undefined,
      });
      this.embedded = embedded;
      spec.connect = embedded.connect;
      if (embedded.tls) spec.tls = readTlsFiles(embedded.tls);
      // A rehearsal drives the server with the farm's own requests; a warm-up beside it would only
      // compete with it for the cores (benchmarks/README.md, "The rehearsal in place of the warm-up").
      // Either gives way to a user's tasks, watched from now until ready.
      this.#watchTasks(spec);
      if (this.rehearsal === 0) this.warming = warmEmbedded(embedded, warmUpMs, this.tasksWaiting?.signal);
      io.err(
        `runtime: embedded ZooKeeper listening on ${embedded.connect}` +
          (embedded.tls ? `, TLS only with certificates in ${dirname(embedded.tls.ca)}` : '') +
          ` (data kept in ${embedded.dataDir}, heap ${embedded.heap.heapMb} MiB)`,
      );
      const extra = extraJavaOpts(process.env);
      if (extra.length > 0)
        io.err(`runtime: the embedded ZooKeeper runs with ZKFARM_ZK_JAVA_OPTS: ${extra.join(' ')}`);
      if (embedded.heap.capped)
        io.err(
          `runtime: the embedded ZooKeeper's heap holds about ${embedded.heap.tasksThatFit} tasks of 512 KiB ` +
            'besides the kept results: queue fewer large tasks than that at once (Submitter maxQueue), or pass large inputs as files',
        );
      return;
    }
    // The servers only: the chroot may not exist yet, and the roles create it.
    const sup = await openSession(splitConnectString(spec.connect).hosts.join(','), source, {
      ...(spec.auth !== undefined ? { auth: spec.auth } : {}),
      ...(spec.tls !== undefined ? { tls: spec.tls } : {}),
      connectTimeout: opts.connectTimeout,
    });
    await sup.stop();
  }

  async dashboardFor(
    host: Host,
    opts: StartOptions,
    extra: { faults?: RoleFaults; token?: string },
    io: Io,
  ): Promise<void> {
    if (opts.http === undefined) return;
    const controls = opts.httpControls === true;
    this.dashboard = await startDashboard({
      http: opts.http,
      host,
      controls,
      faults: extra.faults,
      ...(extra.token !== undefined ? { token: extra.token } : {}),
      logger: this.logger,
    });
    const mode = controls
      ? ` (controls on${extra.faults ? ', Crash on' : ''})`
      : ' (read-only: --http-controls turns controls on)';
    // The URL with the token lets a browser use the controls (and see results of a farm with ACLs).
    io.err(`runtime: dashboard at ${this.dashboard.loginUrl}${mode}`);
  }

  /** The clean stop: workers drain, masters step down, sessions close, the embedded ZooKeeper stops. */
  async stop(drainTimeout: number, io: Io): Promise<number> {
    await this.tasksWaiting?.close();
    await this.dashboard?.close();
    await this.host?.stop({ drain: true, deadlineMs: drainTimeout });
    await this.embedded?.stop();
    io.err('runtime: stopped');
    return EXIT_OK;
  }

  /** After a failure: stop what was started without draining. */
  async abort(): Promise<void> {
    await this.tasksWaiting?.close().catch(() => {});
    await this.dashboard?.close().catch(() => {});
    await this.host?.stop({ drain: false, deadlineMs: 2000 }).catch(() => {});
    await this.embedded?.stop().catch(() => {});
  }

  /** Exit now: the role threads die with the process; the zk layer's exit hook SIGKILLs the embedded java. */
  exitAtOnce(code: number): void {
    void this.host?.kill();
    void this.embedded?.kill();
    if (this.logger) flushLogger(this.logger);
    process.exit(code);
  }
}

/** The config file's services: created, or changed to match the file (a change rolls out as any update). */
async function applyConfigServices(
  spec: FarmSpec,
  services: ServiceSpec[],
  opts: StartOptions,
  io: Io,
): Promise<void> {
  const sup = await openSession(spec.connect, 'config', {
    ...(spec.auth !== undefined ? { auth: spec.auth } : {}),
    ...(spec.tls !== undefined ? { tls: spec.tls } : {}),
    connectTimeout: opts.connectTimeout,
  });
  try {
    const client = sup.session!.client;
    for (const s of services) {
      const known = (await listServices(client)).includes(s.name);
      const rec = known ? await changeService(client, s.name, () => s) : await createService(client, s);
      io.err(
        `runtime: service ${s.name}: ${known ? 'kept in line with' : 'created from'} the config file (revision ${rec.revision})`,
      );
    }
  } finally {
    await sup.stop();
  }
}

export async function runStart(opts: StartOptions, io: Io): Promise<number> {
  const { spec, source, tls, httpToken, services } = await planFarm(opts);
  const farm = new RunningFarm();
  const signals = new StopSignals(io, opts.drainTimeout, (code) => farm.exitAtOnce(code));
  try {
    farm.logger = createLogger({ level: opts.logLevel });
    await farm.zooKeeper(spec, source, tls, opts, io);
    if (signals.count > 0) return await farm.stop(opts.drainTimeout, io);
    const { roles, ...settings } = spec;
    const threads = await roleThreads(opts);
    const host = Host.create(settings, { logger: farm.logger, restart: opts.restart, spawn: threads.spawn });
    farm.host = host;
    const interrupt = farm.tasksWaiting?.signal;
    // A signal during the start stops the host, whatever its roles are waiting for.
    const started = host.startRoles(roles, {
      rehearsal: { tasks: farm.rehearsal, ...(interrupt ? { interrupt } : {}) },
    });
    started.catch(() => {});
    const first = await Promise.race([started, signals.requested]);
    if (first === 'stop') return await farm.stop(opts.drainTimeout, io);
    if (first) io.err(rehearsalLine(first));
    await farm.dashboardFor(host, opts, { faults: threads.faults, token: httpToken }, io);
    if (services) await applyConfigServices(spec, services, opts, io);
    const zkHint = source === 'embedded' ? '' : ` --zk ${spec.connect}${tlsHint(tls)}`;
    const warmed = await farm.warming;
    if (warmed) io.err(warmed);
    await farm.warmRequestPath(signals.requested, io);
    if (signals.count > 0) return await farm.stop(opts.drainTimeout, io);
    io.err(
      `runtime: ready: ${count(spec, 'master')}, ${count(spec, 'worker')} on ${spec.connect} ` +
        `(workdir ${spec.workdir})`,
    );
    io.err(
      `runtime: from another terminal: npx runtime submit '{"handler":"echo","input":"hello"}' --wait${zkHint}` +
        `   |   npx runtime status${zkHint}   |   Ctrl-C here stops the farm`,
    );
    await signals.requested;
    return await farm.stop(opts.drainTimeout, io);
  } catch (err) {
    await farm.abort();
    throw err;
  } finally {
    signals.close();
    if (farm.logger) flushLogger(farm.logger);
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
