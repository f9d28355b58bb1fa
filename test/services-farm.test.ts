/**
 * Services on in-process farms (roles in this process, one ZooKeeper for the file, a chroot per test):
 *
 * - handler services: an inline handler that runs until its signal aborts, placed only on the worker
 *   that has it, its instances told apart by their id; the worker's task timeout (`defaultTimeoutMs`)
 *   does not apply to it; scaling down aborts exactly the instance removed; stopping the worker aborts
 *   the rest and hands them over, so the leader moves them at once (not after the fence bound); and the
 *   /service-placements/<worker> of workers that are gone are pruned;
 * - the dashboard's services panel in a real browser (Chromium via playwright-core): a service of 3
 *   handler instances with a TCP health check shows each instance, the worker and host it runs on, its
 *   health, and its restarts (one instance ends once and is restarted); a service whose placement no
 *   worker matches shows that it cannot be placed and why, in the panel, in /metrics and in `runtime
 *   service status`; once a worker that matches joins, it is placed and healthy, and the reason goes;
 * - a closed farm (`auth`): every node of a service, persistent or ephemeral, carries the farm
 *   identity's ACL alone; service nodes someone made before the farm started are adopted
 *   (src/farm/layout.ts), so nobody else can define a service, hand a worker a placement of his own, or
 *   publish an endpoint;
 * - the fence: a worker silently partitioned from ZooKeeper (a blackholed link, its process alive and
 *   able to act) stops its instance before the leader can place a replacement elsewhere. Copies of each
 *   instance are counted from /proc throughout: never two of one instance at once. When the link heals,
 *   the worker finds its session gone and starts nothing (its instance has moved).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderService } from '../src/cli/service.js';
import type { HandlerContext } from '../src/exec/index.js';
import { createService, SERVICE_PATHS, scaleService, serviceState } from '../src/services/index.js';
import { startDashboard } from '../src/web/index.js';
import { digestAcl, isZkError, type ZkClient } from '../src/zk/index.js';
import { openBrowser, watchErrors } from './helpers/browser.js';
import { useCleanups } from './helpers/cleanups.js';
import { captureLogger, useFarm } from './helpers/farm.js';
import { copiesByInstance, serverCmd, waitHealthy } from './helpers/services.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-svc-farm-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

/** A handler service's program: runs until its signal aborts. */
async function serveUntilStopped(_input: unknown, ctx: HandlerContext): Promise<string> {
  await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
  return 'stopped';
}

test('a handler service runs until stopped (no task timeout), only where the handler is; scale down; a clean stop hands it over; gone workers are pruned', async () => {
  const root = await zk.chroot('services-handler');
  const running = new Map<string, AbortSignal>();
  const serve = async (input: unknown, ctx: HandlerContext) => {
    assert.deepEqual(input, { greeting: 'hi' });
    running.set(ctx.taskId, ctx.signal);
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    running.delete(ctx.taskId);
    return 'stopped';
  };
  const master = captureLogger();
  await farm.master(root, 'm1', { logger: master });
  const plain = await farm.worker(root, 'plain');
  // A task timeout far shorter than the test: a service is not a task and runs until it is stopped.
  const TASK_TIMEOUT = 300;
  const w = await farm.worker(root, 'serving', { handlers: { serve }, defaultTimeoutMs: TASK_TIMEOUT });
  const client = await farm.admin(root);
  await createService(client, {
    name: 'svc',
    handler: 'serve',
    input: { greeting: 'hi' },
    instances: 2,
    stopGraceMs: 10_000,
  });
  await until(async () => (await serviceState(client, 'svc')).healthy === 2, 30_000, '2 healthy');
  assert.deepEqual([...running.keys()].sort(), ['service-svc-0', 'service-svc-1']);
  const signals = [...running.values()];
  await new Promise((r) => setTimeout(r, 4 * TASK_TIMEOUT));
  assert.ok(
    signals.every((sig) => !sig.aborted),
    `the task timeout aborted a service: ${signals.map((sig) => String(sig.reason))}`,
  );
  assert.equal((await serviceState(client, 'svc')).restarts, 0, 'no instance was restarted');
  const s = await serviceState(client, 'svc');
  assert.ok(
    s.instances.every((i) => i.run?.worker === 'serving'),
    'only on the worker with the handler',
  );

  await scaleService(client, 'svc', 1);
  await until(() => running.size === 1, 30_000, 'one handler aborted');
  assert.deepEqual([...running.keys()], ['service-svc-0']);
  await until(
    async () => (await serviceState(client, 'svc')).instances.length === 1,
    30_000,
    'instance 1 gone',
  );

  // A clean stop hands the instance over: the leader moves it as soon as the worker is gone, not after
  // the fence bound (a stop grace of 10 s against T = 4 s would make that 9 s: runner.ts).
  await farm.worker(root, 'spare', { handlers: { serve } });
  const first = running.get('service-svc-0')!;
  await w.stop();
  assert.ok(first.aborted, 'stopping the worker aborted the handler');
  const moved = () =>
    until(
      async () => {
        const now = await serviceState(client, 'svc');
        return now.healthy === 1 && now.instances[0]?.run?.worker === 'spare';
      },
      30_000,
      'instance 0 healthy on the spare worker',
      50,
    );
  await moved();
  assert.equal(
    master.count('info', /worker serving stopped and handed it over/),
    1,
    `moved as handed over, not as gone: ${master.lines.filter((l) => /placed/.test(l.msg)).map((l) => l.msg)}`,
  );

  // The placements of workers that are gone are pruned: one that ran an instance, one that never did.
  // A worker makes its node as it starts, a moment before it registers (`starting`, never registered
  // here): the pass that a worker's stop brings leaves it alone; it goes once it stayed away 5 s.
  await client.create(`${SERVICE_PATHS.placements}/starting`);
  await plain.stop();
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(await client.exists(`${SERVICE_PATHS.placements}/starting`), 'a starting worker keeps its node');
  const left = async () => (await client.getChildren(SERVICE_PATHS.placements)).sort().join();
  await until(async () => (await left()) === 'spare', 30_000, 'only the live worker keeps its placements');
  const pruned = master.lines.filter((l) => l.msg === 'placements of gone workers pruned');
  assert.deepEqual(pruned.flatMap((l) => l.obj['workers'] as string[]).sort(), [
    'plain',
    'serving',
    'starting',
  ]);
});

