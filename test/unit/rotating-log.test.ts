/** exec/rotating-log.ts: a log rotates at its size, keeps `keep` old files, and appends across opens. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RotatingLog } from '../../src/exec/rotating-log.js';

test('rotates at maxBytes, keeps `keep` old files, and appends to what an earlier run wrote', () => {
  const dir = mkdtempSync(join(tmpdir(), 'zkfarm-rotlog-'));
  try {
    const path = join(dir, 'stdout.log');
    const first = new RotatingLog(path, { maxBytes: 100, keep: 2 });
    first.write(Buffer.from('a'.repeat(60)));
    first.close();
    const log = new RotatingLog(path, { maxBytes: 100, keep: 2 });
    log.write(Buffer.from('b'.repeat(30))); // 90 bytes: no rotation yet
    assert.equal(statSync(path).size, 90);
    for (const c of ['c', 'd', 'e']) log.write(Buffer.from(c.repeat(60)));
    log.close();
    assert.equal(readFileSync(path, 'utf8'), 'e'.repeat(60));
    assert.equal(readFileSync(`${path}.1`, 'utf8'), 'd'.repeat(60));
    assert.equal(readFileSync(`${path}.2`, 'utf8'), 'c'.repeat(60));
    assert.equal(existsSync(`${path}.3`), false, 'the oldest is deleted');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
