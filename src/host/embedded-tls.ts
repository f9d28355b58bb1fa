/**
 * The embedded ZooKeeper's own certificates, for `runtime --zk-tls` without `--zk`.
 *
 * - Made at the first TLS start into `<workdir>/tls/` (owner-only directory and files): a CA, the
 *   server's certificate for 127.0.0.1 and localhost, and one client certificate every role thread,
 *   `runtime submit` and `runtime status` on this machine use (found through the discovery file).
 * - Reused on later starts while they hold together (each signed by the CA, keys matching, more than
 *   30 days left); otherwise all are made again, which retires copies of the old client certificate.
 * - The CA's key is never written: nothing else can be signed by it. To let a client elsewhere in, copy
 *   `ca.pem`, `client.pem` and `client-key.pem` to it (the server is on loopback only anyway).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { createCa, issueCertificate } from '../zk/certificates.js';
import type { ZkServerTlsOptions } from '../zk/server.js';
import type { ZkTlsFiles } from '../zk/transport.js';

/** Where the embedded ZooKeeper's certificates are, and what its server is started with. */
export interface EmbeddedCertificates {
  /** The files a client on this machine connects with (paths). */
  client: ZkTlsFiles;
  /** The server's TLS options (PEM contents). */
  server: ZkServerTlsOptions;
  /** True when they were made by this call (not reused). */
  made: boolean;
}

const FILES = {
  ca: 'ca.pem',
  serverCert: 'server.pem',
  serverKey: 'server-key.pem',
  clientCert: 'client.pem',
  clientKey: 'client-key.pem',
} as const;
type Name = keyof typeof FILES;

/** Renew certificates with less than this left. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

function tlsDir(workdir: string): string {
  const dir = join(workdir, 'tls');
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!lstatSync(dir).isDirectory()) throw new Error('it is not a directory (a symbolic link?)');
    chmodSync(dir, 0o700);
  } catch (err) {
    throw new ZkfarmError(
      ErrorCodes.WORKDIR_UNWRITABLE,
      `cannot use ${dir} for the embedded ZooKeeper's certificates: ${describeError(err)}; pass --workdir DIR`,
    );
  }
  return dir;
}

function readAll(dir: string): Record<Name, string> | undefined {
  try {
    const out = {} as Record<Name, string>;
    for (const name of Object.keys(FILES) as Name[]) out[name] = readFileSync(join(dir, FILES[name]), 'utf8');
    return out;
  } catch {
    return undefined;
  }
}

/** True when the stored set holds together and has more than 30 days left. */
function usable(pem: Record<Name, string>): boolean {
  try {
    const ca = new X509Certificate(pem.ca);
    const until = Date.now() + RENEW_BEFORE_MS;
    for (const [cert, key] of [
      [pem.serverCert, pem.serverKey],
      [pem.clientCert, pem.clientKey],
    ] as const) {
      const c = new X509Certificate(cert);
      if (!c.verify(ca.publicKey) || !c.checkPrivateKey(createPrivateKey(key))) return false;
      if (Date.parse(c.validTo) < until) return false;
    }
    return (
      Date.parse(ca.validTo) >= until &&
      new X509Certificate(pem.serverCert).checkIP('127.0.0.1') !== undefined
    );
  } catch {
    return false;
  }
}

async function makeAll(): Promise<Record<Name, string>> {
  const ca = await createCa('zkfarm embedded ZooKeeper CA');
  const [server, client] = await Promise.all([
    // The launcher checks the server's readiness with its own certificate: server and client use.
    issueCertificate(ca, {
      commonName: 'zkfarm embedded ZooKeeper',
      hosts: ['127.0.0.1', 'localhost'],
      usage: 'both',
    }),
    issueCertificate(ca, { commonName: 'zkfarm client', usage: 'client' }),
  ]);
  return {
    ca: ca.cert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
  };
}

function writeAll(dir: string, pem: Record<Name, string>): void {
  for (const name of Object.keys(FILES) as Name[]) {
    const path = join(dir, FILES[name]);
    const tmp = `${path}.${process.pid}.tmp`;
    rmSync(tmp, { force: true });
    writeFileSync(tmp, pem[name], { mode: 0o600, flag: 'wx' });
    renameSync(tmp, path);
  }
}

/** The workdir's certificates, made when missing or no longer usable. */
export async function embeddedCertificates(workdir: string): Promise<EmbeddedCertificates> {
  const dir = tlsDir(workdir);
  let pem = readAll(dir);
  const made = !pem || !usable(pem);
  if (made) {
    pem = await makeAll();
    writeAll(dir, pem);
  }
  for (const name of Object.keys(FILES) as Name[]) chmodSync(join(dir, FILES[name]), 0o600);
  return {
    client: { ca: join(dir, FILES.ca), cert: join(dir, FILES.clientCert), key: join(dir, FILES.clientKey) },
    server: { ca: pem!.ca, cert: pem!.serverCert, key: pem!.serverKey, clientAuth: 'need' },
    made,
  };
}
