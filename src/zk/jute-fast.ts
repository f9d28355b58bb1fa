/**
 * A faster serializer for node-zookeeper-client's records (guard 6 of patches.ts).
 *
 * Every request and response goes through the library's generic `Record` code, which walks a record's
 * field list with closures, matches each vector or nested type against a regular expression on every
 * call, allocates a zero-filled Buffer for every 64-bit field, copies each string through a temporary
 * Buffer, and computes a record's size two or three times per request. Under load that was a fifth of
 * a role thread's time. Here each field list is compiled once into a plain array of field kinds, and
 * `byteLength`, `serialize` and `deserialize` walk that. The wire format is the library's exactly (the
 * test compares the two byte for byte): the same nullable encodings (-1 for a missing string, buffer or
 * vector), the same chroot handling (prefixed to `path` and to watch lists on the way out, removed from
 * `path` on the way in).
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface FieldSpec {
  name: string;
  type: string;
}

/** A record as the library builds it: its fields are own properties named by its specification. */
export interface JuteRecord {
  specification: FieldSpec[];
  chrootPath?: string;
  byteLength(): number;
  serialize(buffer: Buffer, offset: number): number;
  deserialize(buffer: Buffer, offset: number): number;
  [field: string]: unknown;
}

type RecordClass = new () => JuteRecord;

enum Kind {
  Int,
  Long,
  Buffer,
  UString,
  Boolean,
  Data,
}

interface Field {
  name: string;
  kind: Kind;
  /** For vectors: the element kind (UString or Data); undefined for scalars. */
  element?: Kind;
  /** For Data (or a vector of Data): the class name in `jute.data`. */
  dataClass?: string;
  /** `path`: the chroot is prefixed on the way out and removed on the way in. */
  isPath: boolean;
  /** dataWatches, existWatches, childWatches: each path is prefixed with the chroot. */
  isWatchList: boolean;
}

const jute = require('node-zookeeper-client/lib/jute/index.js') as {
  data: Record<string, RecordClass>;
  protocol: Record<string, RecordClass>;
};

const WATCH_LISTS = new Set(['dataWatches', 'existWatches', 'childWatches']);
const plans = new WeakMap<FieldSpec[], Field[]>();

function kindOf(type: string): { kind: Kind; dataClass?: string } {
  switch (type) {
    case 'int':
      return { kind: Kind.Int };
    case 'long':
      return { kind: Kind.Long };
    case 'buffer':
      return { kind: Kind.Buffer };
    case 'ustring':
      return { kind: Kind.UString };
    case 'boolean':
      return { kind: Kind.Boolean };
    default: {
      const data = /^data\.(\w+)$/.exec(type);
      if (data) return { kind: Kind.Data, dataClass: data[1]! };
      throw new Error(`Unknown type: ${type}`);
    }
  }
}

function plan(spec: FieldSpec[]): Field[] {
  let fields = plans.get(spec);
  if (fields) return fields;
  fields = spec.map(({ name, type }) => {
    const vector = /^vector<([\w.]+)>$/.exec(type);
    const isPath = name === 'path';
    const isWatchList = WATCH_LISTS.has(name);
    if (vector) {
      const el = kindOf(vector[1]!);
      return { name, kind: Kind.Data, element: el.kind, dataClass: el.dataClass, isPath, isWatchList };
    }
    return { name, ...kindOf(type), isPath, isWatchList };
  });
  plans.set(spec, fields);
  return fields;
}

function withChroot(rec: JuteRecord, path: unknown): unknown {
  const chroot = rec.chrootPath;
  if (!chroot || typeof path !== 'string') return path;
  return path === '/' ? chroot : chroot + path;
}

function scalarLength(kind: Kind, value: unknown): number {
  switch (kind) {
    case Kind.Int:
      return 4;
    case Kind.Long:
      return 8;
    case Kind.Buffer:
      return Buffer.isBuffer(value) ? 4 + value.length : 4;
    case Kind.UString:
      return typeof value === 'string' ? 4 + Buffer.byteLength(value) : 4;
    case Kind.Boolean:
      return 1;
    default:
      return (value as JuteRecord).byteLength();
  }
}

function byteLength(this: JuteRecord): number {
  let size = 0;
  for (const f of plan(this.specification)) {
    let value = this[f.name];
    if (f.isPath) value = withChroot(this, value);
    if (f.element !== undefined) {
      size += 4;
      if (!Array.isArray(value)) continue;
      for (const item of value) {
        size += scalarLength(f.element, f.isWatchList ? withChroot(this, item) : item);
      }
    } else {
      size += scalarLength(f.kind, value);
    }
  }
  return size;
}

