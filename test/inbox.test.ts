/**
 * The leader's inbox (src/farm/inbox.ts) against a real ZooKeeper: the early read that goes out with a
 * listing once the leader has caught up, so that a task submitted to an idle farm is listed and read in
 * one round trip.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Inbox } from '../src/farm/inbox.js';
import { PATHS, taskPath } from '../src/farm/protocol.js';
import { CreateMode, type ZkClient } from '../src/zk/client.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const silent = { debug() {}, info() {}, warn() {}, error() {} };

async function inboxOn(name: string): Promise<{ client: ZkClient; inbox: Inbox }> {
  const client = await zk.rawClient(await zk.chroot(name));
  await client.create(PATHS.tasks);
  const inbox = new Inbox(client, silent, { kick() {}, wake() {}, async commit() {}, setAside() {} });
  return { client, inbox };
}

/** Submit as a user's client does: a sequential create under /tasks. */
async function submit(client: ZkClient, task: object): Promise<string> {
  const path = await client.create(
    `${PATHS.tasks}/task-`,
    JSON.stringify(task),
    CreateMode.PERSISTENT_SEQUENTIAL,
  );
  return path.slice(PATHS.tasks.length + 1);
}

/** The leader handed the task out: it left /tasks. */
async function handOut(client: ZkClient, inbox: Inbox, id: string): Promise<void> {
  await client.remove(taskPath(id));
  inbox.view.moved(id);
}

test('a task submitted after the leader caught up is read with its listing, not in a round trip of its own', async () => {
  const { client, inbox } = await inboxOn('early');
  const first = await submit(client, { handler: 'noop', input: 0 });
  await inbox.list();
  assert.equal(await inbox.readAhead(10), true);
  assert.ok(inbox.view.get(first), 'the first task is read the usual way');
  await handOut(client, inbox, first);
  assert.equal(inbox.view.size, 0);

  const next = await submit(client, { handler: 'noop', input: 1 });
  await inbox.list();
  const before = client.requests;
  assert.equal(await inbox.readAhead(10), true);
  assert.equal(client.requests, before, 'the listing already brought the task: no read request');
  const held = inbox.view.get(next);
  assert.ok(held, 'the task is held, read');
  const task = JSON.parse(held.data.toString());
  assert.deepEqual([task.handler, task.input], ['noop', 1]);
  const stat = await client.exists(taskPath(next));
  assert.equal(held.version, stat?.version);
});

test('several tasks submitted at once are all read with the listing; guesses past them harm nothing', async () => {
  const { client, inbox } = await inboxOn('early-many');
  await handOut(client, inbox, await submitAndList(client, inbox));
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await submit(client, { handler: 'noop', input: i }));
  await inbox.list();
  const before = client.requests;
  await inbox.readAhead(10);
  assert.equal(client.requests, before);
  assert.deepEqual(
    ids.map((id) => JSON.parse(inbox.view.get(id)!.data.toString()).input),
    [0, 1, 2],
  );
  // The guessed ids that did not exist yet are not taken for gone: the next one is listed and read.
  for (const id of ids) await handOut(client, inbox, id);
  const later = await submit(client, { handler: 'noop', input: 'later' });
  await inbox.list();
  await inbox.readAhead(10);
  assert.equal(JSON.parse(inbox.view.get(later)!.data.toString()).input, 'later');
});

test('what an early read brought is used once: a task read again is read from ZooKeeper, as it is now', async () => {
  const { client, inbox } = await inboxOn('early-once');
  await handOut(client, inbox, await submitAndList(client, inbox));
  const id = await submit(client, { handler: 'noop', input: 'old' });
  await inbox.list();
  await client.setData(taskPath(id), JSON.stringify({ handler: 'noop', input: 'new' }));
  await inbox.readAhead(10);
  // The early read's data is older than the node (as a move's version check would find): read again.
  inbox.view.reread(id);
  const before = client.requests;
  await inbox.readAhead(10);
  assert.equal(client.requests, before + 1, 'read from ZooKeeper');
  const held = inbox.view.get(id)!;
  assert.equal(JSON.parse(held.data.toString()).input, 'new');
  assert.equal(held.version, 1);
});

test('a listing with tasks still known sends no early read', async () => {
  const { client, inbox } = await inboxOn('early-busy');
  const waiting = await submitAndList(client, inbox);
  assert.equal(inbox.view.size, 1);
  const next = await submit(client, { handler: 'noop', input: 'queued behind' });
  const before = client.requests;
  await inbox.list();
  assert.equal(client.requests, before + 1, 'the listing alone');
  await inbox.readAhead(10);
  assert.ok(inbox.view.get(next) && inbox.view.get(waiting));
});

/** Submit one task, list and read it: the inbox now knows the highest id. */
async function submitAndList(client: ZkClient, inbox: Inbox): Promise<string> {
  const id = await submit(client, { handler: 'noop' });
  await inbox.list();
  await inbox.readAhead(10);
  return id;
}
