/** Schedules' pure parts: checks, next ticks (cron in a time zone, intervals) and the tick plan. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkSpec,
  MAX_TICKS_PER_PASS,
  newRecord,
  nextTick,
  planTicks,
  type ScheduleRecord,
} from '../../src/farm/schedules/model.js';

const task = { handler: 'noop' };
const iso = (ms: number | null | undefined) => new Date(ms!).toISOString();

test('a cron expression is read in its time zone, across a daylight-saving change', () => {
  const s = checkSpec({ cron: '0 9 * * *', tz: 'America/New_York', task });
  let t = Date.parse('2026-03-07T00:00:00Z');
  const runs: string[] = [];
  for (let i = 0; i < 3; i++) {
    t = nextTick(s, t)!;
    runs.push(iso(t));
  }
  // 09:00 in New York is 14:00 UTC before 8 March 2026 (EST) and 13:00 UTC after (EDT).
  assert.deepEqual(runs, [
    '2026-03-07T14:00:00.000Z',
    '2026-03-08T13:00:00.000Z',
    '2026-03-09T13:00:00.000Z',
  ]);
  const paris = checkSpec({ cron: '30 8 * * 1', tz: 'Europe/Paris', task });
  assert.equal(iso(nextTick(paris, Date.parse('2026-12-03T12:00:00Z'))), '2026-12-07T07:30:00.000Z');
  const utc = checkSpec({ cron: '*/15 * * * * *', task });
  assert.equal(iso(nextTick(utc, Date.parse('2026-12-03T12:00:07Z'))), '2026-12-03T12:00:15.000Z');
});

test('an interval counts from its start, whatever time it is asked at', () => {
  const s = { every: 5000, start: 1_000_000, task };
  assert.equal(nextTick(s, 0), 1_000_000);
  assert.equal(nextTick(s, 1_000_000), 1_005_000);
  assert.equal(nextTick(s, 1_004_999), 1_005_000);
  const rec = newRecord({ every: 60_000, task }, 2_000_000);
  assert.equal(rec.start, 2_000_000);
  assert.equal(rec.next, 2_000_000, 'the first tick of an interval is its creation');
});

test('bad schedules are refused with the reason and a stable code', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ cron: '61 * * * *', task }, /"cron" "61 \* \* \* \*".*minute/],
    [{ cron: '0 9 * * *', tz: 'Mars/Base', task }, /Mars\/Base/],
    [{ cron: '* * * * *', every: 1000, task }, /exactly one of "every".*or "cron"/],
    [{ every: 10, task }, /"every": must be a whole number of ms, at least 1000/],
    [{ every: 1000, task: { handler: 'echo', cmd: 'ls' } }, /its task: .*exactly one of "cmd"/],
    [{ every: 1000, tz: 'UTC', task }, /"tz" applies to "cron" only/],
    [{ every: 1000 }, /"task"/],
  ];
  for (const [spec, message] of cases)
    assert.throws(() => checkSpec(spec), { code: 'ZKFARM_INVALID_SCHEDULE', message }, JSON.stringify(spec));
});

const rec = (over: Partial<ScheduleRecord>): ScheduleRecord => ({
  every: 1000,
  start: 0,
  task,
  next: 10_000,
  createdAt: 0,
  ...over,
});

test('ticks within the grace each make a task; the plan moves next past them', () => {
  assert.deepEqual(planTicks(rec({}), 9_999), { ticks: [], missed: false, next: 10_000 });
  assert.deepEqual(planTicks(rec({}), 12_500), {
    ticks: [10_000, 11_000, 12_000],
    missed: false,
    next: 13_000,
  });
  assert.deepEqual(planTicks(rec({ paused: true }), 12_500).ticks, []);
  const many = planTicks(rec({ graceMs: 3_600_000 }), 1_000_000);
  assert.equal(many.ticks.length, MAX_TICKS_PER_PASS, 'at most this many per pass');
  assert.equal(many.next, 10_000 + MAX_TICKS_PER_PASS * 1000, 'the rest stay due');
});

test('ticks missed past the grace are skipped, or stand for one task with catchUp "once"', () => {
  const skip = planTicks(rec({ graceMs: 2000 }), 100_500);
  assert.deepEqual(skip, { ticks: [99_000, 100_000], missed: true, next: 101_000 });
  const once = planTicks(rec({ graceMs: 2000, catchUp: 'once' }), 100_500);
  assert.deepEqual(once, { ticks: [10_000, 99_000, 100_000], missed: true, next: 101_000 });
  const cron = planTicks(
    { cron: '0 * * * *', task, next: Date.parse('2026-01-01T00:00:00Z'), catchUp: 'skip' },
    Date.parse('2026-01-03T05:30:00Z'),
  );
  assert.deepEqual(cron, { ticks: [], missed: true, next: Date.parse('2026-01-03T06:00:00Z') });
});

test('a leader whose clock is ahead and one whose clock is behind never make a tick twice', () => {
  // Leader A's clock runs 3 s ahead: it makes ticks early and stores where it got to.
  const a = planTicks(rec({}), 13_000);
  assert.deepEqual(a.ticks, [10_000, 11_000, 12_000, 13_000]);
  // Leader B takes over with a clock 2 s behind the truth; it reads A's state.
  const afterA = rec({ next: a.next });
  const b = planTicks(afterA, 11_500);
  assert.deepEqual(b.ticks, [], 'nothing A made is due again');
  assert.deepEqual(planTicks(afterA, 14_200).ticks, [14_000], 'the next tick comes once B reaches it');
});
