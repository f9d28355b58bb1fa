/**
 * TLS-only ZooKeeper servers for the launcher (server.ts): the zoo.cfg settings, the key and trust
 * stores, and the client identity the launcher checks readiness with.
 *
 * - TLS only: no plaintext `clientPort`; clients reach `secureClientPort` on loopback, served by
 *   ZooKeeper's Netty connection factory (Debian's ZooKeeper 3.8 ships Netty, but its jar's manifest
 *   leaves out netty-codec, which TLS needs: it is added to the classpath when it is beside the jar).
 * - Key and trust stores are PEM files (ZooKeeper 3.8 reads `ssl.*.type=PEM`): the server's key and
 *   certificate in one file, the CA in another, both owner-only under `<dataDir>/tls/`.
 * - Client authentication (`ssl.clientAuth`): `need` by default, ZooKeeper's own default. A client
 *   must show a certificate signed by the CA, so reaching the port is not enough to use the farm;
 *   `want` asks for one and admits clients without, `none` asks for none. With `need` or `want`, a
 *   client certificate also gives the connection ZooKeeper's `x509` identity (its subject).
 * - Readiness (ruok/srvr/conf) is checked over TLS with the server's own certificate as the client's,
 *   so with `need` that certificate must allow client use too (`usage: 'both'` in certificates.ts),
 *   and it must name 127.0.0.1, where the launcher connects.
 */
import { createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { type PreparedTls, prepareTls } from './transport.js';

export type ClientAuth = 'need' | 'want' | 'none';

/** A TLS-only server: PEM contents. */
export interface ZkServerTlsOptions {
  /** The CA that signed the server's certificate and the clients' (the server's trust store). */
  ca: string | Buffer;
  /** The server's certificate (PEM); it must name 127.0.0.1. */
  cert: string | Buffer;
  /** Its private key (PEM, unencrypted). */
  key: string | Buffer;
  /** Whether clients must show a certificate signed by `ca`. @defaultValue 'need' */
  clientAuth?: ClientAuth;
}

/** The TLS identity the launcher's own probes use (the server's certificate, checked as 127.0.0.1). */
export function probeTls(tls: ZkServerTlsOptions): PreparedTls {
  const clientAuth = tls.clientAuth ?? 'need';
  if (!['need', 'want', 'none'].includes(clientAuth))
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `tls.clientAuth: expected need, want or none, got ${JSON.stringify(clientAuth)}`,
    );
  return prepareTls({ ca: tls.ca, cert: tls.cert, key: tls.key, servername: '127.0.0.1' });
}

/**
 * Turn plaintext settings into TLS-only ones on the same port, writing the PEM stores under
 * `<dataDir>/tls/`. Settings given by the caller later (extraConfig) still override these.
 */
export function tlsSettings(
  settings: Record<string, string>,
  dataDir: string,
  tls: ZkServerTlsOptions,
): Record<string, string> {
  const dir = join(dataDir, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const keyStore = join(dir, 'keystore.pem');
  const trustStore = join(dir, 'truststore.pem');
  // ZooKeeper's PEM reader takes PKCS#8 keys only.
  const key = createPrivateKey(tls.key).export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(keyStore, `${key.trimEnd()}\n${String(tls.cert).trimEnd()}\n`, { mode: 0o600 });
  chmodSync(keyStore, 0o600);
  writeFileSync(trustStore, `${String(tls.ca).trimEnd()}\n`, { mode: 0o600 });
  const { clientPort, clientPortAddress, ...rest } = settings;
  return {
    ...rest,
    secureClientPort: clientPort ?? '',
    secureClientPortAddress: clientPortAddress ?? '127.0.0.1',
    serverCnxnFactory: 'org.apache.zookeeper.server.NettyServerCnxnFactory',
    'ssl.keyStore.location': keyStore,
    'ssl.keyStore.type': 'PEM',
    'ssl.trustStore.location': trustStore,
    'ssl.trustStore.type': 'PEM',
    'ssl.clientAuth': tls.clientAuth ?? 'need',
  };
}

/** The classpath with netty-codec added when it is missing and sits beside the ZooKeeper jar. */
export function tlsClasspath(classpath: string): string {
  const entries = classpath.split(delimiter);
  if (entries.some((e) => /netty-codec(-\d[\w.-]*)?\.jar$|netty-all/.test(e))) return classpath;
  const zkJar = entries.find((e) => /(^|\/)zookeeper(-\d[\w.-]*)?\.jar$/.test(e));
  const codec = zkJar && join(dirname(zkJar), 'netty-codec.jar');
  return codec && existsSync(codec) ? [...entries, codec].join(delimiter) : classpath;
}