/** Runs until stopped; instance 1 of `web` ends once by itself first (a restart to show). */
let endedOnce = false;
async function serveOrEndOnce(input: unknown, ctx: HandlerContext): Promise<string> {
  if (ctx.taskId === 'service-web-1' && !endedOnce) {
    endedOnce = true;
    return 'ended on purpose';
  }
  return serveUntilStopped(input, ctx);
}

test('the services panel in Chromium: instances, where, health, restarts, and why one cannot be placed', async () => {
  const context = await openBrowser(cleanups);
  const root = await zk.chroot('services-dashboard');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlers: { serve: serveOrEndOnce } });
  await farm.worker(root, 'w2', { handlers: { serve: serveOrEndOnce } });
  const client = await farm.admin(root);
  const dash = await startDashboard({ http: '127.0.0.1:0', connect: root });
  cleanups.push(() => dash.close());
  // The health check connects to the dashboard's port: something that surely listens.
  const health = { type: 'tcp' as const, port: dash.address.port, intervalMs: 200 };
  await createService(client, {
    name: 'web',
    handler: 'serve',
    instances: 3,
    health,
    restart: { initialDelayMs: 100 },
  });
  await createService(client, {
    name: 'batch',
    handler: 'serve',
    placement: { queues: ['gpu'] },
    health,
  });

  const page = await context.newPage();
  const errors = watchErrors(page);
  page.setDefaultTimeout(30_000);
  await page.goto(dash.url);
  const row = (key: string) => page.locator(`#services tr[data-instance="${key}"]`);
  const cells = async (key: string) => row(key).locator('td').allTextContents();
  await page.locator('#services-panel').waitFor({ state: 'visible' });

  // web: three healthy instances, each on a worker of this host; instance 1 restarted once.
  await page.waitForFunction(
    () =>
      Array.from(document.querySelectorAll('#services tr[data-instance^="web."] td.state')).filter(
        (td) => td.textContent === 'healthy',
      ).length === 3,
  );
  await until(async () => (await cells('web.1'))[3] === '1', 30_000, 'the panel shows the restart', 200);
  for (const n of [0, 1, 2]) {
    // The run's state and its endpoint are two writes: a poll between them shows healthy without it.
    await until(async () => (await cells(`web.${n}`))[4] !== '–', 10_000, `web.${n}'s endpoint`, 200);
    const [num, where, state, restarts, endpoint] = await cells(`web.${n}`);
    assert.equal(num, String(n));
    assert.match(where!, new RegExp(`^w[12] on ${hostname()}$`));
    assert.equal(state, 'healthy');
    assert.equal(restarts, n === 1 ? '1' : '0');
    assert.equal(endpoint, 'yes', 'a healthy instance has an endpoint');
  }
  assert.match(
    (await page.locator('#services tr[data-service="web"]').textContent()) ?? '',
    /^web: 3\/3 healthy, 3 running, 1 restarts, revision 1$/,
  );

  // batch: no worker serves the queue it asks for; the panel, /metrics and the CLI say so (its row comes
  // with the leader's pass that finds it unplaced, which the web rows above do not wait for).
  await until(async () => (await cells('batch.0'))[2] === 'unplaced', 30_000, 'batch shown unplaced', 200);
  const [, , state, , , , note] = await cells('batch.0');
  assert.equal(state, 'unplaced');
  assert.equal(note, 'cannot be placed: no live worker serves placement.queues (gpu)');
  assert.match(
    (await page.locator('#services tr[data-service="batch"]').textContent()) ?? '',
    /0\/1 healthy.* · 1 cannot be placed$/,
  );
  const metrics = await (await fetch(new URL('metrics', dash.url))).text();
  assert.match(metrics, /^zkfarm_service_instances_unplaced\{service="batch",reason="no-match"\} 1$/m);
  assert.doesNotMatch(metrics, /zkfarm_service_instances_unplaced\{service="web"/);
  const status = renderService(await serviceState(client, 'batch')).join('\n');
  assert.match(status, /unplaced {2}instance 0 cannot be placed \(no-match\): no live worker serves/);
  assert.match(status, /^0 +- +- +unplaced .*cannot be placed: no live worker serves placement\.queues/m);

  // A worker that serves the queue joins: batch is placed and healthy, and the reason goes.
  await farm.worker(root, 'w3', { handlers: { serve: serveOrEndOnce }, queues: ['gpu'] });
  await until(async () => (await cells('batch.0'))[2] === 'healthy', 30_000, 'batch healthy', 200);
  const placed = await cells('batch.0');
  assert.match(placed[1]!, /^w3 on /);
  assert.doesNotMatch(placed[6]!, /cannot be placed/);
  assert.deepEqual((await serviceState(client, 'batch')).unplaced, []);
  await page.close();
  assert.deepEqual(errors, [], 'no errors in the page');
});

