/**
 * The session's identity across connections, and the handshake that starts or resumes it: the id and
 * password the server gave (all zeros until then), the timeout it granted, and the credentials that
 * are sent again, before anything else, on every new connection (as ZooKeeper's own client does).
 */
import { connectRequest, type Reader, readConnectResponse, Writer, writeAuth } from './jute.js';

export class SessionHandshake {
  #sessionId = Buffer.alloc(8);
  #password: Buffer = Buffer.alloc(16);
  #timeout = 0;
  readonly #credentials: Array<{ scheme: string; auth: Buffer }> = [];

  /** Resume `session` (its id as hex digits and its password) instead of starting a new one. */
  constructor(session?: { id: string; password: Buffer }) {
    if (session) {
      this.#sessionId = Buffer.from(session.id.padStart(16, '0'), 'hex');
      this.#password = Buffer.from(session.password);
    }
  }

  /** The session timeout the server granted (0 before the first handshake). */
  get timeout(): number {
    return this.#timeout;
  }

  /** The session id as 16 hex digits. */
  get sessionId(): string {
    return this.#sessionId.toString('hex');
  }

  /** A copy of the session's password. */
  get password(): Buffer {
    return Buffer.from(this.#password);
  }

  /** The connect request: resume the session we have (or start one), asking for `timeout` ms. */
  request(lastZxid: Buffer, timeout: number): Buffer {
    return connectRequest(lastZxid, timeout, this.#sessionId, this.#password);
  }

  /**
   * Read the server's answer: the timeout it granted, or 'expired' when it refused to resume the
   * session (a timeout of 0).
   */
  accept(r: Reader): number | 'expired' {
    const { timeout, sessionId, password } = readConnectResponse(r);
    if (timeout <= 0) return 'expired';
    sessionId.copy(this.#sessionId);
    if (password) this.#password = password;
    this.#timeout = timeout;
    return timeout;
  }

  /** Remember an identity; returns its auth packet, to send now when connected. */
  addAuth(scheme: string, auth: Buffer): Buffer {
    this.#credentials.push({ scheme, auth });
    const w = new Writer(64);
    writeAuth(w, scheme, auth);
    return w.take();
  }

  /** Every identity's auth packet, appended to `w` (first thing on a new connection). */
  writeAuths(w: Writer): void {
    for (const c of this.#credentials) writeAuth(w, c.scheme, c.auth);
  }
}
