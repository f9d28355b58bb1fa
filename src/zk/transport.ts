/**
 * How zkfarm reaches a ZooKeeper server: one place that opens the socket, plain TCP or TLS.
 *
 * TLS (a server's `secureClientPort`):
 * - The server's certificate is always verified: against the CA given (`tls.ca`, PEM), and for the
 *   server's name, which is the host of the connect string unless `tls.servername` names another.
 *   There is no switch to turn either check off.
 * - A client certificate and key (PEM) are sent when given; servers that require one
 *   (`ssl.clientAuth=need`, ZooKeeper's default) refuse a client without.
 * - PEM is checked when the options are prepared, before anything connects: a file that is not a
 *   certificate, a key that does not match its certificate, is refused then.
 *
 * Failures that retrying cannot mend are reported as `TransportProblem`s: a certificate the CA does not
 * vouch for, a name mismatch, a client certificate the server refuses, a TLS client against a plaintext
 * port. A plaintext client against a TLS port is only suspected (the server closes without a word); the
 * watcher below confirms it by opening a TLS handshake to that server (no data sent) before saying so.
 * `watchTransport` turns these into one fatal error once every server of the connect string refused,
 * before any session was made; after that they are only reported, and losing the session does the rest.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';

/** TLS to ZooKeeper. PEM contents (strings or Buffers); see `readTlsFiles` for paths. */
export interface ZkTlsOptions {
  /** The CA certificate(s) that signed the servers' certificates (PEM). */
  ca: string | Buffer;
  /** This client's certificate (PEM), for servers that require one; needs `key`. */
  cert?: string | Buffer;
  /** The private key of `cert` (PEM, unencrypted). */
  key?: string | Buffer;
  /**
   * The name the servers' certificates must carry. @defaultValue each server's host from the connect
   * string (an IP address is checked against the certificate's IP entries)
   */
  servername?: string;
}

/** Paths to PEM files, as the command line and the config file give them. */
export interface ZkTlsFiles {
  ca: string;
  cert?: string;
  key?: string;
  servername?: string;
}

/** TLS options checked once and ready for every connection. */
export interface PreparedTls {
  readonly context: tls.SecureContext;
  readonly servername: string | undefined;
}

export interface ServerAddress {
  host: string;
  port: number;
}

/** Something about a connection attempt that retrying will not mend (see the module comment). */
export type TransportProblem =
  | { kind: 'tls'; server: ServerAddress; error: ZkfarmError }
  | { kind: 'unanswered'; server: ServerAddress };

