/**
 * The client's pure parts, without a server: the xid sequence, the frame reader's length checks, the
 * watch tables' dispatch, the server list's rounds and backoff.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameReader } from '../../src/zk/frames.js';
import { DecodeError, nextXid, XID } from '../../src/zk/jute.js';
import { ServerList } from '../../src/zk/servers.js';
import { EVENT, WatchManager } from '../../src/zk/watch-manager.js';

test('xids: 1, 2, ... 2^31 - 2, then 1 again; never a special xid, never past an int', () => {
  assert.equal(nextXid(0), 1);
  assert.equal(nextXid(41), 42);
  assert.equal(nextXid(0x7fffffff - 2), 0x7fffffff - 1);
  assert.equal(nextXid(0x7fffffff - 1), 1);
  const specials = new Set<number>(Object.values(XID));
  for (let x = 0x7fffffff - 10, i = 0; i < 20; i++) {
    x = nextXid(x);
    assert.ok(x > 0 && x < 0x7fffffff && !specials.has(x), `xid ${x}`);
  }
});

function frame(body: number[]): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.writeInt32BE(body.length);
  Buffer.from(body).copy(b, 4);
  return b;
}

test('frames: split anywhere they are read whole; a bad length is refused as soon as its 4 bytes are in', () => {
  const stream = Buffer.concat([frame([1, 2, 3]), frame([]), frame([9])]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = new FrameReader(100);
    const seen: number[][] = [];
    const take = (x: { buf: Buffer; pos: number; end: number }) => {
      seen.push([...x.buf.subarray(x.pos, x.end)]);
      return true;
    };
    r.push(stream.subarray(0, cut), take);
    r.push(stream.subarray(cut), take);
    assert.deepEqual(seen, [[1, 2, 3], [], [9]], `cut at ${cut}`);
  }
  const neg = new FrameReader(100);
  neg.push(Buffer.from([0xff, 0xff]), () => true);
  assert.throws(() => neg.push(Buffer.from([0xff, 0xfc]), () => true), DecodeError);
  const big = new FrameReader(100);
  big.push(frame([7]).subarray(0, 2), () => true);
  assert.throws(() => big.push(Buffer.from([0, 101]), () => true), /frame length of 101/);
});

test('watch tables: one call per callback per event; plain persistent at its path only; recursive below, never children', () => {
  const m = new WatchManager();
  const calls: string[] = [];
  const w = (e: { type: number; path: string }) => calls.push(`w ${e.type} ${e.path}`);
  m.register(1, '/a', w);
  m.register(3, '/a', w);
  const deleted = m.materialize(EVENT.deleted, '/a');
  assert.equal(deleted.oneShot.length, 1, 'in two tables, fired once');
  assert.equal(m.materialize(EVENT.deleted, '/a').oneShot.length, 0, 'one-shot: gone after firing');
  const l = () => {};
  m.addPersistent('persistent', '/p', l);
  const removeRec = m.addPersistent('persistentRecursive', '/', l);
  m.addPersistent('persistentRecursive', '/p', l);
  assert.equal(m.materialize(EVENT.created, '/p/c').persistent.length, 1);
  assert.equal(m.materialize(EVENT.childrenChanged, '/p').persistent.length, 1, 'the plain watch');
  const other = () => {};
  m.addPersistent('persistent', '/p', other);
  assert.equal(
    m.materialize(EVENT.created, '/p/c').persistent.includes(other),
    false,
    'plain: not a descendant',
  );
  assert.equal(
    m.materialize(EVENT.childrenChanged, '/q').persistent.length,
    0,
    'recursive: no children changed',
  );
  removeRec();
  assert.equal(m.persistentRecursive.has('/'), false);
  assert.equal(m.persistentRecursive.has('/p'), true);
});

test('servers: a round without delay, then backoff between rounds, reset by a connection', () => {
  const list = new ServerList(
    [
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ],
    100,
    30_000,
  );
  const round = () => [list.next(), list.next()];
  const first = round();
  assert.deepEqual(
    first.map((x) => x.delayMs),
    [0, 0],
  );
  assert.notEqual(first[0]!.server.host, first[1]!.server.host, 'each server once a round');
  const delays = [1, 2, 3, 4, 5, 6].map(() => round()[0]!.delayMs);
  const bases = [100, 200, 400, 800, 1600, 2000];
  for (const [i, d] of delays.entries())
    assert.ok(d >= bases[i]! / 2 && d <= bases[i]!, `round ${i + 2}: ${d} ms`);
  list.connected();
  assert.equal(list.next().delayMs, 0, 'after a connection, the next server at once');
  assert.throws(() => new ServerList([{ host: 'a', port: 70_000 }], 100, 1000), /port from 1 to 65535/);
});
