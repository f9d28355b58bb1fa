/**
 * The TLS flags every command that talks to ZooKeeper takes, and how they become the client's options.
 *
 *   --zk-tls                  speak TLS (implied by any of the flags below)
 *   --zk-ca <file>            the CA certificate that signed the servers' certificates (PEM)
 *   --zk-cert <file>          this client's certificate (PEM), for servers that require one
 *   --zk-key <file>           its private key (PEM)
 *   --zk-servername <name>    the name the servers' certificates must carry (default: the connect host)
 *
 * A command that finds a TLS-only embedded ZooKeeper of a running `runtime` (discovery file) uses its
 * client files without any flag.
 */
import type { Command } from 'commander';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { tlsFlags } from '../host/options.js';
import { readTlsFiles, type ZkTlsFiles, type ZkTlsOptions } from '../zk/transport.js';
import { flagOption } from './common.js';

export interface TlsFlags {
  zkTls?: boolean;
  zkCa?: string;
  zkCert?: string;
  zkKey?: string;
  zkServername?: string;
}

/** What flags (or a config file) ask for: undefined for plain TCP; `{}` for TLS with no file named. */
export type TlsSetting = Partial<ZkTlsFiles>;

/** Adds the TLS flags (host/options.ts's tlsFlags) to a command. */
export function addTlsOptions(cmd: Command): Command {
  for (const spec of Object.values(tlsFlags)) cmd.addOption(flagOption(spec));
  return cmd;
}

/** The config file's TLS with the flags' over it, field by field; undefined when neither asks for TLS. */
export function mergeTls(
  file: TlsSetting | undefined,
  flags: TlsSetting | undefined,
): TlsSetting | undefined {
  return file === undefined && flags === undefined ? undefined : { ...file, ...flags };
}

/** The flags to give another command for the same TLS (for hints). */
export function tlsHint(setting: TlsSetting | undefined): string {
  if (setting === undefined) return '';
  const parts = [' --zk-tls'];
  if (setting.ca !== undefined) parts.push(` --zk-ca ${setting.ca}`);
  if (setting.cert !== undefined) parts.push(` --zk-cert ${setting.cert}`);
  if (setting.key !== undefined) parts.push(` --zk-key ${setting.key}`);
  if (setting.servername !== undefined) parts.push(` --zk-servername ${setting.servername}`);
  return parts.join('');
}

/** The TLS the flags ask for, or undefined when none was given. */
export function tlsSettingFromFlags(flags: TlsFlags): TlsSetting | undefined {
  const { zkTls, zkCa, zkCert, zkKey, zkServername } = flags;
  if (
    !zkTls &&
    zkCa === undefined &&
    zkCert === undefined &&
    zkKey === undefined &&
    zkServername === undefined
  )
    return undefined;
  const out: TlsSetting = {};
  if (zkCa !== undefined) out.ca = zkCa;
  if (zkCert !== undefined) out.cert = zkCert;
  if (zkKey !== undefined) out.key = zkKey;
  if (zkServername !== undefined) out.servername = zkServername;
  return out;
}

/**
 * The client's TLS options: from `setting` (files read now), or the files of a TLS-only embedded
 * ZooKeeper that discovery `found`; undefined for plain TCP. Throws ZKFARM_ZK_TLS when TLS is asked
 * for without a CA, or a file cannot be read.
 */
export function loadTls(
  setting: TlsSetting | undefined,
  found: ZkTlsFiles | undefined,
  connect: string,
): ZkTlsOptions | undefined {
  if (setting === undefined) return found ? readTlsFiles(found) : undefined;
  if (setting.ca === undefined) {
    // A TLS-only embedded ZooKeeper comes with its own files; only a name override may be added.
    if (found) return readTlsFiles({ ...found, ...setting });
    throw new ZkfarmError(
      ErrorCodes.ZK_TLS,
      `TLS to ZooKeeper at ${connect} needs the CA certificate that signed its certificate: give --zk-ca <file> ` +
        '(zk.tls.ca in a config file), and --zk-cert/--zk-key if the server requires client certificates',
    );
  }
  return readTlsFiles(setting as ZkTlsFiles);
}
