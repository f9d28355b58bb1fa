/**
 * Rolling updates on two `runtime` hosts: a change of the service's settings reaches every instance one
 * at a time, with at least 2 of 3 answering throughout (probed all along); a bad update (the new
 * version crashes at once) stops after its first instance, says why in the service's status, and
 * leaves the other 2 running the old version.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createService, serviceState, updateService } from '../src/services/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { ask, freePorts, serverCmd, twoHosts, waitHealthy } from './helpers/services.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();

test('a rolling update keeps 2 of 3 answering; a bad update stops after one instance and leaves 2 on the old version', async () => {
  const root = await zk.chroot('services-update');
  const { client, tag } = await twoHosts(cleanups, root, 4000, 'update');
  const base = await freePorts(3);
  await createService(client, {
    name: 'web',
    cmd: serverCmd(tag),
    instances: 3,
    ports: { http: base },
    env: { VERSION: '1' },
    health: {
      type: 'http',
      url: 'http://127.0.0.1:{port}/health',
      intervalMs: 200,
      timeoutMs: 1000,
      startPeriodMs: 3000,
    },
    restart: { initialDelayMs: 50, maxDelayMs: 200, maxRestarts: 2 },
    stopGraceMs: 1000,
  });
  await waitHealthy(client, 'web', 3, 60_000);

  const versions = async () => Promise.all([0, 1, 2].map(async (n) => (await ask(base + n))?.version));
  let fewest = 3;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      fewest = Math.min(fewest, (await versions()).filter((v) => v !== undefined).length);
      await new Promise((r) => setTimeout(r, 30));
    }
  })();
  cleanups.push(async () => {
    probing = false;
    await probe;
  });

  const v2 = await updateService(client, 'web', { env: { VERSION: '2' } });
  assert.equal(v2.revision, 2);
  await until(async () => (await versions()).every((v) => v === '2'), 90_000, 'every instance on version 2');
  await until(
    async () => (await serviceState(client, 'web')).status?.rollout?.state === 'done',
    30_000,
    'the rollout done',
  );
  assert.ok(fewest >= 2, `at least 2 of 3 answered throughout the update; once only ${fewest}`);

  // A bad update: version 3 crashes at once.
  probing = false;
  await probe;
  await updateService(client, 'web', { env: { VERSION: '3', CRASH_ALL: '1' } });
  await until(
    async () => (await serviceState(client, 'web')).status?.rollout?.state === 'failed',
    60_000,
    'the bad rollout failed',
  );
  const s = await serviceState(client, 'web');
  assert.equal(s.status!.rollout!.revision, 3);
  assert.match(s.status!.rollout!.reason ?? '', /revision 3 failed/);
  const left = (await versions()).filter((v) => v !== undefined);
  assert.deepEqual(left, ['2', '2'], 'two instances still answer, on version 2');
  assert.equal(
    s.instances.filter((i) => i.placement?.revision === 3).length,
    1,
    'only one instance tried version 3',
  );
  // It stays stopped: nothing else is updated later.
  await new Promise((r) => setTimeout(r, 2000));
  assert.deepEqual(
    (await versions()).filter((v) => v !== undefined),
    ['2', '2'],
  );
  assert.equal(
    (await serviceState(client, 'web')).instances.filter((i) => i.placement?.revision === 3).length,
    1,
  );

  // A fixed update goes on from there: every instance ends on version 4.
  await updateService(client, 'web', { env: { VERSION: '4' } });
  await until(async () => (await versions()).every((v) => v === '4'), 90_000, 'every instance on version 4');
});
