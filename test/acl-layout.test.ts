/**
 * Closing a farm whose nodes someone made first (src/farm/layout.ts). With `auth`, every node the farm
 * adopts must carry the farm identity's ACL alone, whatever open ACL it had: `ip:` and other digests
 * with a wide grant count as open, and so do children made before the farm started (a squatter's
 * /status/<id> or /assign/<w>). Role nodes of other identities are removed. A node the farm cannot
 * close stops it with ZKFARM_NODE_NOT_SECURED naming the node. Real ZooKeeper, in-process roles.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ErrorCodes, hasCode } from '../src/errors.js';
import { delayedPath } from '../src/farm/due-time.js';
import { ensureLayout } from '../src/farm/layout.js';
import { Master } from '../src/farm/master.js';
import {
  assignDir,
  assignPath,
  backlogBucketPath,
  backlogLanePath,
  PATHS,
  queuePath,
  statusBucket,
  statusBucketPath,
  statusPath,
  workerPath,
} from '../src/farm/protocol.js';
import { QueueAdmin } from '../src/farm/queue-admin.js';
import { Worker } from '../src/farm/worker.js';
import { type Acl, connect, digestAcl, isZkError, PERMS, type ZkClient } from '../src/zk/index.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const zk = useZooKeeper();

const AUTH = 'farm:s3cret';
const OTHER = 'mallory:pw';
const IP_OPEN: Acl[] = [{ perms: PERMS.all, id: { scheme: 'ip', id: '127.0.0.1' } }];
const silent = { debug() {}, info() {}, warn() {}, error() {} };

async function client(root: string, auth?: string): Promise<ZkClient> {
  const sup = connect({ connect: root, sessionTimeout: 20_000, ...(auth ? { auth } : {}) });
  cleanups.push(() => sup.stop());
  return (await sup.ready).client;
}

async function startMaster(root: string): Promise<Master> {
  const m = new Master({
    name: 'm1',
    connect: root,
    auth: AUTH,
    sessionTimeout: 6000,
    connectTimeout: 30_000,
  });
  cleanups.push(() => m.stop());
  await m.start();
  return m;
}

const noAuth = (e: unknown) => isZkError(e, 'NO_AUTH');

test('nodes squatted with an ip ACL or another identity beside the farm are closed, not taken for closed', async () => {
  const root = await zk.chroot('squat-schemes');
  const local = await client(root);
  // Anyone connecting from 127.0.0.1 may do anything with /tasks: that is open.
  await local.create(PATHS.tasks, null, 0, IP_OPEN);
  // Mallory shares /status with the farm identity: open to Mallory.
  await local.create(PATHS.status, null, 0, [...digestAcl(AUTH), ...digestAcl(OTHER)]);
  await startMaster(root);
  await assert.rejects(local.createSequential(`${PATHS.tasks}/task-`, '{"handler":"echo"}'), noAuth);
  const mallory = await client(root, OTHER);
  await assert.rejects(mallory.create(statusBucketPath(statusBucket('task-0000000001'))), noAuth);
  const farm = await client(root, AUTH);
  for (const p of [PATHS.tasks, PATHS.status])
    assert.deepEqual((await farm.getAcl(p)).acl, digestAcl(AUTH), `${p} carries the farm ACL alone`);
});

test('children made before the farm started are adopted: no forged result, no injected task, no impostor worker', async () => {
  const root = await zk.chroot('squat-children');
  const squatter = await client(root);
  for (const p of [PATHS.status, PATHS.assign, PATHS.workers]) await squatter.create(p);
  await squatter.create(statusBucketPath(statusBucket('task-0000000007')));
  await squatter.create(statusPath('task-0000000007'), '{"state":"succeeded","result":"real"}');
  await squatter.create(assignDir('w1'));
  await squatter.createEphemeral(workerPath('rogue'), '{"capacity":100,"prefetch":0,"paused":false}');
  await squatter.create(PATHS.schedules);
  await squatter.create(`${PATHS.schedules}/nightly`, '{"every":60000,"task":{"handler":"noop"}}');
  const delayedAt = delayedPath(Date.now() + 30 * 86_400_000, 'task-0000000009');
  await squatter.ensurePath(delayedAt, '{"handler":"noop","_zkfarm":{"attempts":0,"submittedAt":1}}');
  await startMaster(root);
  // Nor change a delayed task into his command.
  await assert.rejects(squatter.setData(delayedAt, '{"cmd":"id"}'), noAuth);
  // Nor change a schedule into one that runs his command, nor add a schedule of his own.
  await assert.rejects(
    squatter.setData(`${PATHS.schedules}/nightly`, '{"every":1000,"task":{"cmd":"id"}}'),
    noAuth,
  );
  await assert.rejects(
    squatter.create(`${PATHS.schedules}/mine`, '{"every":1000,"task":{"cmd":"id"}}'),
    noAuth,
  );
  // The stranger can no longer rewrite the result nor hand the worker a task of his own.
  await assert.rejects(squatter.setData(statusPath('task-0000000007'), '{"state":"failed"}'), noAuth);
  await assert.rejects(squatter.create(assignPath('w1', 'task-0000000042'), '{"cmd":"id"}'), noAuth);
  const farm = await client(root, AUTH);
  assert.equal(await farm.exists(workerPath('rogue')), null, 'a worker node of another identity is removed');
  assert.deepEqual((await farm.getAcl('/')).acl, digestAcl(AUTH), "the chroot's root is closed too");
});

test('a worker closes its own /assign/<name> (and what is in it) before it runs anything', async () => {
  const root = await zk.chroot('squat-assign');
  const squatter = await client(root);
  await squatter.create(PATHS.assign);
  await squatter.create(assignDir('w1'));
  const w = new Worker({
    name: 'w1',
    connect: root,
    auth: AUTH,
    sessionTimeout: 6000,
    workdir: '/tmp/zkfarm-acl-layout',
  });
  cleanups.push(() => w.stop({ drain: false }));
  await w.start();
  await assert.rejects(squatter.create(assignPath('w1', 'task-0000000042'), '{"cmd":"id"}'), noAuth);
});

test('a node the farm identity cannot close stops the role with ZKFARM_NODE_NOT_SECURED naming it', async () => {
  const root = await zk.chroot('squat-foreign');
  const mallory = await client(root, OTHER);
  await mallory.create(PATHS.tasks); // Mallory's ACL alone: the farm may not change it
  const m = new Master({
    name: 'm1',
    connect: root,
    auth: AUTH,
    sessionTimeout: 6000,
    connectTimeout: 30_000,
  });
  cleanups.push(() => m.stop());
  const started = await Promise.race([
    m.start().then(
      () => 'started',
      (e: unknown) => e,
    ),
    new Promise((r) => setTimeout(() => r('still starting after 30 s'), 30_000).unref()),
  ]);
  assert.ok(
    hasCode(started, ErrorCodes.NODE_NOT_SECURED),
    `expected NODE_NOT_SECURED, got ${String(started)}`,
  );
  assert.match((started as Error).message, /\/tasks/);
});

test('the sweep is idempotent: a second pass over a closed farm changes nothing', async () => {
  const root = await zk.chroot('sweep-twice');
  const m = await startMaster(root);
  const session = m.sessionSupervisor!.session!;
  await session.client.ensurePath(statusBucketPath('000000'));
  for (let i = 0; i < 50; i++)
    await session.client.create(statusPath(`task-${String(i).padStart(10, '0')}`), '{}');
  const report = await ensureLayout(session, { auth: AUTH, chrooted: true, deep: true, log: silent });
  assert.deepEqual(report.adopted, []);
  assert.deepEqual(report.removed, []);
  assert.ok(report.checked >= 55, `checked ${report.checked} nodes`);
});

test("a queue's controls and its backlog are closed: made open before the farm, adopted; QueueAdmin writes with the farm's ACL", async () => {
  const root = await zk.chroot('squat-queues');
  const squatter = await client(root);
  const shelved = `${backlogBucketPath('q', 0, '000000')}/task-0000000001`;
  await squatter.ensurePath(backlogBucketPath('q', 0, '000000'));
  await squatter.create(shelved, '{"cmd":"id"}');
  await startMaster(root);
  await assert.rejects(squatter.setData(queuePath('q'), '{"paused":true}'), noAuth);
  await assert.rejects(
    squatter.create(`${backlogBucketPath('q', 0, '000000')}/task-0000000002`, '{}'),
    noAuth,
  );
  await assert.rejects(squatter.setData(shelved, '{"cmd":"rm -rf /"}'), noAuth);
  const farm = await client(root, AUTH);
  for (const p of [queuePath('q'), backlogLanePath('q', 0), shelved])
    assert.deepEqual((await farm.getAcl(p)).acl, digestAcl(AUTH), `${p} carries the farm's ACL alone`);
  await new QueueAdmin(farm).pause('fresh');
  assert.deepEqual((await farm.getAcl(queuePath('fresh'))).acl, digestAcl(AUTH));
});
