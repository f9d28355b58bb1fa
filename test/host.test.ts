/**
 * The host in-process: role threads with their own sessions on a real ZooKeeper, Comlink control,
 * crash/expiry/restart, scaling, drain.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { BroadcastChannel, Worker as Thread } from 'node:worker_threads';
import { allResultIds } from '../src/farm/status-store.js';
import { Submitter } from '../src/farm/submitter.js';
import {
  createLogger,
  Host,
  type HostOptions,
  MASTER_RESOURCE_LIMITS,
  ROLE_RESOURCE_LIMITS,
} from '../src/host/index.js';
import type { RoleSpec } from '../src/host/types.js';
import { connect } from '../src/zk/index.js';
import { FaultInjector } from './helpers/faults.js';
import { checkInvariants } from './helpers/invariants.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-host-test-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));

/** Log lines of the host, kept for assertions. */
const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
    cb();
  },
});

function roles(masters: number, workers: number, capacity = 4): RoleSpec[] {
  return [
    ...Array.from({ length: masters }, (_, i) => ({ kind: 'master' as const, name: `m${i + 1}` })),
    ...Array.from({ length: workers }, (_, i) => ({ kind: 'worker' as const, name: `w${i + 1}`, capacity })),
  ];
}

/** A host whose roles a test can crash or expire (`faults`). */
async function startHost(
  root: string,
  masters: number,
  workers: number,
  extra: Pick<HostOptions, 'restart' | 'roleResourceLimits'> = {},
) {
  const faults = new FaultInjector();
  const host = await Host.start(
    { connect: root, sessionTimeout: 4000, workdir, roles: roles(masters, workers) },
    {
      logger: createLogger({ level: 'info', pretty: false, destination: sink }),
      restartDelayMs: 200,
      spawn: faults.spawn,
      ...extra,
    },
  );
  cleanups.push(() => host.stop({ drain: false }));
  return { host, faults };
}

async function submitter(root: string) {
  const s = await Submitter.open({ connect: root });
  cleanups.push(() => s.close());
  return s;
}

async function admin(root: string) {
  const sup = connect({ connect: root });
  cleanups.push(() => sup.stop());
  return (await sup.ready).client;
}

async function leaderName(host: Host): Promise<string | undefined> {
  return (await host.roles()).find((r) => r.kind === 'master' && r.leader)?.name;
}

test('2 masters and 4 workers in threads: tasks flow; each role has its own session; logs name their role', async () => {
  const root = await zk.chroot('host-flow');
  const { host } = await startHost(root, 2, 4);
  const infos = await host.roles();
  assert.equal(infos.length, 6);
  assert.equal(new Set(infos.map((i) => i.sessionId)).size, 6, 'six sessions');
  await until(async () => (await leaderName(host)) !== undefined, 10_000, 'a leader');
  assert.equal((await host.roles()).filter((r) => r.leader).length, 1, 'exactly one leader');

  const sub = await submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 200 }, (_, i) => ({ handler: 'echo', input: i })));
  await sub.waitForAll(ids, { timeoutMs: 60_000 });
  const report = await checkInvariants(await admin(root), ids, { workdir });
  assert.deepEqual(report.problems, []);
  // A worker counts a task once its completion multi is answered, a moment after the status exists.
  const succeeded = async () =>
    (await host.allStats()).filter((s) => s.kind === 'worker').reduce((n, s) => n + (s.succeeded ?? 0), 0);
  await until(async () => (await succeeded()) >= 200, 10_000, "the workers' counts to reach 200");
  assert.equal(await succeeded(), 200, 'the workers counted each task once');
  assert.ok(
    lines.some((l) => l['role'] === 'w1' && l['kind'] === 'worker'),
    'thread log lines reach the host writer, bound to their role',
  );
});

test('crashing the leading master and a busy worker: a standby leads, both restart, every task has one status', async () => {
  const root = await zk.chroot('host-crash');
  const { host, faults } = await startHost(root, 2, 4);
  await until(async () => (await leaderName(host)) !== undefined, 10_000, 'a leader');
  const first = (await leaderName(host))!;
  const sub = await submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 60 }, () => ({ handler: 'sleep', input: 200 })));
  await until(async () => ((await host.stats('w1')).running ?? 0) > 0, 10_000, 'w1 busy');
  await Promise.all([faults.crash(first), faults.crash('w1')]);
  ids.push(...(await sub.submitMany(Array.from({ length: 60 }, () => ({ handler: 'noop' })))));
  await until(
    async () => {
      const l = await leaderName(host);
      return l !== undefined && l !== first;
    },
    30_000,
    'the standby leads',
  );
  await sub.waitForAll(ids, { timeoutMs: 90_000 });
  await until(
    async () => (await host.roles()).every((r) => r.state === 'running'),
    30_000,
    'crashed roles restarted',
  );
  const report = await checkInvariants(await admin(root), ids, { workdir });
  assert.deepEqual(report.problems, []);
  assert.ok(
    lines.some((l) => String(l['msg']).includes(`role ${first} exited`)),
    'the restart is logged',
  );
  assert.ok(lines.some((l) => String(l['msg']).includes('role w1 restarted')));
});

