/**
 * A handler service (no shell): an inline handler that runs until its signal aborts, placed only on
 * the worker that has it, its instances told apart by their id; the worker's task timeout
 * (`defaultTimeoutMs`) does not apply to it; scaling down aborts exactly the instance removed;
 * stopping the worker aborts the rest and hands them over, so the leader moves them at once (not
 * after the fence bound); and the /service-placements/<worker> of workers that are gone are pruned.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { HandlerContext } from '../src/exec/index.js';
import { createService, SERVICE_PATHS, scaleService, serviceState } from '../src/services/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { captureLogger, useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-svc-handler-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

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
  await plain.stop();
  const left = async () => (await client.getChildren(SERVICE_PATHS.placements)).sort().join();
  await until(async () => (await left()) === 'spare', 30_000, 'only the live worker keeps its placements');
});
