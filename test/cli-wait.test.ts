/**
 * `runtime submit --file --wait` on a farm that removes results as it goes (a small retention.maxCount
 * and no minAgeMs, so that only the waiter's timing can save a result): every task's result is
 * printed, because each batch is waited for from the moment it is confirmed, not once the whole file
 * is in (JSON lines on stdin likewise, a thousand at a time). And waiting for many results at once costs a notification each, not requests each.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { useCleanups } from './helpers/cleanups.js';
import { Cli } from './helpers/cli.js';
import { useFarm } from './helpers/farm.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-cli-wait-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir: join(tmp, 'work') });

/**
 * `runtime submit <args> --wait` of n no-op tasks (a --file of them, or `input` on stdin) on a farm that
 * keeps 1,000 results and removes the rest at once: every task's id and result must be printed.
 */
async function everyResult(
  name: string,
  n: number,
  args: (lines: string) => { args: string[]; input?: string },
) {
  const root = await zk.chroot(name);
  await farm.master(root, 'm1', { retention: { maxCount: 1000, minAgeMs: 0 } });
  await farm.worker(root, 'w1', { capacity: 64 });
  const run = args(Array.from({ length: n }, (_, i) => `{"handler":"noop","input":${i}}\n`).join(''));
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: join(tmp, 'xdg') };
  delete env['ZKFARM_ZK'];
  const r = await new Cli(['submit', '--zk', root, ...run.args, '--wait'], { env, input: run.input }).exit(
    180_000,
  );
  const lines = r.stdout.trimEnd().split('\n');
  const ids = lines.filter((l) => !l.startsWith('{'));
  const results = lines
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { id: string; state: string });
  assert.equal(r.code, 0, r.stderr.split('\n').slice(-3).join('\n'));
  assert.equal(ids.length, n);
  assert.equal(results.length, n, 'one result per task');
  assert.deepEqual(new Set(results.map((s) => s.id)), new Set(ids));
  assert.ok(results.every((s) => s.state === 'succeeded'));
}

test('submit --file --wait prints every result, also of a file ten times longer than the results a farm keeps', async () => {
  await everyResult('cli-wait', 10_000, (lines) => {
    const file = join(tmp, 'tasks.ndjson');
    writeFileSync(file, lines);
    // A small inbox: the file goes in over several seconds while the farm finishes (and removes) results.
    return { args: ['--file', file, '--max-inbox', '500'] };
  });
});

test('JSON lines on stdin with --wait: every result printed, each part waited for once it is in', async () => {
  await everyResult('cli-wait-stdin', 40_000, (lines) => ({ args: [], input: lines }));
});

test('waiting for 2,000 results makes far fewer requests than results: the waits share a watch on their bucket', async () => {
  const root = await zk.chroot('wait-many');
  await farm.master(root, 'm1');
  const s = await farm.submitter(root);
  const n = 2000;
  const ids = await s.submitMany(Array.from({ length: n }, (_, i) => ({ handler: 'noop', input: i })));
  const before = s.supervisor.requests;
  // The last id twice (both waits on the bucket's watch): two waits for one result, both answered.
  const waiting = s.waitForAll([...ids, ids.at(-1)!], { timeoutMs: 120_000 });
  // The worker comes once the waits are on: most results are heard of, not found already there.
  await sleep(300);
  await farm.worker(root, 'w1', { capacity: 64 });
  const results = await waiting;
  const used = s.supervisor.requests - before;
  assert.deepEqual(
    results.map((r) => r.state),
    [...ids, ids.at(-1)!].map(() => 'succeeded'),
  );
  // A data watch per task costs two or three requests each (6,000 here); the bucket's watch, a read per
  // hundred results at most, and a few data watches before the bucket's watch pays.
  assert.ok(used < n / 4, `${used} requests to wait for ${n} results`);
});
