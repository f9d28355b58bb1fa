/**
 * Services on a closed farm (`auth`): every node of a service, persistent or ephemeral (/services,
 * /services/<name> and its status, instances, running fences and endpoints, /service-placements and
 * each worker's placements), carries the farm identity's ACL alone; service nodes someone made before
 * the farm started are adopted (src/farm/layout.ts), so nobody else can define a service, hand a
 * worker a placement of his own, or publish an endpoint. Real ZooKeeper, in-process roles.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HandlerContext } from '../src/exec/index.js';
import { createService, SERVICE_PATHS } from '../src/services/index.js';
import { digestAcl, isZkError, type ZkClient } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { waitHealthy } from './helpers/services.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-svc-acl-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });
const AUTH = 'farm:s3cret';

async function serve(_input: unknown, ctx: HandlerContext): Promise<string> {
  await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
  return 'stopped';
}

/** Every node under `path`, `path` included. */
async function tree(c: ZkClient, path: string): Promise<string[]> {
  const kids = await c.getChildren(path).catch(() => [] as string[]);
  const below = await Promise.all(kids.map((k) => tree(c, `${path}/${k}`)));
  return [path, ...below.flat()];
}

const noAuth = (e: unknown) => isZkError(e, 'NO_AUTH');

test('every service node carries the farm ACL; service nodes squatted before the farm started are adopted', async () => {
  const root = await zk.chroot('services-acl');
  const squatter = await farm.admin(root);
  await squatter.create(SERVICE_PATHS.services);
  await squatter.create(SERVICE_PATHS.placements);
  await squatter.create(`${SERVICE_PATHS.placements}/w1`);
  // A fence of another identity under a service of its own: it would keep instance 0 from ever starting.
  await squatter.ensurePath('/services/old/running');
  await squatter.createEphemeral('/services/old/running/0', '{}');

  await farm.master(root, 'm1', { auth: AUTH });
  await farm.worker(root, 'w1', { auth: AUTH, handlers: { serve } });
  const client = await farm.admin(root, { auth: AUTH });
  await createService(client, {
    name: 'web',
    handler: 'serve',
    instances: 2,
    health: { type: 'tcp', port: Number(root.split('/')[0]!.split(':')[1]), intervalMs: 200 },
  });
  const s = await waitHealthy(client, 'web', 2, 30_000);
  assert.ok(s.instances.every((i) => i.endpoint && i.run));

  const nodes = [
    ...(await tree(client, SERVICE_PATHS.services)),
    ...(await tree(client, SERVICE_PATHS.placements)),
  ];
  for (const dir of ['instances/0', 'running/0', 'running/1', 'endpoints/0', 'endpoints/1'])
    assert.ok(nodes.includes(`/services/web/${dir}`), `${dir} is among the nodes checked`);
  assert.ok(nodes.includes('/service-placements/w1/web.0'));
  const open: string[] = [];
  for (const p of nodes) {
    const { acl } = await client.getAcl(p);
    if (JSON.stringify(acl) !== JSON.stringify(digestAcl(AUTH))) open.push(`${p}: ${JSON.stringify(acl)}`);
  }
  assert.deepEqual(open, [], 'every service node carries the farm ACL alone');
  assert.ok(nodes.includes('/services/old/running'), 'the squatted service is among them');
  assert.equal(
    await client.exists('/services/old/running/0'),
    null,
    'a fence of another identity is removed',
  );

  // Nobody else can define a service, place an instance, or publish an endpoint.
  await assert.rejects(squatter.create('/services/evil', '{}'), noAuth);
  await assert.rejects(squatter.create('/service-placements/w1/evil.0', '{}'), noAuth);
  await assert.rejects(squatter.create('/service-placements/w9'), noAuth);
  await assert.rejects(squatter.createEphemeral('/services/web/endpoints/7', '{}'), noAuth);
  await assert.rejects(squatter.getData('/services/web'), noAuth);
});
