/**
 * TasksWaiting (src/host/tasks-waiting.ts) against a real ZooKeeper: its signal aborts once /tasks has a
 * child, whether the task came after the watch or was there before it, and not for anything else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Submitter } from '../src/farm/submitter.js';
import { TasksWaiting } from '../src/host/tasks-waiting.js';
import { connect } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const cleanups = useCleanups();

async function admin(connectString: string) {
  const sup = connect({ connect: connectString });
  cleanups.push(() => sup.stop());
  return (await sup.ready).client;
}

function watcher(root: string): TasksWaiting {
  const w = new TasksWaiting({ connect: root });
  cleanups.push(() => w.close());
  return w;
}

test('a task submitted while it watches aborts the signal; other nodes do not', async () => {
  const root = await zk.chroot('tasks-waiting-new');
  const w = watcher(root); // /tasks does not exist yet
  await sleep(500);
  const rootClient = await admin(root);
  await rootClient.ensurePath('/tasks');
  await rootClient.ensurePath('/status/000000');
  await sleep(500);
  assert.equal(w.signal.aborted, false, 'an empty /tasks, and nodes elsewhere, are no tasks');
  const sub = await Submitter.open({ connect: root });
  cleanups.push(() => sub.close());
  await sub.submit({ handler: 'echo', input: 1 });
  await until(async () => w.signal.aborted, 10_000, 'the signal aborted');
});

test('a task already waiting when it starts aborts the signal', async () => {
  const root = await zk.chroot('tasks-waiting-left');
  const sub = await Submitter.open({ connect: root });
  cleanups.push(() => sub.close());
  await sub.submit({ handler: 'echo', input: 'left from before' });
  const w = watcher(root);
  await until(async () => w.signal.aborted, 10_000, 'the signal aborted');
  await w.close(); // twice is safe
  assert.equal(w.signal.aborted, true);
});

test('a watcher that cannot reach ZooKeeper never aborts, and closes', async () => {
  const w = new TasksWaiting({ connect: '127.0.0.1:1' });
  await sleep(300);
  assert.equal(w.signal.aborted, false);
  await w.close();
});