const AUTH = 'farm:s3cret';

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
  await farm.worker(root, 'w1', { auth: AUTH, handlers: { serve: serveUntilStopped } });
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

test('a partitioned worker stops its instance before the replacement starts: never two copies of one instance', async () => {
  const root = await zk.chroot('services-partition');
  const { proxy, connect: cutOff } = await farm.proxied(root);
  await farm.master(root, 'm1');
  const a = await farm.worker(cutOff, 'a', { allowShell: true });
  await farm.worker(root, 'b', { allowShell: true });
  const client = await farm.admin(root);
  const tag = `svc-partition-${process.pid}`;
  // A stop grace of 3 s against T = 4 s: the fence starts stopping at T/2 of silence and the leader
  // waits what is left of the bound after the expiry (runner.ts).
  // The program ignores SIGTERM, so each stop takes the whole grace.
  await createService(client, {
    name: 'bg',
    cmd: serverCmd(tag),
    instances: 2,
    stopGraceMs: 3000,
    env: { IGNORE_TERM: '1' },
  });
  const before = await waitHealthy(client, 'bg', 2, 60_000);
  assert.ok(
    before.instances.some((i) => i.run?.worker === 'a'),
    'an instance on the worker to cut off',
  );

  let worst = 0;
  let probing = true;
  const probe = (async () => {
    while (probing) {
      const counts = new Map<number, number>();
      for (const c of copiesByInstance(tag)) counts.set(c.instance, (counts.get(c.instance) ?? 0) + 1);
      worst = Math.max(worst, ...counts.values());
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  cleanups.push(async () => {
    probing = false;
    await probe;
  });

  proxy.blackhole(true);
  await waitHealthy(client, 'bg', 2, 60_000, (s) => s.instances.every((i) => i.run?.worker === 'b'));
  proxy.blackhole(false);
  // The healed worker's session has expired: it gets a new one and runs nothing (its instance moved).
  await until(() => (a.sessionSupervisor?.sessionCount ?? 0) >= 2, 30_000, 'worker a on a new session');
  await new Promise((r) => setTimeout(r, 2000));
  probing = false;
  await probe;
  assert.equal(worst, 1, 'never two copies of one instance');
  assert.equal(copiesByInstance(tag).length, 2);
  assert.ok((await serviceState(client, 'bg')).instances.every((i) => i.run?.worker === 'b'));
});
