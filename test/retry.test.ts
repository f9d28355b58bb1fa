/**
 * Re-runs and dead letters against a real ZooKeeper: a failed result keeps its task, a re-run submits it
 * again linked to the original, what cannot be re-run says why, and the CLI lists, exports and re-runs.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Handler } from '../src/exec/index.js';
import { runCli } from './helpers/chaos.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-retry-test-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

/** Fails while `broken` holds its input; succeeds once the input is mended. */
const broken = new Set<string>(['a', 'b']);
const flaky: Handler = async (input) => {
  if (broken.has(String(input))) throw new Error(`${input} is broken`);
  return `fixed ${input}`;
};

test('failed tasks keep their task; a re-run submits it again, linked; the CLI lists, exports and re-runs', async () => {
  const root = await zk.chroot('retry');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlers: { flaky } });
  const sub = await farm.submitter(root);
  const retry = { delayMs: 50, backoff: 'fixed' as const };
  const [a, b, ok] = await sub.submitMany([
    { handler: 'flaky', input: 'a', maxAttempts: 2, retry, queue: 'default', note: 'kept' },
    { handler: 'flaky', input: 'b' },
    { handler: 'flaky', input: 'c' },
  ]);
  const first = await sub.waitFor(a!, { timeoutMs: 30_000 });
  assert.equal(first.state, 'failed');
  assert.equal(first.attempts, 2, 'its own retry policy let it run twice');
  assert.deepEqual(
    first.task,
    { handler: 'flaky', input: 'a', maxAttempts: 2, retry, queue: 'default', note: 'kept' },
    'the task as submitted, without the farm bookkeeping',
  );
  await sub.waitFor(b!, { timeoutMs: 30_000 });
  assert.equal((await sub.waitFor(ok!, { timeoutMs: 30_000 })).task, undefined, 'a success keeps no task');

  // The CLI: list, export, dry run.
  const cli = (...args: string[]) => runCli([...args, '--zk', root]);
  const ls = await cli('failed');
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(
    ls.stdout,
    new RegExp(
      `${a}\\s+\\S+\\s+default\\s+2\\s+ZKFARM_HANDLER_FAILED\\s+handler "flaky" failed: a is broken`,
    ),
  );
  const ndjson = (await cli('failed', '--json', '--since', '1h')).stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(ndjson.map((r) => r.id).sort(), [a, b].sort());
  assert.equal(ndjson.find((r) => r.id === b).task.input, 'b');
  assert.equal(
    (await cli('failed', '--since', '2099-01-01T00:00:00Z')).stdout.trim(),
    'no failed tasks kept',
  );
  const dry = await cli('retry', '--failed', '--dry-run');
  assert.deepEqual(dry.stdout.trim().split('\n').sort(), [a, b].sort());

  // Mend a; re-run it from the library: the new task succeeds and points back at a.
  broken.delete('a');
  const [answer] = await sub.retry([a!]);
  assert.ok(answer?.retry, `a was re-run: ${JSON.stringify(answer)}`);
  const rerun = await sub.waitFor(answer.retry!, { timeoutMs: 30_000 });
  assert.equal(rerun.state, 'succeeded');
  assert.equal(rerun.retryOf, a);
  assert.equal(rerun.attempts, 1, 'a re-run starts its attempts afresh');
  const [again] = await sub.retry([a!]);
  assert.equal(again?.retry, answer.retry, 'asking again for the same re-run submits nothing new');

  // What cannot be re-run says why, and the others still go (exit 1 for the refused one).
  broken.delete('b');
  const mixed = await cli('retry', b!, ok!, 'task-0009999999');
  assert.equal(mixed.code, 1);
  assert.match(mixed.stdout, new RegExp(`^${b} -> task-\\d{10}$`, 'm'));
  assert.match(mixed.stderr, new RegExp(`task ${ok} cannot be re-run: it succeeded`));
  assert.match(mixed.stderr, /task task-0009999999 cannot be re-run: it has no result/);
  const usage = await cli('retry');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /name the task ids to re-run, or give --failed/);
});
