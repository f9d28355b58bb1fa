/**
 * A small certificate authority for ZooKeeper TLS, made with the `openssl` command (Debian's Java,
 * which ZooKeeper needs, already depends on it): the embedded ZooKeeper's own CA, and the tests'
 * throwaway ones.
 *
 * Keys are ECDSA P-256 in unencrypted PKCS#8 PEM, which both Node and ZooKeeper's PEM key store read.
 * Work files live in an owner-only temporary directory removed before returning; keys are only ever
 * returned, never left on disk here (callers that keep them write them owner-only).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';

const run = promisify(execFile);

/** A certificate and its private key, both PEM. */
export interface PemPair {
  cert: string;
  key: string;
}

export interface IssueOptions {
  /** The certificate's common name (letters, digits, space, `.`, `_`, `-`). */
  commonName: string;
  /** Host names and IP addresses the certificate is for (its subjectAltName); servers need them. */
  hosts?: string[];
  /**
   * What the certificate may be used for: a server, a client, or both (a ZooKeeper server whose
   * readiness zkfarm checks with its own certificate, when the server requires client certificates).
   */
  usage: 'server' | 'client' | 'both';
  /** @defaultValue 825 */
  days?: number;
}

const NAME = /^[A-Za-z0-9 ._-]{1,64}$/;

function checkName(name: string): void {
  if (!NAME.test(name))
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `certificate name: expected 1-64 letters, digits, spaces, '.', '_' or '-', got ${JSON.stringify(name)}`,
    );
}

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string };
    if (e.code === 'ENOENT')
      throw new ZkfarmError(
        ErrorCodes.ZK_TLS,
        'making TLS certificates needs the openssl command, which was not found: install it ' +
          '(`apt-get install openssl`), or give certificates of your own',
      );
    throw new ZkfarmError(
      ErrorCodes.ZK_TLS,
      `openssl ${args[0]} failed: ${(e.stderr ?? describeError(err)).trim()}`,
      { cause: err },
    );
  }
}

async function inTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  // mkdtemp makes the directory owner-only (0700).
  const dir = mkdtempSync(join(tmpdir(), 'zkfarm-certs-'));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A new self-signed CA that can sign certificates (and nothing else). */
export function createCa(commonName: string, days = 3650): Promise<PemPair> {
  checkName(commonName);
  return inTempDir(async (dir) => {
    await openssl(dir, [
      'req',
      '-x509',
      ...NEW_KEY,
      '-keyout',
      'ca-key.pem',
      '-out',
      'ca.pem',
      '-subj',
      `/CN=${commonName}`,
      '-days',
      String(days),
      '-addext',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return {
      cert: readFileSync(join(dir, 'ca.pem'), 'utf8'),
      key: readFileSync(join(dir, 'ca-key.pem'), 'utf8'),
    };
  });
}

/** A new key and a certificate for it, signed by `ca`. */
export function issueCertificate(ca: PemPair, options: IssueOptions): Promise<PemPair> {
  checkName(options.commonName);
  const hosts = options.hosts ?? [];
  for (const h of hosts) {
    if (!/^[A-Za-z0-9.:*-]+$/.test(h))
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `certificate host: not a host name or IP address: ${h}`,
      );
  }
  const usage = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[options.usage];
  const ext = [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    `extendedKeyUsage=${usage}`,
  ];
  if (hosts.length > 0)
    ext.push(`subjectAltName=${hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',')}`);
  return inTempDir(async (dir) => {
    writeFileSync(join(dir, 'ca.pem'), ca.cert);
    writeFileSync(join(dir, 'ca-key.pem'), ca.key, { mode: 0o600 });
    writeFileSync(join(dir, 'ext.cnf'), `${ext.join('\n')}\n`);
    await openssl(dir, [
      'req',
      '-new',
      ...NEW_KEY,
      '-keyout',
      'key.pem',
      '-out',
      'req.csr',
      '-subj',
      `/CN=${options.commonName}`,
    ]);
    await openssl(dir, [
      'x509',
      '-req',
      '-in',
      'req.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca-key.pem',
      '-set_serial',
      `0x${randomSerial()}`,
      '-days',
      String(options.days ?? 825),
      '-extfile',
      'ext.cnf',
      '-out',
      'cert.pem',
    ]);
    return {
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    };
  });
}

function randomSerial(): string {
  // 16 random bytes, the top bit clear so the serial is positive.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0]! &= 0x7f;
  return Buffer.from(bytes).toString('hex');
}
