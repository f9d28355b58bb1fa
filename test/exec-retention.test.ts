/**
 * Output retention (src/exec/output-retention.ts): a busy worker does not fill the disk. The Executor
 * removes task directories, oldest first, beyond `maxCount`, beyond `maxBytes`, and older than
 * `maxAgeMs`; a running task's directory is never touched. No ZooKeeper: the Executor alone.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ErrorCodes, hasCode } from '../src/errors.js';
import { type ExecRequest, Executor, type TaskSpec } from '../src/exec/index.js';
import { removeTempDirs, tempDir } from './fixtures/exec-helpers.js';
import { until } from './helpers/wait.js';

after(removeTempDirs);
const HOUR = 3600_000;
const id = (n: number) => `task-${String(n).padStart(10, '0')}`;
const req = (n: number, spec: TaskSpec): ExecRequest => ({
  workerName: 'w1',
  taskId: id(n),
  attempt: 1,
  spec,
});
const dirsOf = (workdir: string) => readdirSync(join(workdir, 'w1')).sort();

/** Task n's directory was last written n hours before now (a deterministic age order). */
function ageBy(workdir: string, n: number, hoursAgo: number): void {
  const t = (Date.now() - hoursAgo * HOUR) / 1000;
  utimesSync(join(workdir, 'w1', id(n)), t, t);
}

test('beyond maxCount the oldest task directories go; the newest stay', async () => {
  const workdir = join(await tempDir(), 'work');
  const ex = new Executor({
    workdir,
    taskDirs: 'always',
    outputRetention: { maxCount: 3, intervalMs: HOUR },
  });
  for (let n = 1; n <= 10; n++)
    assert.equal((await ex.run(req(n, { handler: 'echo', input: n }))).state, 'succeeded');
  for (let n = 1; n <= 10; n++) ageBy(workdir, n, 11 - n); // task 10 is the newest
  const report = await ex.sweepOutputs();
  assert.equal(report.removed, 7);
  assert.deepEqual(dirsOf(workdir), [id(8), id(9), id(10)]);
  await ex.close();
});

test('beyond maxBytes the oldest go, sizes counted without following links; older than maxAgeMs go too', async () => {
  const workdir = join(await tempDir(), 'work');
  const ex = new Executor({
    workdir,
    allowShell: true,
    outputRetention: { maxBytes: 250 * 1024, maxAgeMs: 5 * HOUR, intervalMs: HOUR },
  });
  for (let n = 1; n <= 5; n++) {
    const out = await ex.run(req(n, { cmd: 'head -c 102400 /dev/zero > blob; ln -s / root-link' }));
    assert.equal(out.state, 'succeeded', out.error);
  }
  for (let n = 1; n <= 5; n++) ageBy(workdir, n, 6 - n);
  const bySize = await ex.sweepOutputs();
  assert.deepEqual(dirsOf(workdir), [id(4), id(5)], JSON.stringify(bySize));
  assert.ok(bySize.bytesKept <= 250 * 1024 && bySize.bytesKept >= 200 * 1024, JSON.stringify(bySize));
  ageBy(workdir, 4, 7); // now older than maxAgeMs
  await ex.sweepOutputs();
  assert.deepEqual(dirsOf(workdir), [id(5)]);
  assert.ok(existsSync('/etc'), 'the link to / was removed, not followed');
  await ex.close();
});

test("a running task's directory is never removed, and the Executor sweeps by itself every intervalMs", async () => {
  const workdir = join(await tempDir(), 'work');
  const ex = new Executor({ workdir, taskDirs: 'always', outputRetention: { maxCount: 0, intervalMs: 50 } });
  const running = ex.run(req(1, { handler: 'sleep', input: 1500 }));
  await until(() => existsSync(join(workdir, 'w1', id(1))), 10_000, 'the running task to have its directory');
  const report = await ex.sweepOutputs();
  assert.equal(report.removed, 0);
  assert.ok(existsSync(join(workdir, 'w1', id(1))), 'still there while it runs');
  assert.equal((await running).state, 'succeeded');
  // Finished, it is the sweeper's like any other: the timer removes it.
  await until(() => !existsSync(join(workdir, 'w1', id(1))), 30_000, 'the timer sweep to remove it');
  await ex.close();
});

test('outputRetention is checked: a bad limit is ZKFARM_CONFIG_INVALID; false keeps everything', async () => {
  assert.throws(
    () => new Executor({ outputRetention: { maxCount: -1 } }),
    (e: unknown) => hasCode(e, ErrorCodes.CONFIG_INVALID) && /outputRetention\.maxCount/.test(String(e)),
  );
  assert.throws(
    () => new Executor({ outputRetention: { maxFiles: 3 } as never }),
    /outputRetention\.maxFiles/,
  );
  const workdir = join(await tempDir(), 'work');
  const ex = new Executor({ workdir, taskDirs: 'always', outputRetention: false });
  await ex.run(req(1, { handler: 'echo', input: 1 }));
  assert.deepEqual(await ex.sweepOutputs(), { removed: 0, bytesRemoved: 0, kept: 0, bytesKept: 0 });
  assert.deepEqual(dirsOf(workdir), [id(1)]);
  await ex.close();
});
