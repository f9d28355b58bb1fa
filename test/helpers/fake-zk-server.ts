/**
 * A scripted fake ZooKeeper server, for the wire-protocol cases a real server cannot be made to produce
 * (an answer with the wrong xid, a bogus frame length, pings left unanswered on purpose, a server that
 * claims to be 3.5). Pure logic on a loopback socket: everything else is tested against a real server.
 *
 *   const fake = await startFakeZkServer({ onRequest(req, conn) { ... return true if answered } });
 *   const conn = await fake.nextConnection();     // a client connection, after its handshake
 *   conn.answer(req.xid, 0, payload);             // answer a request the script kept
 *   conn.notify(EVENT.dataChanged, '/a');         // send a watch notification
 *   conn.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0xfc]));   // a frame length of -4
 *
 * By default it speaks the handshake (granting the timeout asked, resuming a session id it is given),
 * answers pings, auth and SetWatches, and answers every other request with success and a plausible
 * payload (a create's path, an empty stat, an empty listing, a multi's results, a multiRead's data).
 * A four-letter word on a new connection is answered with `fourLetter(cmd)` and the socket closed.
 * Listens on 127.0.0.1 only; `close()` destroys every socket. Each test file closes its servers.
 */
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { OP, Reader, STAT_BYTES, Writer, XID } from '../../src/zk/jute.js';

export interface FakeRequest {
  xid: number;
  type: number;
  /** The first field of the payload, for the requests whose payload starts with a path. */
  path: string | undefined;
  /** The payload after the header. */
  body: Buffer;
}

export interface Handshake {
  timeout: number;
  sessionId: bigint;
  lastZxid: bigint;
}

export interface FakeScript {
  /**
   * How to answer a handshake: the timeout to grant (default: the one asked), `'expired'` (a session the
   * server does not know: timeout 0), or `'ignore'` (take the connection, answer nothing).
   */
  handshake?(h: Handshake, conn: FakeConnection): { timeout?: number } | 'expired' | 'ignore' | undefined;
  /** Called for every request after the handshake; return true when the script answered (or kept) it. */
  onRequest?(req: FakeRequest, conn: FakeConnection): boolean | undefined;
  /** Answer pings (default true). */
  answerPings?: boolean;
  /** The text of a four-letter word's answer (undefined: close without answering). */
  fourLetter?(cmd: string): string | undefined;
}

const PING_OP = OP.ping;
const HANDSHAKE_SESSION_BASE = 0x100000000n;

export class FakeConnection {
  readonly socket: Socket;
  readonly requests: FakeRequest[] = [];
  handshake: Handshake | undefined;
  pings = 0;
  sessionId = 0n;
  #zxid = 1n;
  #buf: Buffer = Buffer.alloc(0);
  readonly #server: FakeZkServer;
  readonly #script: FakeScript;

  constructor(socket: Socket, server: FakeZkServer, script: FakeScript) {
    this.socket = socket;
    this.#server = server;
    this.#script = script;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => {});
  }

  get closed(): boolean {
    return this.socket.destroyed;
  }

  /** Send a frame whose body is `body` (the length is added). */
  sendFrame(body: Buffer): void {
    const head = Buffer.alloc(4);
    head.writeInt32BE(body.length);
    this.sendRaw(Buffer.concat([head, body]));
  }