function writeScalar(kind: Kind, value: unknown, buffer: Buffer, offset: number): number {
  switch (kind) {
    case Kind.Int:
      buffer.writeInt32BE(value as number, offset);
      return 4;
    case Kind.Long:
      (value as Buffer).copy(buffer, offset);
      return 8;
    case Kind.Buffer:
      if (!Buffer.isBuffer(value)) {
        buffer.writeInt32BE(-1, offset);
        return 4;
      }
      buffer.writeInt32BE(value.length, offset);
      value.copy(buffer, offset + 4);
      return 4 + value.length;
    case Kind.UString: {
      if (typeof value !== 'string') {
        buffer.writeInt32BE(-1, offset);
        return 4;
      }
      const written = buffer.write(value, offset + 4, 'utf8');
      buffer.writeInt32BE(written, offset);
      return 4 + written;
    }
    case Kind.Boolean:
      buffer.writeUInt8(value ? 1 : 0, offset);
      return 1;
    default:
      return (value as JuteRecord).serialize(buffer, offset);
  }
}

function serialize(this: JuteRecord, buffer: Buffer, offset: number): number {
  if (!Buffer.isBuffer(buffer)) throw new Error('buffer must an instance of Node.js Buffer class.');
  const size = byteLength.call(this);
  if (offset < 0 || offset + size > buffer.length) throw new Error('buffer does not have enough space.');
  let at = offset;
  for (const f of plan(this.specification)) {
    let value = this[f.name];
    if (f.isPath) value = withChroot(this, value);
    if (f.element !== undefined) {
      if (!Array.isArray(value)) {
        buffer.writeInt32BE(-1, at);
        at += 4;
        continue;
      }
      buffer.writeInt32BE(value.length, at);
      at += 4;
      for (const item of value) {
        at += writeScalar(f.element, f.isWatchList ? withChroot(this, item) : item, buffer, at);
      }
    } else {
      at += writeScalar(f.kind, value, buffer, at);
    }
  }
  return size;
}

/** Reads one value; returns it and the bytes read through `out`. */
function readScalar(f: Field, kind: Kind, buffer: Buffer, offset: number, out: { n: number }): unknown {
  switch (kind) {
    case Kind.Int:
      out.n = 4;
      return buffer.readInt32BE(offset);
    case Kind.Long: {
      const value = Buffer.allocUnsafe(8);
      buffer.copy(value, 0, offset, offset + 8);
      out.n = 8;
      return value;
    }
    case Kind.Buffer: {
      const length = buffer.readInt32BE(offset);
      if (length === -1) {
        out.n = 4;
        return undefined;
      }
      const value = Buffer.allocUnsafe(length);
      buffer.copy(value, 0, offset + 4, offset + 4 + length);
      out.n = 4 + length;
      return value;
    }
    case Kind.UString: {
      const length = buffer.readInt32BE(offset);
      if (length === -1) {
        out.n = 4;
        return undefined;
      }
      out.n = 4 + length;
      return buffer.toString('utf8', offset + 4, offset + 4 + length);
    }
    case Kind.Boolean:
      out.n = 1;
      return buffer.readUInt8(offset) === 1;
    default: {
      const value = new jute.data[f.dataClass!]!();
      out.n = value.deserialize(buffer, offset);
      return value;
    }
  }
}

function deserialize(this: JuteRecord, buffer: Buffer, offset: number): number {
  if (!Buffer.isBuffer(buffer)) throw new Error('buffer must an instance of Node.js Buffer class.');
  if (offset < 0 || offset >= buffer.length) throw new Error(`offset: ${offset} is out of buffer range.`);
  const out = { n: 0 };
  let at = offset;
  for (const f of plan(this.specification)) {
    if (f.element !== undefined) {
      let length = buffer.readInt32BE(at);
      at += 4;
      if (length === -1) {
        this[f.name] = undefined;
        continue;
      }
      const items: unknown[] = [];
      while (length-- > 0) {
        items.push(readScalar(f, f.element, buffer, at, out));
        at += out.n;
      }
      this[f.name] = items;
      continue;
    }
    this[f.name] = readScalar(f, f.kind, buffer, at, out);
    at += out.n;
    if (f.isPath && this.chrootPath && typeof this[f.name] === 'string') {
      const path = this[f.name] as string;
      this[f.name] = path === this.chrootPath ? '/' : path.substring(this.chrootPath.length);
    }
  }
  return at - offset;
}

interface RecordProto {
  byteLength: typeof byteLength;
  serialize: typeof serialize;
  deserialize: typeof deserialize;
  __zkfarmFast?: {
    byteLength: typeof byteLength;
    serialize: typeof serialize;
    deserialize: typeof deserialize;
  };
}

/** The library's own methods, kept for the equivalence test. */
export function originalRecordMethods(): RecordProto['__zkfarmFast'] {
  return recordProto().__zkfarmFast;
}

function recordProto(): RecordProto {
  return Object.getPrototypeOf(jute.protocol['RequestHeader']!.prototype) as RecordProto;
}

/** Put the compiled methods on the library's Record prototype (once). */
export function installFastRecords(): void {
  const proto = recordProto();
  if (proto.__zkfarmFast) return;
  proto.__zkfarmFast = {
    byteLength: proto.byteLength,
    serialize: proto.serialize,
    deserialize: proto.deserialize,
  };
  proto.byteLength = byteLength;
  proto.serialize = serialize;
  proto.deserialize = deserialize;
}
