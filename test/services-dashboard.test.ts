/**
 * The dashboard's services panel in a real browser (Chromium via playwright-core), against a real
 * ZooKeeper and an in-process farm: a service of 3 handler instances with a TCP health check shows each
 * instance, the worker and host it runs on, its health, and its restarts (one instance ends once and is
 * restarted); a service whose placement no worker matches shows that it cannot be placed and why, in
 * the panel, in /metrics and in `runtime service status`; once a worker that matches joins, it is
 * placed and healthy, and the reason goes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderService } from '../src/cli/service.js';
import type { HandlerContext } from '../src/exec/index.js';
import { createService, serviceState } from '../src/services/index.js';
import { startDashboard } from '../src/web/index.js';
import { openBrowser, watchErrors } from './helpers/browser.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-svc-dashboard-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

/** Runs until stopped; instance 1 of `web` ends once by itself first (a restart to show). */
let endedOnce = false;
async function serve(_input: unknown, ctx: HandlerContext): Promise<string> {
  if (ctx.taskId === 'service-web-1' && !endedOnce) {
    endedOnce = true;
    return 'ended on purpose';
  }
  await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
  return 'stopped';
}

test('the services panel in Chromium: instances, where, health, restarts, and why one cannot be placed', async () => {
  const context = await openBrowser(cleanups);
  const root = await zk.chroot('services-dashboard');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlers: { serve } });
  await farm.worker(root, 'w2', { handlers: { serve } });
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

  // batch: no worker serves the queue it asks for; the panel, /metrics and the CLI say so.
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
  await farm.worker(root, 'w3', { handlers: { serve }, queues: ['gpu'] });
  await until(async () => (await cells('batch.0'))[2] === 'healthy', 30_000, 'batch healthy', 200);
  const placed = await cells('batch.0');
  assert.match(placed[1]!, /^w3 on /);
  assert.doesNotMatch(placed[6]!, /cannot be placed/);
  assert.deepEqual((await serviceState(client, 'batch')).unplaced, []);
  await page.close();
  assert.deepEqual(errors, [], 'no errors in the page');
});
