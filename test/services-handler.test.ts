/**
 * A handler service (no shell): an inline handler that runs until its signal aborts, placed only on
 * the worker that has it, its instances told apart by their id; the worker's task timeout
 * (`defaultTimeoutMs`) does not apply to it; scaling down aborts exactly the instance removed, and
 * stopping the worker aborts the rest.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HandlerContext } from '../src/exec/index.js';
import { createService, scaleService, serviceState } from '../src/services/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-svc-handler-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

test('a handler service runs until its signal aborts, only where the handler is, and stops on scale down', async () => {
  const root = await zk.chroot('services-handler');
  const running = new Map<string, AbortSignal>();
  const serve = async (input: unknown, ctx: HandlerContext) => {
    assert.deepEqual(input, { greeting: 'hi' });
    running.set(ctx.taskId, ctx.signal);
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    running.delete(ctx.taskId);
    return 'stopped';
  };
  await farm.master(root, 'm1');
  await farm.worker(root, 'plain');
  // A task timeout far shorter than the test: a service is not a task and runs until it is stopped.
  const TASK_TIMEOUT = 300;
  const w = await farm.worker(root, 'serving', { handlers: { serve }, defaultTimeoutMs: TASK_TIMEOUT });
  const client = await farm.admin(root);
  await createService(client, {
    name: 'svc',
    handler: 'serve',
    input: { greeting: 'hi' },
    instances: 2,
    stopGraceMs: 500,
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

  await w.stop();
  assert.equal(running.size, 0, 'stopping the worker aborted the handler');
});
