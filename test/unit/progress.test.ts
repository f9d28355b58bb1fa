/** Progress reports as handlers and shell lines give them (src/exec/progress.ts): pure logic. */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import {
  ProgressLines,
  parseProgressLine,
  readProgress,
  type TaskProgress,
} from '../../src/exec/progress.js';

test('readProgress: a number, a message, both, an object; junk is ignored, long messages are cut', () => {
  assert.deepEqual(readProgress(40), { value: 40 });
  assert.deepEqual(readProgress('copying'), { message: 'copying' });
  assert.deepEqual(readProgress(40, 'copying'), { value: 40, message: 'copying' });
  assert.deepEqual(readProgress({ value: 3, message: 'files' }), { value: 3, message: 'files' });
  for (const junk of [Number.NaN, Infinity, null, undefined, '', {}, [], () => 1])
    assert.equal(readProgress(junk), undefined, String(junk));
  assert.equal(readProgress('x'.repeat(500))!.message!.length, 200);
});

test('parseProgressLine: "<number>[%] [message]" or "<message>" after the prefix; other lines are not progress', () => {
  assert.deepEqual(parseProgressLine('zkfarm:progress 40 copying files'), {
    value: 40,
    message: 'copying files',
  });
  assert.deepEqual(parseProgressLine('zkfarm:progress 12.5%'), { value: 12.5 });
  assert.deepEqual(parseProgressLine('zkfarm:progress resizing'), { message: 'resizing' });
  assert.equal(parseProgressLine('zkfarm:progress'), undefined);
  assert.equal(parseProgressLine('progress 40'), undefined);
});

test('ProgressLines: reports progress lines split across chunks, passes every byte through', async () => {
  const seen: TaskProgress[] = [];
  const out: Buffer[] = [];
  const chunks = ['hello\nzkfarm:prog', 'ress 10 a\r\n', `${'y'.repeat(5000)}\nzkfarm:progress 20`, ''];
  await pipeline(
    Readable.from(chunks.map((c) => Buffer.from(c))),
    new ProgressLines((p) => seen.push(p)),
    new Writable({
      write(c, _e, cb) {
        out.push(c);
        cb();
      },
    }),
  );
  assert.deepEqual(seen, [{ value: 10, message: 'a' }, { value: 20 }]);
  assert.equal(Buffer.concat(out).toString(), chunks.join(''));
});
