/**
 * The compiled record serializer (src/zk/jute-fast.ts) against the library's own code: for every record
 * class ZooKeeper's protocol has, with random field values (empty and missing ones, multi-byte strings,
 * nested records, vectors) and with and without a chroot, the sizes, the bytes written and the records
 * read back must be identical.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import '../../src/zk/patches.js';
import { type JuteRecord, originalRecordMethods } from '../../src/zk/jute-fast.js';

const require = createRequire(import.meta.url);
const jute = require('node-zookeeper-client/lib/jute/index.js') as {
  data: Record<string, new () => JuteRecord>;
  protocol: Record<string, new () => JuteRecord>;
};
const original = originalRecordMethods()!;

let seed = 42;
function rand(n: number): number {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
}

const STRINGS = ['', '/', '/tasks/task-0000000042', '/assign/w1', 'ünïcödé/ζ/日本', 'x'.repeat(300)];

function fill(rec: JuteRecord, depth = 0): JuteRecord {
  for (const { name, type } of rec.specification) {
    const vector = /^vector<([\w.]+)>$/.exec(type);
    if (vector) {
      const n = rand(4);
      rec[name] =
        rand(5) === 0
          ? undefined
          : Array.from({ length: n }, () =>
              vector[1] === 'ustring'
                ? pathLike(name)
                : fill(new jute.data[vector[1]!.slice(5)]!(), depth + 1),
            );
      continue;
    }
    const data = /^data\.(\w+)$/.exec(type);
    if (data) {
      rec[name] = fill(new jute.data[data[1]!]!(), depth + 1);
      continue;
    }
    switch (type) {
      case 'int':
        rec[name] = rand(2) ? rand(2 ** 31) : -rand(2 ** 31);
        break;
      case 'long':
        rec[name] = Buffer.from(Array.from({ length: 8 }, () => rand(256)));
        break;
      case 'buffer':
        rec[name] =
          rand(4) === 0 ? undefined : Buffer.from(Array.from({ length: rand(600) }, () => rand(256)));
        break;
      case 'ustring':
        // A record always has its path (with a chroot, the library would write "/chrootundefined").
        rec[name] = rand(6) === 0 && name !== 'path' ? undefined : pathLike(name);
        break;
      case 'boolean':
        rec[name] = rand(2) === 1;
        break;
      default:
        throw new Error(`unexpected type ${type}`);
    }
  }
  return rec;
}

function pathLike(name: string): string {
  const s = STRINGS[rand(STRINGS.length)]!;
  return name === 'path' || name.endsWith('Watches') ? (s.startsWith('/') ? s : `/${s}`) : s;
}

function fields(rec: JuteRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { name } of rec.specification) {
    const v = rec[name];
    out[name] =
      v && typeof v === 'object' && 'specification' in (v as object)
        ? fields(v as JuteRecord)
        : Array.isArray(v)
          ? v.map((x) => (x && typeof x === 'object' && 'specification' in x ? fields(x as JuteRecord) : x))
          : v;
  }
  return out;
}

test('every record class: same size, same bytes, same record read back as the library', () => {
  const classes = [...Object.entries(jute.data), ...Object.entries(jute.protocol)];
  assert.ok(classes.length >= 25, `found ${classes.length} record classes`);
  let checked = 0;
  for (const [className, Cls] of classes) {
    for (let round = 0; round < 40; round++) {
      const chroot = round % 2 === 0 ? undefined : '/farm-a';
      const rec = fill(new Cls());
      rec.chrootPath = chroot;
      const size = rec.byteLength();
      assert.equal(size, original.byteLength.call(rec), `${className}: byteLength`);
      const fast = Buffer.alloc(size + 3, 0xee);
      const slow = Buffer.alloc(size + 3, 0xee);
      assert.equal(rec.serialize(fast, 3), size);
      assert.equal(original.serialize.call(rec, slow, 3), size);
      assert.deepEqual(fast, slow, `${className} (chroot ${chroot}): bytes`);

      const a = new Cls();
      const b = new Cls();
      a.chrootPath = chroot;
      b.chrootPath = chroot;
      assert.equal(a.deserialize(fast, 3), original.deserialize.call(b, fast, 3), `${className}: bytes read`);
      assert.deepEqual(fields(a), fields(b), `${className}: record read back`);
      checked++;
    }
  }
  assert.equal(checked, classes.length * 40);
});

test('a buffer too small is refused, not written past', () => {
  const rec = new jute.protocol['CreateRequest']!();
  rec['path'] = '/tasks/t';
  rec['data'] = Buffer.from('{}');
  rec['acl'] = [];
  rec['flags'] = 0;
  assert.throws(() => rec.serialize(Buffer.alloc(rec.byteLength() - 1), 0), /not have enough space/);
});
