/**
 * Schedules against a real ZooKeeper: one task per tick across leader changes, what a foreign client
 * may write, pause and removal, and the CLI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Master } from '../src/farm/master.js';
import { PATHS, type Task } from '../src/farm/protocol.js';
import { ScheduleAdmin } from '../src/farm/schedules/admin.js';
import { schedulePath } from '../src/farm/schedules/model.js';
import type { ZkClient } from '../src/zk/index.js';
import { runCli } from './helpers/chaos.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { expireSession } from './helpers/faults.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-schedules-test-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

type Made = { name: string; tick: number; caughtUp?: boolean };

/** The schedule marks of the tasks in /tasks (no worker runs them here, so they all stay). */
async function made(client: ZkClient): Promise<Made[]> {
  const ids = await client.getChildren(PATHS.tasks);
  const reads = await client.getDataMany(ids.map((id) => `${PATHS.tasks}/${id}`));
  return reads.flatMap((r) => {
    if (r instanceof Error) return [];
    const t = JSON.parse(r.data.toString()) as Task & { _zkfarm?: { schedule?: Made } };
    return t._zkfarm?.schedule ? [t._zkfarm.schedule] : [];
  });
}

function leaderOf(masters: Master[]): Master | undefined {
  return masters.find((m) => m.isLeader);
}

test('an every-second schedule makes one task per tick while the leader is killed twice', async () => {
  const root = await zk.chroot('ticks');
  const masters = [await farm.master(root, 'm1'), await farm.master(root, 'm2')];
  const client = await farm.admin(root);
  await until(async () => leaderOf(masters) !== undefined, 15_000, 'a leader');
  const created = await new ScheduleAdmin(client).create('beat', { every: 1000, task: { handler: 'noop' } });
  const t0 = created.next!;
  for (const at of [8_000, 18_000]) {
    await sleep(Math.max(0, t0 + at - Date.now()));
    const leader = leaderOf(masters);
    assert.ok(leader, 'a master leads before each kill');
    await expireSession(leader.sessionSupervisor!);
    await until(async () => leaderOf(masters) !== undefined, 15_000, 'a leader after the kill');
  }
  await sleep(Math.max(0, t0 + 30_000 - Date.now()));
  await new ScheduleAdmin(client).pause('beat');
  const rec = (await new ScheduleAdmin(client).get('beat')).record!;
  const ticks = (await made(client)).filter((m) => m.name === 'beat').map((m) => m.tick);
  const sorted = [...ticks].sort((a, b) => a - b);
  assert.equal(new Set(ticks).size, ticks.length, `no tick made twice: ${sorted.join(',')}`);
  assert.ok(ticks.length >= 28, `about 30 ticks in 30 s, got ${ticks.length}`);
  for (let i = 0; i < sorted.length; i++)
    assert.equal(sorted[i], t0 + i * 1000, `tick ${i} is the ${i}th second after the first: none skipped`);
  assert.equal(rec.ticks, ticks.length, "the schedule's count matches the tasks made");
  assert.equal(rec.lastTick, sorted.at(-1));
  const changes = masters.reduce((n, m) => n + m.stats().leaderChanges, 0);
  assert.ok(changes >= 3, `the lead changed hands twice (${changes} terms in all)`);
});

test("a foreign client's schedule is started by the leader; a broken one is skipped and said so", async () => {
  const root = await zk.chroot('foreign');
  const m = await farm.master(root, 'm1');
  const client = await farm.admin(root);
  await m.waitForLeadership();
  await client.ensurePath('/schedules');
  await client.create(schedulePath('broken'), '{"cron": "not a cron", "task": {"handler": "noop"}}');
  await client.create(schedulePath('plain'), '{"every": 1000, "task": {"handler": "echo", "input": 7}}');
  await until(async () => (await made(client)).some((s) => s.name === 'plain'), 15_000, 'a tick of "plain"');
  const plain = (await new ScheduleAdmin(client).get('plain')).record!;
  assert.equal(typeof plain.next, 'number', 'the leader gave the hand-written schedule its state');
  const broken = await new ScheduleAdmin(client).get('broken');
  assert.equal(broken.record, undefined);
  assert.match(broken.problem!, /"cron" "not a cron"/);
  assert.equal((await made(client)).filter((s) => s.name === 'broken').length, 0);
  await new ScheduleAdmin(client).remove('plain');
  const after = (await made(client)).length;
  await sleep(2500);
  assert.equal((await made(client)).length, after, 'a removed schedule makes no more tasks');
});

test('paused schedules make nothing; resumed ones start from the next tick, not the missed ones', async () => {
  const root = await zk.chroot('pause');
  const m = await farm.master(root, 'm1');
  const client = await farm.admin(root);
  await m.waitForLeadership();
  const admin = new ScheduleAdmin(client);
  await admin.create('p', { every: 1000, task: { handler: 'noop' }, paused: true });
  await sleep(2500);
  assert.equal((await made(client)).length, 0, 'a paused schedule makes no task');
  const resumed = await admin.resume('p');
  assert.ok(resumed.next! > Date.now() - 1000, 'the next tick is after the resume');
  await until(async () => (await made(client)).length >= 2, 15_000, 'ticks after the resume');
  assert.ok(
    (await made(client)).every((s) => s.tick >= resumed.next!),
    'no tick from while it was paused',
  );
});

test('runtime schedule create, ls, pause, rm, and clear errors for bad input', async () => {
  const root = await zk.chroot('cli');
  const cli = (...args: string[]) => runCli(['schedule', ...args, '--zk', root]);
  const ok = await cli(
    'create',
    'nightly',
    '{"handler":"noop"}',
    '--cron',
    '0 3 * * *',
    '--tz',
    'Europe/Paris',
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /schedule nightly created: cron "0 3 \* \* \*" Europe\/Paris, next tick \d{4}-/);
  const again = await cli('create', 'nightly', '{"handler":"noop"}', '--every', '1h');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /schedule nightly exists already.*--replace/);
  const bad = await cli('create', 'x', '{"handler":"noop"}', '--cron', '0 25 * * *');
  assert.equal(bad.code, 2, 'a bad expression is a usage error');
  assert.match(bad.stderr, /invalid schedule: "cron" "0 25 \* \* \*".*hour/);
  const badEvery = await cli('create', 'y', '{"handler":"noop"}', '--every', 'soon');
  assert.equal(badEvery.code, 2);
  assert.match(badEvery.stderr, /--every: expected a duration like 1500 \(ms\), 30s/);
  assert.equal((await cli('pause', 'nightly')).code, 0);
  const ls = await cli('ls');
  assert.match(ls.stdout, /nightly\s+cron "0 3 \* \* \*" Europe\/Paris\s+-\s+-\s+0\s+paused/);
  const rm = await cli('rm', 'nightly');
  assert.equal(rm.code, 0);
  const gone = await cli('rm', 'nightly');
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /no schedule named nightly/);
});
