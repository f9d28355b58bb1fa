/**
 * ZooKeeper's four-letter words (`ruok`, `srvr`, `stat`, `mntr`, `conf`, `cons`, ...): one short-lived
 * socket per question, over TLS when asked. The launcher checks readiness with them, the session check
 * names an old server's version with `srvr`, and `runtime` recognises its embedded server with `conf`.
 * The server must allow them (`4lw.commands.whitelist`; the launcher's servers allow all).
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { openSocket, type PreparedTls } from './transport.js';

/**
 * Ask a server a four-letter word (`ruok`, `srvr`, `stat`, `mntr`, `conf`, `cons`, ...), over TLS when
 * `tls` is given (a TLS-only server answers them on its secureClientPort).
 */
export function fourLetterWord(
  host: string,
  port: number,
  cmd: string,
  timeoutMs = 2000,
  tls?: PreparedTls,
): Promise<string> {
  if (!/^[a-z]{4}$/.test(cmd)) {
    return Promise.reject(
      new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `four-letter word must be 4 lowercase letters, got "${cmd}"`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    let refused: Error | undefined;
    const { socket: sock, ready } = openSocket({ host, port }, tls, (p) => {
      if (p.kind === 'tls') refused = p.error;
    });
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(
      () => done(new Error(`'${cmd}' to ${host}:${port}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on(ready, () => sock.write(cmd));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => done());
    sock.on('close', () => done());
    sock.on('error', (e) => done(refused ?? e));
  });
}
