/**
 * Idempotent submission (src/farm/task-keys.ts, key-sweeper.ts) against a real ZooKeeper: a key
 * submitted twice makes one task; a connection cut after the create was applied but before its answer
 * came back, then the retry, makes one task and returns its id; a foreign client's one-multi submission
 * is honoured; a key held by a task nobody can find fails with ZKFARM_KEY_PENDING; the window prunes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCodes } from '../src/errors.js';
import { KeySweeper } from '../src/farm/key-sweeper.js';
import { encode, PATHS, type Task } from '../src/farm/protocol.js';
import { KEY_BUCKETS, keyPath, parseKeyRecord } from '../src/farm/task-keys.js';
import type { ZkClient } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { Cli } from './helpers/cli.js';
import { captureLogger, useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-keys-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir: join(tmp, 'work') });

/** The tasks in /tasks, with their data. */
async function queued(c: ZkClient): Promise<Array<{ id: string; task: Task }>> {
  const ids = (await c.getChildren(PATHS.tasks)).filter((n) => n.startsWith('task-')).sort();
  const reads = await c.getDataMany(ids.map((id) => `${PATHS.tasks}/${id}`));
  return ids.map((id, i) => {
    const r = reads[i]!;
    if (r instanceof Error) throw r;
    return { id, task: JSON.parse(r.data.toString('utf8')) as Task };
  });
}

test('the same key twice, alone and among many: one task per key, the first id each time', async () => {
  const root = await zk.chroot('keys-twice');
  const raw = await zk.rawClient(root);
  const sub = await farm.submitter(root);
  const first = await sub.submitKeyed({ handler: 'echo', input: 1, key: 'order-1' });
  assert.equal(first.existed, false);
  const again = await sub.submitKeyed({ handler: 'echo', input: 'changed', key: 'order-1' });
  assert.deepEqual(again, { id: first.id, existed: true });
  assert.equal(await sub.submit({ handler: 'echo', key: 'order-1' }), first.id);

  // Many: a key held already, a key twice in the call, fresh keys and an unkeyed task, in batches of 2.
  const many = await (await farm.submitter(root, { batchSize: 2 })).submitMany([
    { handler: 'echo', input: 'a', key: 'order-2' },
    { handler: 'echo', input: 'b', key: 'order-1' },
    { handler: 'echo', input: 'c' },
    { handler: 'echo', input: 'd', key: 'order-2' },
    { handler: 'echo', input: 'e', key: 'order-3' },
  ]);
  assert.equal(many[1], first.id);
  assert.equal(many[3], many[0]);
  const tasks = await queued(raw);
  assert.deepEqual(
    tasks.map((t) => t.task.input),
    [1, 'a', 'c', 'e'],
    'one task per key (the first submission of each), and the unkeyed one',
  );
  for (const [i, key] of [
    [0, 'order-2'],
    [4, 'order-3'],
  ] as const) {
    const record = parseKeyRecord((await raw.getData(keyPath(key))).data);
    assert.deepEqual(record, { key, id: many[i] }, `the key node of ${key} holds its task's id`);
  }
});

test('a connection cut after the create was applied and before its answer: the keyed submit retries and returns the one task', async () => {
  const root = await zk.chroot('keys-cut');
  const raw = await zk.rawClient(root);
  const { proxy, connect } = await farm.proxied(root);
  const sub = await farm.submitter(root, { connect, sessionTimeout: 10_000 });
  await new KeySweeper(raw, undefined, captureLogger()).makeBuckets(); // as the leading master does
  const key = 'invoice-77';
  // Every chunk waits 1 s in the proxy each way: the create reaches ZooKeeper 1 s after it was sent and
  // its answer would come back 1 s after that. The cut falls in between: applied, never answered.
  proxy.setDelay(1000);
  const submitted = sub.submit({ handler: 'echo', input: 'once', key });
  await until(
    async () => (await raw.exists(keyPath(key))) !== null,
    10_000,
    'the key node made by the create',
  );
  proxy.cut();
  const created = await queued(raw);
  assert.equal(created.length, 1, 'the create was applied before the cut');
  assert.equal(
    parseKeyRecord((await raw.getData(keyPath(key))).data)?.id,
    undefined,
    'its answer never came back',
  );
  setTimeout(() => proxy.restore(), 300);
  const id = await submitted;
  assert.equal(id, created[0]!.id, 'the retry returns the id of the task the lost create made');
  assert.equal((await queued(raw)).length, 1, 'and creates nothing more');
  assert.equal(parseKeyRecord((await raw.getData(keyPath(key))).data)?.id, id, 'the retry filled the id in');
  // Submitting again, as a caller that never learnt the answer would, returns it too.
  assert.equal(await sub.submit({ handler: 'echo', input: 'once', key }), id);
  assert.equal((await queued(raw)).length, 1);
});

