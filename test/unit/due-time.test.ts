import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  delayedPath,
  dueOf,
  MAX_DELAY_MS,
  runAtMs,
  SLOT_MS,
  slotName,
  slotOf,
  slotOfName,
  slotStart,
} from '../../src/farm/due-time.js';
import { parseTask } from '../../src/farm/protocol.js';

test('slots: the due time hour, ten digits, sorting as times do', () => {
  const t = Date.UTC(2026, 11, 4, 14, 30); // 14:30 UTC
  const s = slotOf(t);
  assert.equal(slotStart(s), Date.UTC(2026, 11, 4, 14, 0), 'a slot begins on the hour');
  assert.equal(slotOf(slotStart(s) + SLOT_MS - 1), s, 'the last ms of the hour is in it');
  assert.equal(slotOf(slotStart(s) + SLOT_MS), s + 1, 'the next hour is the next slot');
  assert.equal(slotName(s), '0000498998');
  assert.equal(slotOfName(slotName(s)), s);
  assert.equal(slotOfName('other'), undefined);
  assert.equal(slotOfName('123'), undefined);
  assert.equal(slotName(slotOf(8.64e15)).length, 10, 'the last time a Date holds still has ten digits');
  assert.ok(slotName(slotOf(t + 40 * 86_400_000)) > slotName(s), 'names sort as due times');
  assert.equal(delayedPath(t, 'task-0000000001'), '/delayed/0000498998/task-0000000001');
});

test('runAt: ms since the epoch, or an ISO-8601 time with its zone', () => {
  assert.equal(runAtMs(0), 0);
  assert.equal(runAtMs('2026-12-24T18:00:00Z'), Date.UTC(2026, 11, 24, 18));
  assert.equal(runAtMs('2026-12-24T19:00+01:00'), Date.UTC(2026, 11, 24, 18));
  assert.equal(runAtMs('2026-12-24T18:00:00.250Z'), Date.UTC(2026, 11, 24, 18) + 250);
  for (const bad of [
    '2026-12-24T18:00:00',
    '2026-12-24',
    'tomorrow',
    '',
    1.5,
    -1,
    9e15,
    null,
    '2026-13-40T99:00Z',
  ])
    assert.equal(runAtMs(bad), undefined, JSON.stringify(bad));
});

test('due: the latest of runAt, ctime + delayMs and notBefore; once taken in, notBefore alone', () => {
  const c = 10_000;
  assert.equal(dueOf({ handler: 'x' }, c), undefined);
  assert.equal(dueOf({ handler: 'x', delayMs: 5 }, c), c + 5);
  assert.equal(dueOf({ handler: 'x', runAt: 3 }, c), 3, 'a past runAt: due (at once)');
  assert.equal(dueOf({ handler: 'x', runAt: c + 9, delayMs: 5 }, c), c + 9);
  assert.equal(dueOf({ handler: 'x', delayMs: 5, _zkfarm: { attempts: 0, notBefore: c + 50 } }, c), c + 50);
  assert.equal(dueOf({ handler: 'x', delayMs: 5, _zkfarm: { attempts: 0, submittedAt: 1 } }, c), undefined);
  assert.equal(
    dueOf({ handler: 'x', delayMs: 5, _zkfarm: { attempts: 0, submittedAt: 1, notBefore: 7 } }, c),
    7,
  );
});

test('the schema: runAt and delayMs in range, their errors say what is expected', () => {
  assert.ok(parseTask(JSON.stringify({ handler: 'x', delayMs: MAX_DELAY_MS })).ok);
  assert.ok(parseTask(JSON.stringify({ handler: 'x', runAt: '2027-01-01T00:00:00Z' })).ok);
  const r = parseTask(JSON.stringify({ handler: 'x', delayMs: MAX_DELAY_MS + 1 }));
  assert.ok(
    !r.ok && /"delayMs": must be a whole number of ms from 0 to 31622400000 \(366 days\)/.test(r.error),
  );
  const at = parseTask(JSON.stringify({ handler: 'x', runAt: 'soon' }));
  assert.ok(!at.ok && /"runAt": must be a time/.test(at.error), !at.ok ? at.error : '');
  const obj = parseTask(JSON.stringify({ handler: 'x', runAt: { at: 1 } }));
  assert.ok(!obj.ok && /"runAt": must be a time/.test(obj.error), !obj.ok ? obj.error : '');
});