test('expiring the sessions of the leader and of a worker: the roles carry on with new sessions, nothing lost', async () => {
  const root = await zk.chroot('host-expire');
  const { host, faults } = await startHost(root, 2, 2);
  await until(async () => (await leaderName(host)) !== undefined, 10_000, 'a leader');
  const leader = (await leaderName(host))!;
  const sub = await submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 40 }, () => ({ handler: 'sleep', input: 100 })));
  const before = (await host.info('w2')).sessionId;
  await Promise.all([faults.expireSession(leader), faults.expireSession('w2')]);
  ids.push(...(await sub.submitMany(Array.from({ length: 40 }, () => ({ handler: 'noop' })))));
  await sub.waitForAll(ids, { timeoutMs: 90_000 });
  const info = await host.info('w2');
  assert.notEqual(info.sessionId, before, 'w2 has a new session');
  assert.equal(info.sessions, 2);
  assert.deepEqual((await checkInvariants(await admin(root), ids, { workdir })).problems, []);
});

test('scaling workers 4 → 8 → 2 while tasks flow loses nothing', async () => {
  const root = await zk.chroot('host-scale');
  const { host } = await startHost(root, 1, 4);
  const sub = await submitter(root);
  const ids: string[] = [];
  const flow = (async () => {
    for (let i = 0; i < 15; i++) {
      ids.push(
        ...(await sub.submitMany(Array.from({ length: 20 }, () => ({ handler: 'sleep', input: 20 })))),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  assert.equal((await host.scaleWorkers(8, { prefix: 'w', capacity: 4 })).length, 8);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await host.scaleWorkers(2, { prefix: 'w', capacity: 4 })).length, 2);
  await flow;
  await sub.waitForAll(ids, { timeoutMs: 60_000 });
  assert.deepEqual((await checkInvariants(await admin(root), ids, { workdir })).problems, []);
  assert.equal((await host.roles()).filter((r) => r.kind === 'worker').length, 2);
});

test('error codes cross the thread boundary; calls to a dead thread reject instead of hanging', async () => {
  const root = await zk.chroot('host-errors');
  const { host, faults } = await startHost(root, 1, 1, { restart: false });
  await assert.rejects(
    host.pause('m1'),
    (e: unknown) => (e as { code?: string }).code === 'ZKFARM_INVALID_ARGUMENT',
  );
  await assert.rejects(
    host.addRole({ kind: 'worker', name: 'w1' }),
    (e: unknown) => (e as { code?: string }).code === 'ZKFARM_NAME_TAKEN',
  );
  await assert.rejects(
    host.addRole({ kind: 'worker', name: '../evil' }),
    (e: unknown) => (e as { code?: string }).code === 'ZKFARM_INVALID_NAME',
  );
  await faults.crash('w1');
  await assert.rejects(
    host.stats('w1'),
    (e: unknown) => (e as { code?: string }).code === 'ZKFARM_ROLE_EXITED',
  );
  const w1 = (await host.roles()).find((r) => r.name === 'w1');
  assert.equal(w1?.state, 'failed');
});

test('pause() stops a worker taking tasks and resume() brings it back; stop() drains running tasks', async () => {
  const root = await zk.chroot('host-pause');
  const { host } = await startHost(root, 1, 1);
  await host.pause('w1');
  assert.equal((await host.info('w1')).paused, true);
  const sub = await submitter(root);
  const ids = await sub.submitMany(Array.from({ length: 5 }, () => ({ handler: 'sleep', input: 300 })));
  await new Promise((r) => setTimeout(r, 600));
  const c = await admin(root);
  assert.equal((await c.getChildren('/tasks')).length, 5, 'a paused worker takes nothing');
  await host.resume('w1');
  await until(async () => ((await host.stats('w1')).running ?? 0) > 0, 10_000, 'running again');
  await host.stop({ drain: true, deadlineMs: 10_000 });
  const statuses = await allResultIds(c);
  const running = ids.filter((id) => statuses.includes(id));
  assert.ok(running.length >= 1, 'tasks that were running when stop() came finished with a status');
  const left = (await c.getChildren('/tasks')).length + running.length;
  assert.equal(left, 5, 'every other task is back in /tasks, none lost');
});

test('a started role thread has not loaded zod; the host still refuses a bad role option with its message', async () => {
  const probe = new URL('./fixtures/zod-probe.ts', import.meta.url);
  const tsx = import.meta.resolve('tsx/esm/api');
  // sourceThreads' bootstrap, with the probe imported before the entry.
  const spawn: HostOptions['spawn'] = (entry, options) =>
    new Thread(
      `(async () => { (await import(${JSON.stringify(tsx)})).register(); await import(${JSON.stringify(probe.href)}); await import(${JSON.stringify(entry.href)}); })();`,
      { ...options, eval: true },
    );
  const root = await zk.chroot('host-no-zod');
  const host = await Host.start(
    { connect: root, sessionTimeout: 4000, workdir, roles: roles(1, 1) },
    { logger: createLogger({ level: 'info', pretty: false, destination: sink }), spawn },
  );
  cleanups.push(() => host.stop({ drain: false }));
  const sub = await submitter(root);
  const id = await sub.submit({ handler: 'echo', input: 1 });
  const c = await admin(root);
  await until(async () => (await allResultIds(c)).includes(id), 10_000, 'the task ran');
  const channel = new BroadcastChannel('zkfarm-zod-probe');
  const answers: Array<{ threadId: number; zod: boolean }> = [];
  channel.onmessage = (m) => answers.push((m as { data: { threadId: number; zod: boolean } }).data);
  channel.postMessage('ask');
  await until(async () => answers.length === 2, 5000, 'both role threads answer');
  channel.close();
  assert.deepEqual(
    answers.map((a) => a.zod),
    [false, false],
    'zod loaded in a role thread',
  );
  await assert.rejects(host.addRole({ kind: 'worker', name: 'w9', capacity: 0 }), (e: unknown) => {
    const err = e as { code?: string; message: string };
    return (
      err.code === 'ZKFARM_INVALID_ARGUMENT' &&
      err.message === 'capacity: expected a whole number from 1 to 1024, got 0'
    );
  });
});

test('workers run with a small young generation (ROLE_RESOURCE_LIMITS), masters a larger one (MASTER_RESOURCE_LIMITS), unless the host says otherwise', async () => {
  // V8's heap size limit is its old generation plus its young generation: read inside each thread, it
  // shows the young generation V8 actually reserved, not just what the host asked for.
  const youngMb = (heap: { heapSizeLimit: number; resourceLimits: { maxOldGenerationSizeMb?: number } }) =>
    heap.heapSizeLimit / 2 ** 20 - heap.resourceLimits.maxOldGenerationSizeMb!;
  assert.equal(ROLE_RESOURCE_LIMITS.maxYoungGenerationSizeMb, 3);
  assert.equal(MASTER_RESOURCE_LIMITS.maxYoungGenerationSizeMb, 16);
  const small = await startHost(await zk.chroot('host-limits'), 1, 1);
  const m1 = await small.faults.heap('m1');
  const w1 = await small.faults.heap('w1');
  assert.equal(m1.resourceLimits.maxYoungGenerationSizeMb, 16);
  assert.equal(w1.resourceLimits.maxYoungGenerationSizeMb, 3);
  // V8 rounds a semi-space up to a power of two: 16 MB asked is 8 MB semi-spaces, 24 MB in all.
  assert.ok(youngMb(m1) >= 16, `m1: the young generation V8 reserved: ${youngMb(m1)} MB`);
  assert.equal(youngMb(w1), 3, 'w1: the young generation V8 reserved (MB)');
  // The host's option merges over both kinds' defaults.
  const same = await startHost(await zk.chroot('host-limits-same'), 1, 1, {
    roleResourceLimits: { maxYoungGenerationSizeMb: 3 },
  });
  for (const name of ['m1', 'w1']) assert.equal(youngMb(await same.faults.heap(name)), 3, name);
  // 0 leaves the field to V8 (whose young generation is far larger); other fields merge over the default.
  const own = await startHost(await zk.chroot('host-limits-own'), 0, 1, {
    roleResourceLimits: { maxYoungGenerationSizeMb: 0, maxOldGenerationSizeMb: 256 },
  });
  const heap = await own.faults.heap('w1');
  assert.equal(heap.resourceLimits.maxOldGenerationSizeMb, 256);
  assert.ok(youngMb(heap) > 3, `V8's own young generation: ${youngMb(heap)} MB`);
});
