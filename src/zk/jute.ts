/**
 * ZooKeeper's wire format (jute), for zkfarm's own client (connection.ts).
 *
 * Every value is big-endian: int (4 bytes), long (8), boolean (1), buffer and ustring (an int length,
 * -1 for null, then the bytes; a ustring is UTF-8), vector (an int count, -1 for null, then the
 * elements). A record is its fields in order, nothing else. Frames on the socket are an int length and
 * that many bytes.
 *
 * The writer encodes straight into one growing buffer (a tick's requests share it, and go out in one
 * socket write); the reader decodes straight from the received bytes. Nothing builds intermediate record
 * objects: a request or an answer costs its bytes and the values the caller asked for.
 */

/** Operation codes (ZooDefs.OpCode). */
export const OP = {
  notification: 0,
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getACL: 6,
  setACL: 7,
  getChildren: 8,
  sync: 9,
  ping: 11,
  getChildren2: 12,
  check: 13,
  multi: 14,
  create2: 15,
  removeWatches: 18,
  multiRead: 22,
  auth: 100,
  setWatches: 101,
  setWatches2: 105,
  addWatch: 106,
  error: -1,
  closeSession: -11,
} as const;

/** Special xids of requests that are not answered in order (ClientCnxn); never used for requests. */
export const XID = {
  notification: -1,
  ping: -2,
  auth: -4,
  setWatches: -8,
} as const;

/**
 * The xid after `xid`: 1, 2, ... up to 2^31 - 2, then 1 again, as the Java client does. Request xids stay
 * positive, so they never meet the special xids above (all negative) nor overflow the int on the wire.
 */
export function nextXid(xid: number): number {
  return xid >= 0x7fffffff - 1 ? 1 : xid + 1;
}

/** Permission bits of an ACL entry (ZooDefs.Perms). */
export const PERMS = { read: 1, write: 2, create: 4, delete: 8, admin: 16, all: 31 } as const;

/** One ACL entry: who (`scheme:id`) may do what (`perms`, a sum of PERMS). */
export interface Acl {
  perms: number;
  id: { scheme: string; id: string };
}

/** A znode's metadata, as ZooKeeper returns it with most answers. */
export interface Stat {
  /** Transaction id of the create, of the last data change, of the last child change. */
  czxid: bigint;
  mzxid: bigint;
  pzxid: bigint;
  /** ms since the epoch. */
  ctime: number;
  mtime: number;
  /** Data version, children version (count of child creates and deletes), ACL version. */
  version: number;
  cversion: number;
  aversion: number;
  /** The session that owns an ephemeral node (16 hex digits), or `'0000000000000000'`. */
  ephemeralOwner: string;
  dataLength: number;
  numChildren: number;
}

export const STAT_BYTES = 68;

export class Writer {
  buf: Buffer;
  pos = 0;

  constructor(size = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  int(v: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
  }

  /** A long from a bigint. */
  long(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
  }

  bool(v: boolean): void {
    this.ensure(1);
    this.buf[this.pos++] = v ? 1 : 0;
  }

  ustring(s: string | null | undefined): void {
    if (s === null || s === undefined) {
      this.int(-1);
      return;
    }
    // At most 3 bytes of UTF-8 per UTF-16 unit.
    this.ensure(4 + s.length * 3);
    const n = this.buf.write(s, this.pos + 4, 'utf8');
    this.buf.writeInt32BE(n, this.pos);
    this.pos += 4 + n;
  }

  buffer(b: Uint8Array | null | undefined): void {
    if (b === null || b === undefined) {
      this.int(-1);
      return;
    }
    this.ensure(4 + b.length);
    this.buf.writeInt32BE(b.length, this.pos);
    this.buf.set(b, this.pos + 4);
    this.pos += 4 + b.length;
  }

  /** Bytes as they are (an already encoded record). */
  raw(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  stringVector(list: readonly string[]): void {
    this.int(list.length);
    for (const s of list) this.ustring(s);
  }

  /** The bytes written so far, copied out (the writer's buffer is reused). */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.pos = 0;
    return out;
  }
}

/** Thrown when an answer is shorter than its fields say: the connection is then out of step. */
export class DecodeError extends Error {
  override name = 'DecodeError';
}

export class Reader {
  buf: Buffer;
  pos: number;
  end: number;

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  #need(n: number): void {
    if (this.pos + n > this.end) throw new DecodeError(`answer too short: ${n} more bytes expected`);
  }