function tlsError(message: string, cause?: unknown): ZkfarmError {
  return new ZkfarmError(ErrorCodes.ZK_TLS, message, cause === undefined ? undefined : { cause });
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function certificates(what: string, pem: string | Buffer): X509Certificate[] {
  const blocks = String(pem).match(PEM_CERT) ?? [];
  if (blocks.length === 0)
    throw tlsError(`${what} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`);
  try {
    return blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw tlsError(`${what} holds a certificate that cannot be read: ${describeError(err)}`, err);
  }
}

/** Check TLS options and build the context every connection shares; throws ZKFARM_ZK_TLS. */
export function prepareTls(options: ZkTlsOptions): PreparedTls {
  if (typeof options !== 'object' || options === null)
    throw tlsError('tls: expected { ca, cert?, key?, servername? } with PEM contents');
  const { ca, cert, key, servername } = options;
  if (ca === undefined || String(ca).trim() === '')
    throw tlsError("tls.ca: the CA certificate (PEM) that signed the servers' certificates is required");
  certificates('tls.ca (the CA certificate)', ca);
  if ((cert === undefined) !== (key === undefined))
    throw tlsError(
      'tls.cert and tls.key go together: give both (a client certificate and its key) or neither',
    );
  if (cert !== undefined && key !== undefined) {
    const [leaf] = certificates('tls.cert (the client certificate)', cert);
    let keyObject: ReturnType<typeof createPrivateKey>;
    try {
      keyObject = createPrivateKey(key);
    } catch (err) {
      throw tlsError(`tls.key is not a readable unencrypted PEM private key: ${describeError(err)}`, err);
    }
    if (!leaf!.checkPrivateKey(keyObject))
      throw tlsError(
        'tls.key is not the private key of tls.cert: give the key that belongs to the certificate',
      );
  }
  if (servername !== undefined && (typeof servername !== 'string' || !/^[^\s/]+$/.test(servername)))
    throw tlsError(
      `tls.servername: expected a host name or an IP address, got ${JSON.stringify(servername)}`,
    );
  try {
    return { context: tls.createSecureContext({ ca, cert, key }), servername };
  } catch (err) {
    throw tlsError(`the TLS certificates or key cannot be used: ${describeError(err)}`, err);
  }
}

/** Read PEM files into options; throws ZKFARM_ZK_TLS naming the file that cannot be read. */
export function readTlsFiles(files: ZkTlsFiles): ZkTlsOptions {
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw tlsError(`cannot read ${what} ${path}: ${describeError(err)}`, err);
    }
  };
  if (!files.ca) throw tlsError('TLS needs the CA certificate file (--zk-ca, zk.tls.ca)');
  const out: ZkTlsOptions = { ca: read('the CA certificate file (--zk-ca)', files.ca) };
  if (files.cert) out.cert = read('the client certificate file (--zk-cert)', files.cert);
  if (files.key) out.key = read('the client key file (--zk-key)', files.key);
  if (files.servername) out.servername = files.servername;
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Opening a socket
// ---------------------------------------------------------------------------------------------------

/**
 * Open a socket to `server`. `ready` names the event after which the ZooKeeper handshake may be sent:
 * `connect` for TCP, `secureConnect` once TLS verified the server. Problems go to `report`.
 */
export function openSocket(
  server: ServerAddress,
  prepared: PreparedTls | undefined,
  report: (problem: TransportProblem) => void,
): { socket: net.Socket; ready: 'connect' | 'secureConnect' } {
  if (!prepared) {
    const socket = net.connect({ host: server.host, port: server.port, noDelay: true });
    let connected = false;
    let answered = false;
    socket.once('connect', () => {
      connected = true;
    });
    socket.once('data', () => {
      answered = true;
    });
    // A TLS server closes a plaintext client without a word: suspected here, confirmed by the watcher.
    socket.once('close', () => {
      if (connected && !answered) report({ kind: 'unanswered', server });
    });
    return { socket, ready: 'connect' };
  }
  const name = prepared.servername ?? server.host;
  const socket = tls.connect({
    host: server.host,
    port: server.port,
    secureContext: prepared.context,
    // SNI carries host names only; an IP address is still checked against the certificate below.
    ...(net.isIP(name) ? {} : { servername: name }),
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
  });
  socket.setNoDelay(true);
  let secured = false;
  socket.once('secureConnect', () => {
    secured = true;
  });
  socket.on('error', (err) => {
    const error = tlsRefusal(err, secured, server, name);
    if (error) report({ kind: 'tls', server, error });
  });
  return { socket, ready: 'secureConnect' };
}

