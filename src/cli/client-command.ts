/**
 * What a short-lived client command (`queue`, `schedule`, `service`, ...) needs to reach a farm: its
 * flags (--zk, --auth, --connect-timeout, TLS) and a session opened from them, closed quickly after.
 */
import type { Command } from 'commander';
import { ErrorCodes, hasCode } from '../errors.js';
import { Submitter } from '../farm/submitter.js';
import { discoverConnect } from '../host/discovery.js';
import type { ZkClient } from '../zk/client.js';
import type { Supervisor } from '../zk/supervisor.js';
import { clientFlags, closeQuickly, EXIT_OK, flagOption, openSession, unreachable } from './common.js';
import { addTlsOptions, loadTls, type TlsFlags, tlsSettingFromFlags } from './zk-tls.js';

export interface ClientCommandFlags extends TlsFlags {
  zk?: string;
  auth?: string;
  connectTimeout: number;
}

/** Add --zk, --auth, --connect-timeout and the TLS flags to a command. */
export function withClientFlags(cmd: Command): Command {
  cmd
    .addOption(flagOption(clientFlags.zk))
    .addOption(flagOption(clientFlags.auth))
    .addOption(flagOption(clientFlags.connectTimeout, { applyDefault: true }));
  return addTlsOptions(cmd);
}

/**
 * Run `fn` on a session opened from the flags (the connect string found as `discoverConnect` finds it:
 * --zk, ZKFARM_ZK, or the embedded server of a `runtime` on this machine). Errors go to the caller
 * (main.ts turns them into one line and an exit code).
 */
export async function withClient(
  flags: ClientCommandFlags,
  fn: (client: ZkClient) => Promise<void>,
): Promise<number> {
  const { connect, source, tls } = discoverConnect(flags.zk);
  const sup: Supervisor = await openSession(connect, source, {
    auth: flags.auth,
    tls: loadTls(tlsSettingFromFlags(flags), tls, connect),
    connectTimeout: flags.connectTimeout,
  });
  try {
    await fn(sup.session!.client);
    return EXIT_OK;
  } finally {
    await closeQuickly(() => sup.stop());
  }
}

/** Run `fn` with a Submitter opened from the flags (closed quickly afterwards); returns what `fn` returns. */
export async function withSubmitter(
  flags: ClientCommandFlags,
  fn: (submitter: Submitter) => Promise<number>,
): Promise<number> {
  const { connect, source, tls } = discoverConnect(flags.zk);
  const submitter = await Submitter.open({
    connect,
    auth: flags.auth,
    tls: loadTls(tlsSettingFromFlags(flags), tls, connect),
    connectTimeout: flags.connectTimeout,
  }).catch((err: unknown) => {
    // Say where the connect string came from and what to do.
    throw hasCode(err, ErrorCodes.ZK_UNREACHABLE) ? unreachable(connect, source, flags.connectTimeout) : err;
  });
  try {
    return await fn(submitter);
  } finally {
    await closeQuickly(() => submitter.close());
  }
}