test("a foreign client's one-multi submission: the worker fills the id in, a later submit returns it; a key whose task is nowhere fails with KEY_PENDING", async () => {
  const root = await zk.chroot('keys-foreign');
  const raw = await zk.rawClient(root);
  await farm.master(root, 'm1');
  await until(
    async () => (await raw.getChildren('/keys').catch(() => [])).length === 256,
    10_000,
    '/keys buckets',
  );
  // What a client in another language does: one multi, the key node and the task, nothing else.
  const key = 'from-kazoo';
  const [, task] = await raw
    .transaction()
    .create(keyPath(key), encode({ key }))
    .create(`${PATHS.tasks}/task-`, encode({ handler: 'echo', input: 'x', key }), 2)
    .commit();
  const id = task!.path!.slice(PATHS.tasks.length + 1);
  await farm.worker(root, 'w1');
  await until(
    async () => parseKeyRecord((await raw.getData(keyPath(key))).data)?.id === id,
    10_000,
    'the worker to fill in the id when it starts the task',
  );
  const sub = await farm.submitter(root, { keyWaitMs: 300 });
  assert.equal(await sub.submit({ handler: 'echo', key }), id);

  // A key node alone (its task deleted by hand): nothing to find, nobody to fill it in.
  await raw.create(keyPath('orphan'), encode({ key: 'orphan' }));
  await assert.rejects(
    sub.submit({ handler: 'echo', key: 'orphan' }),
    (err: { code?: string; message: string }) => {
      assert.equal(err.code, ErrorCodes.KEY_PENDING);
      assert.match(err.message, /Nothing was created twice/);
      return true;
    },
  );
  assert.equal((await raw.getChildren(PATHS.tasks)).filter((n) => n.startsWith('task-')).length, 0);
});

test('the key window: keys older than it are removed, younger ones kept, and the buckets stay', async () => {
  const root = await zk.chroot('keys-window');
  const raw = await zk.rawClient(root);
  const sub = await farm.submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 40 }, (_, i) => ({ handler: 'noop', key: `k${i}` })));
  const sweeper = new KeySweeper(raw, 60_000, captureLogger());
  const count = async () => {
    let n = 0;
    for (const b of KEY_BUCKETS) n += (await raw.getChildren(`/keys/${b}`)).length;
    return n;
  };
  // A full pass "now": every key is younger than the window.
  for (let i = 0; i < KEY_BUCKETS.length / 16; i++) assert.equal(await sweeper.sweep(Date.now()), 0);
  assert.equal(await count(), 40);
  // A full pass two minutes later: all are past it.
  let removed = 0;
  for (let i = 0; i < KEY_BUCKETS.length / 16; i++) removed += await sweeper.sweep(Date.now() + 120_000);
  assert.equal(removed, 40);
  assert.equal(await count(), 0);
  assert.equal((await raw.getChildren('/keys')).length, 256, 'buckets are never removed');
  // Forgotten: the key makes a new task.
  const again = await sub.submit({ handler: 'noop', key: 'k0' });
  assert.notEqual(again, ids[0]);
});

test('runtime submit --key twice: one task, the same id, and it says so; --file --key-field: one task per key', async () => {
  const root = await zk.chroot('keys-cli');
  const raw = await zk.rawClient(root);
  const env = { ...process.env };
  delete env['ZKFARM_ZK'];
  const run = (args: string[]) => new Cli(['submit', '--zk', root, ...args], { env }).exit(60_000);
  const task = '{"handler":"echo","input":42}';
  const first = await run(['--key', 'order-42', task]);
  assert.equal(first.code, 0, first.stderr);
  const again = await run(['--key', 'order-42', task]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, first.stdout);
  assert.match(again.stderr, /the key "order-42" is held by task-\d{10}: nothing new submitted/);

  const file = join(tmp, 'orders.ndjson');
  writeFileSync(
    file,
    [
      '{"handler":"echo","orderId":7}',
      '{"handler":"echo","orderId":"x"}',
      '{"handler":"echo","orderId":7}',
      '',
    ].join('\n'),
  );
  const streamed = await run(['--file', file, '--key-field', 'orderId']);
  assert.equal(streamed.code, 0, streamed.stderr);
  const ids = streamed.stdout.trim().split('\n');
  assert.equal(ids.length, 3);
  assert.equal(ids[2], ids[0], "the same key on two lines: the first line's task");
  assert.equal((await queued(raw)).length, 3, 'order-42, 7 and x');
  const bad = await run(['--file', file, '--key-field', 'nope']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /orders\.ndjson:1: --key-field nope: the task has no "nope"/);
});
