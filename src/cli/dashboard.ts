/**
 * `runtime dashboard --zk CONNECT [--http HOST:PORT]`: the dashboard of any farm, from ZooKeeper alone
 * (no roles run here, so it is read-only).
 */
import type { Command } from 'commander';
import { discoverConnect } from '../host/discovery.js';
import { createLogger } from '../host/index.js';
import { startDashboard } from '../web/index.js';
import { clientFlags, EXIT_OK, flagOption, type Io } from './common.js';
import { addTlsOptions, loadTls, type TlsFlags, tlsSettingFromFlags } from './zk-tls.js';

interface DashboardCommandOptions extends TlsFlags {
  zk?: string;
  http: string;
  auth?: string;
  workdir?: string;
  logLevel: string;
  taskEvents: boolean;
}

export function registerDashboard(program: Command, io: Io, setExit: (code: number) => void): void {
  const cmd = program
    .command('dashboard')
    .description('serve the live dashboard, /metrics and /healthz of a farm, from ZooKeeper alone')
    .addOption(flagOption(clientFlags.zk))
    .option('--http <host:port>', 'where to listen (loopback unless you say otherwise)', '127.0.0.1:8080')
    .addOption(flagOption(clientFlags.auth))
    .option(
      '--workdir <dir>',
      "the workers' output root, to show a finished task's files (same machine only)",
    )
    .option(
      '--no-task-events',
      'no task events panel (it reads about three nodes per task: for very busy farms)',
    )
    .option('--log-level <level>', 'log level', 'warn');
  addTlsOptions(cmd).action(async (opts: DashboardCommandOptions) => {
    setExit(await runDashboard(opts, io));
  });
}

export async function runDashboard(opts: DashboardCommandOptions, io: Io): Promise<number> {
  const { connect, tls } = discoverConnect(opts.zk);
  const logger = createLogger({ level: opts.logLevel });
  const dash = await startDashboard({
    http: opts.http,
    connect,
    auth: opts.auth,
    tls: loadTls(tlsSettingFromFlags(opts), tls, connect),
    workdir: opts.workdir,
    taskEvents: opts.taskEvents,
    logger,
  });
  io.err(`runtime: dashboard of ${connect} at ${dash.loginUrl} (read-only); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await dash.close();
  return EXIT_OK;
}