  /** Send bytes as they are. */
  sendRaw(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Answer `xid` with ZooKeeper error `err` (0: success) and `payload`. */
  answer(xid: number, err = 0, payload: Buffer = Buffer.alloc(0), zxid?: bigint): void {
    const w = new Writer(32 + payload.length);
    w.int(xid);
    w.long(zxid ?? this.#zxid++);
    w.int(err);
    w.raw(payload);
    this.sendFrame(w.take());
  }

  /** Send a watch notification (`type` as EVENT, state 3: connected). */
  notify(type: number, path: string, state = 3): void {
    const w = new Writer(64);
    w.int(type);
    w.int(state);
    w.ustring(path);
    this.answer(XID.notification, 0, w.take(), -1n);
  }

  destroy(): void {
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    if (!this.handshake && this.#buf.length >= 4 && /^[a-z]{4}$/.test(this.#buf.toString('latin1', 0, 4))) {
      const text = this.#script.fourLetter?.(this.#buf.toString('latin1', 0, 4));
      if (text !== undefined) this.socket.end(text);
      else this.socket.destroy();
      return;
    }
    while (this.#buf.length >= 4) {
      const len = this.#buf.readInt32BE(0);
      if (this.#buf.length < 4 + len) return;
      const frame = this.#buf.subarray(4, 4 + len);
      this.#buf = this.#buf.subarray(4 + len);
      if (!this.handshake) this.#onHandshake(new Reader(frame));
      else this.#onRequest(frame);
      if (this.socket.destroyed) return;
    }
  }

  #onHandshake(r: Reader): void {
    r.int(); // protocol version
    const lastZxid = r.long();
    const timeout = r.int();
    const sessionId = r.long();
    const h: Handshake = { timeout, sessionId, lastZxid };
    this.handshake = h;
    const verdict = this.#script.handshake?.(h, this);
    if (verdict === 'ignore') return;
    this.sessionId = sessionId !== 0n ? sessionId : HANDSHAKE_SESSION_BASE + BigInt(++this.#server.sessions);
    const w = new Writer(64);
    w.int(0);
    w.int(verdict === 'expired' ? 0 : (verdict?.timeout ?? timeout));
    w.long(verdict === 'expired' ? 0n : this.sessionId);
    w.buffer(Buffer.alloc(16, 7));
    w.bool(false);
    this.sendFrame(w.take());
    if (verdict !== 'expired') this.#server.connected(this);
  }

  #onRequest(frame: Buffer): void {
    const r = new Reader(frame);
    const xid = r.int();
    const type = r.int();
    const body = frame.subarray(8);
    if (type === PING_OP) {
      this.pings++;
      if (this.#script.answerPings !== false) this.answer(XID.ping, 0, Buffer.alloc(0), 0n);
      return;
    }
    const path = PATH_FIRST.has(type) ? (new Reader(body).ustring() ?? undefined) : undefined;
    const req: FakeRequest = { xid, type, path, body };
    this.requests.push(req);
    this.#server.requests.push(req);
    if (this.#script.onRequest?.(req, this)) return;
    this.answer(xid, 0, defaultPayload(req));
    if (type === OP.closeSession) this.socket.end();
  }
}

/** Requests whose payload starts with a path. */
const PATH_FIRST: ReadonlySet<number> = new Set([
  OP.create,
  OP.delete,
  OP.exists,
  OP.getData,
  OP.setData,
  OP.getACL,
  OP.setACL,
  OP.getChildren,
  OP.sync,
  OP.getChildren2,
  OP.check,
  OP.create2,
  OP.addWatch,
]);

const EMPTY_STAT = Buffer.alloc(STAT_BYTES);

/** A success answer's payload for a request, as a server would send it for an ordinary node. */
export function defaultPayload(req: FakeRequest): Buffer {
  const w = new Writer(128);
  switch (req.type) {
    case OP.create:
      w.ustring(req.path ?? '/');
      break;
    case OP.exists:
    case OP.setData:
      w.raw(EMPTY_STAT);
      break;
    case OP.getData:
      w.buffer(Buffer.alloc(0));
      w.raw(EMPTY_STAT);
      break;
    case OP.getChildren:
      w.stringVector([]);
      break;
    case OP.multiRead:
    case OP.multi:
      writeMultiAnswer(w, req.type, req.body);
      break;
  }
  return w.take();
}

/** Answer each operation of a multi (or multiRead) with success. */
function writeMultiAnswer(w: Writer, multiType: number, body: Buffer): void {
  const r = new Reader(body);
  for (;;) {
    const type = r.int();
    const done = r.bool();
    r.int();
    if (done) break;
    const path = r.ustring() ?? '/';
    w.int(type);
    w.bool(false);
    w.int(0);
    if (type === OP.create) {
      r.buffer();
      const acls = r.int();
      for (let i = 0; i < acls; i++) {
        r.int();
        r.ustring();
        r.ustring();
      }
      r.int();
      w.ustring(path);
    } else if (type === OP.setData) {
      r.buffer();
      r.int();
      w.raw(EMPTY_STAT);
    } else if (type === OP.getData) {
      r.bool();
      w.buffer(Buffer.alloc(0));
      w.raw(EMPTY_STAT);
    } else if (multiType === OP.multi) r.int(); // delete, check: a version
  }
  w.int(-1);
  w.bool(true);
  w.int(-1);
}

export class FakeZkServer {
  readonly connections: FakeConnection[] = [];
  readonly requests: FakeRequest[] = [];
  /** Connections accepted (handshake or not). */
  accepted = 0;
  sessions = 0;
  port = 0;
  readonly #script: FakeScript;
  readonly #server = createServer((socket) => {
    this.accepted++;
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    new FakeConnection(socket, this, this.#script);
  });
  readonly #sockets = new Set<Socket>();
  #waiters: Array<(c: FakeConnection) => void> = [];

  constructor(script: FakeScript) {
    this.#script = script;
  }

  get connectString(): string {
    return `127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.port = (this.#server.address() as AddressInfo).port;
  }

  /** @internal a connection finished its handshake */
  connected(c: FakeConnection): void {
    this.connections.push(c);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w(c);
  }

  /** The next connection to finish its handshake (or the latest one, if `existing` and there is one). */
  nextConnection(timeoutMs = 10_000): Promise<FakeConnection> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`fake server: no connection within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

export async function startFakeZkServer(script: FakeScript = {}): Promise<FakeZkServer> {
  const server = new FakeZkServer(script);
  await server.listen();
  return server;
}