  int(): number {
    this.#need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  long(): bigint {
    this.#need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A long known to fit in a double (times in ms). */
  longNumber(): number {
    this.#need(8);
    const v = this.buf.readInt32BE(this.pos) * 4294967296 + this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return v;
  }

  bool(): boolean {
    this.#need(1);
    return this.buf[this.pos++] !== 0;
  }

  ustring(): string | null {
    const n = this.int();
    if (n < 0) return null;
    this.#need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** A buffer, copied out of the received bytes (so it does not keep the whole chunk alive). */
  buffer(): Buffer | null {
    const n = this.int();
    if (n < 0) return null;
    this.#need(n);
    const out = Buffer.allocUnsafe(n);
    this.buf.copy(out, 0, this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  skip(n: number): void {
    this.#need(n);
    this.pos += n;
  }

  stringVector(): string[] {
    const n = this.int();
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.ustring() ?? '');
    return out;
  }

  stat(): Stat {
    this.#need(STAT_BYTES);
    const b = this.buf;
    const p = this.pos;
    this.pos += STAT_BYTES;
    return {
      czxid: b.readBigInt64BE(p),
      mzxid: b.readBigInt64BE(p + 8),
      ctime: b.readInt32BE(p + 16) * 4294967296 + b.readUInt32BE(p + 20),
      mtime: b.readInt32BE(p + 24) * 4294967296 + b.readUInt32BE(p + 28),
      version: b.readInt32BE(p + 32),
      cversion: b.readInt32BE(p + 36),
      aversion: b.readInt32BE(p + 40),
      ephemeralOwner: b.toString('hex', p + 44, p + 52),
      dataLength: b.readInt32BE(p + 52),
      numChildren: b.readInt32BE(p + 56),
      pzxid: b.readBigInt64BE(p + 60),
    };
  }

  acls(): Acl[] {
    const n = this.int();
    const out: Acl[] = [];
    for (let i = 0; i < n; i++) {
      const perms = this.int();
      const scheme = this.ustring() ?? '';
      const id = this.ustring() ?? '';
      out.push({ perms, id: { scheme, id } });
    }
    return out;
  }
}

const aclBytes = new WeakMap<readonly Acl[], Buffer>();

/** An ACL list encoded once (it goes with every create). The array must not change afterwards. */
export function encodedAcl(acl: readonly Acl[]): Buffer {
  let b = aclBytes.get(acl);
  if (!b) {
    const w = new Writer(256);
    w.int(acl.length);
    for (const a of acl) {
      w.int(a.perms);
      w.ustring(a.id.scheme);
      w.ustring(a.id.id);
    }
    b = w.take();
    aclBytes.set(acl, b);
  }
  return b;
}

/** The connect request that opens (or resumes, with its id and password) a session. */
export function connectRequest(
  lastZxid: Buffer,
  timeout: number,
  sessionId: Buffer,
  password: Buffer,
): Buffer {
  const w = new Writer(64);
  w.int(0); // frame length, filled in below
  w.int(0); // protocol version
  w.raw(lastZxid);
  w.int(timeout);
  w.raw(sessionId);
  w.buffer(password);
  w.bool(false); // not read-only
  w.buf.writeInt32BE(w.pos - 4, 0);
  return w.take();
}

/** The connect answer: the timeout granted (0 or less: the session expired), id and password. */
export function readConnectResponse(r: Reader): {
  timeout: number;
  sessionId: Buffer;
  password: Buffer | null;
} {
  r.int(); // protocol version
  const timeout = r.int();
  const sessionId = Buffer.from(r.buf.subarray(r.pos, r.pos + 8));
  r.skip(8);
  return { timeout, sessionId, password: r.buffer() };
}

/** An authentication packet (xid -4), appended to `w`. */
export function writeAuth(w: Writer, scheme: string, auth: Buffer): void {
  const start = w.pos;
  w.int(0);
  w.int(XID.auth);
  w.int(OP.auth);
  w.int(0);
  w.ustring(scheme);
  w.buffer(auth);
  w.buf.writeInt32BE(w.pos - start - 4, start);
}

/** A ping (xid -2). */
export function pingRequest(): Buffer {
  const b = Buffer.alloc(12);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(XID.ping, 4);
  b.writeInt32BE(OP.ping, 8);
  return b;
}
