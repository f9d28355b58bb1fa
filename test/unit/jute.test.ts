/**
 * The wire codec (src/zk/jute.ts) and the path check, without a server: values written are read back
 * the same, lengths and nulls are encoded as ZooKeeper expects, short answers are refused.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pathProblem } from '../../src/zk/client.js';
import { DecodeError, encodedAcl, Reader, STAT_BYTES, Writer } from '../../src/zk/jute.js';

test('values round-trip; strings are UTF-8 with a byte length; null is -1', () => {
  const w = new Writer(8); // small on purpose: it must grow
  w.int(-5);
  w.long(-(2n ** 40n) - 3n);
  w.bool(true);
  w.ustring('héllo 🎉');
  w.ustring(null);
  w.buffer(Buffer.from([1, 2, 3]));
  w.buffer(undefined);
  w.stringVector(['a', 'bé']);
  const bytes = w.take();
  assert.equal(w.pos, 0, 'take() empties the writer');
  // The ustring's length is in bytes, not characters.
  assert.equal(bytes.readInt32BE(4 + 8 + 1), Buffer.byteLength('héllo 🎉'));
  const r = new Reader(bytes);
  assert.equal(r.int(), -5);
  assert.equal(r.long(), -(2n ** 40n) - 3n);
  assert.equal(r.bool(), true);
  assert.equal(r.ustring(), 'héllo 🎉');
  assert.equal(r.ustring(), null);
  assert.deepEqual([...r.buffer()!], [1, 2, 3]);
  assert.equal(r.buffer(), null);
  assert.deepEqual(r.stringVector(), ['a', 'bé']);
  assert.equal(r.pos, bytes.length);
});

test('a stat is read field by field in ZooKeeper order', () => {
  const w = new Writer();
  w.long(11n); // czxid
  w.long(12n); // mzxid
  w.long(1_764_662_400_123n); // ctime
  w.long(1_764_662_400_456n); // mtime
  w.int(3); // version
  w.int(4); // cversion
  w.int(5); // aversion
  w.long(0x0123456789abcdefn); // ephemeralOwner
  w.int(6); // dataLength
  w.int(7); // numChildren
  w.long(13n); // pzxid
  const bytes = w.take();
  assert.equal(bytes.length, STAT_BYTES);
  assert.deepEqual(new Reader(bytes).stat(), {
    czxid: 11n,
    mzxid: 12n,
    ctime: 1_764_662_400_123,
    mtime: 1_764_662_400_456,
    version: 3,
    cversion: 4,
    aversion: 5,
    ephemeralOwner: '0123456789abcdef',
    dataLength: 6,
    numChildren: 7,
    pzxid: 13n,
  });
});

test('an answer shorter than its fields is refused, not read past', () => {
  const w = new Writer();
  w.int(10); // says 10 bytes follow
  w.raw(Buffer.from('abc'));
  const r = new Reader(w.take());
  assert.throws(() => r.ustring(), DecodeError);
  assert.throws(() => new Reader(Buffer.alloc(10)).stat(), DecodeError);
  // A reader bounded to one frame does not read into the next.
  assert.throws(() => new Reader(Buffer.alloc(16), 0, 3).int(), DecodeError);
});

test('an ACL list is encoded once and reused', () => {
  const acl = [{ perms: 31, id: { scheme: 'world', id: 'anyone' } }];
  const a = encodedAcl(acl);
  assert.equal(encodedAcl(acl), a);
  const r = new Reader(a);
  assert.deepEqual(r.acls(), acl);
});

test('paths: absolute, no empty, relative or trailing segments, none of the characters ZooKeeper refuses', () => {
  for (const ok of ['/', '/a', '/a/b', '/a.b/..c', '/日本']) assert.equal(pathProblem(ok), undefined, ok);
  for (const bad of ['', 'a', '/a/', '//', '/a//b', '/.', '/a/..', '/a/./b', '/a\u0000', '/\u001f', '/🎉']) {
    assert.ok(pathProblem(bad), JSON.stringify(bad));
  }
  assert.equal(pathProblem(42), 'a path must be a non-empty string');
  // Sequential creates may end with a slash (the server appends the number).
  assert.equal(pathProblem('/tasks/', true), undefined);
  assert.ok(pathProblem('/tasks/'));
});