/** Certificate checks Node reports when the CA given does not vouch for the server's certificate. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
]);

/** The ZKFARM_ZK_TLS error a TLS socket's error amounts to, or undefined for ordinary network trouble. */
export function tlsRefusal(
  err: Error,
  secured: boolean,
  server: ServerAddress,
  name: string,
): ZkfarmError | undefined {
  const code = String((err as { code?: unknown }).code ?? '');
  const at = `ZooKeeper at ${server.host}:${server.port}`;
  if (UNTRUSTED.has(code))
    return tlsError(
      `${at}: its TLS certificate is not signed by the CA given (${code}): check that --zk-ca ` +
        "(tls.ca) is the CA that signed the server's certificate (its ssl.keyStore)",
      err,
    );
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
    return tlsError(
      `${at}: its TLS certificate is out of its validity period (${code}): renew the server's certificate, or check this machine's clock`,
      err,
    );
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return tlsError(
      `${at}: its TLS certificate is not for "${name}" (${err.message}): connect with the name the ` +
        'certificate carries, or give that name with --zk-servername (tls.servername)',
      err,
    );
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG')
    return tlsError(
      `${at} does not speak TLS (${code}): give its secureClientPort, or connect without --zk-tls`,
      err,
    );
  if (code.startsWith('ERR_SSL_'))
    return tlsError(
      `${at} refused the TLS handshake (${code}): if the server requires client certificates ` +
        '(ssl.clientAuth=need, its default), give --zk-cert and --zk-key (tls.cert, tls.key) signed by a CA in ' +
        "the server's ssl.trustStore",
      err,
    );
  if (!secured && code === 'ECONNRESET')
    return tlsError(
      `${at} closed the connection during the TLS handshake: check that ${server.port} is its ` +
        'secureClientPort (a plaintext clientPort cannot speak TLS), and its log for why it refused',
      err,
    );
  return undefined;
}

/**
 * Does `server` answer a TLS handshake? Verified against Node's own CAs, so nothing is sent: any
 * certificate or TLS alert proves the port speaks TLS; a close or a timeout says it does not.
 */
export function speaksTls(server: ServerAddress, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: server.host, port: server.port });
    const done = (yes: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(yes);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    socket.once('secureConnect', () => done(true));
    socket.once('error', (err) => {
      const code = String((err as { code?: unknown }).code ?? '');
      done(
        UNTRUSTED.has(code) ||
          code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
          (code.startsWith('ERR_SSL_') && code !== 'ERR_SSL_WRONG_VERSION_NUMBER'),
      );
    });
    socket.once('close', () => done(false));
  });
}

// ---------------------------------------------------------------------------------------------------
// From problems to one clear error
// ---------------------------------------------------------------------------------------------------

export interface TransportWatchOptions {
  /** How many servers the connect string names. */
  servers: number;
  /** Every server refused before a session was made: stop trying, with this error. */
  onFatal: (err: ZkfarmError) => void;
  /** Each refusal, for the log. */
  onRefusal?: (err: ZkfarmError) => void;
}

/**
 * Watch a connection's `transport` events (and `connected`) and call `onFatal` once every server of
 * the connect string has refused, none having answered as a ZooKeeper server first. Returns a function
 * that stops watching.
 */
export function watchTransport(connection: EventEmitter, options: TransportWatchOptions): () => void {
  let connected = false;
  let stopped = false;
  const refused = new Set<string>();
  const probed = new Set<string>();
  const refuse = (server: ServerAddress, error: ZkfarmError) => {
    if (stopped) return;
    options.onRefusal?.(error);
    if (connected) return;
    refused.add(`${server.host}:${server.port}`);
    if (refused.size >= options.servers) {
      stopped = true;
      options.onFatal(error);
    }
  };
  const onTransport = (problem: TransportProblem) => {
    if (problem.kind === 'tls') return refuse(problem.server, problem.error);
    const key = `${problem.server.host}:${problem.server.port}`;
    if (connected || probed.has(key)) return;
    probed.add(key);
    void speaksTls(problem.server).then((yes) => {
      if (!yes || connected) return;
      refuse(
        problem.server,
        tlsError(
          `ZooKeeper at ${key} speaks TLS (it is a secureClientPort) and closes plaintext clients: connect ` +
            'with --zk-tls and --zk-ca (tls in the library and config), or give its plaintext clientPort',
        ),
      );
    });
  };
  const onConnected = () => {
    connected = true;
  };
  connection.on('transport', onTransport);
  connection.on('connected', onConnected);
  return () => {
    stopped = true;
    connection.off('transport', onTransport);
    connection.off('connected', onConnected);
  };
}
