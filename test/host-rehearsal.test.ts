/**
 * The host's rehearsal (src/host/rehearsal.ts) against a real ZooKeeper: role threads run their roles in
 * a throwaway farm first, then the real roles start in the same threads; nothing of the throwaway farm
 * is left, nothing of it reaches the real one, and a rehearsal that goes wrong never stops the farm.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { allResultIds } from '../src/farm/status-store.js';
import { Submitter } from '../src/farm/submitter.js';
import { createLogger, Host } from '../src/host/index.js';
import type { RoleSpec } from '../src/host/types.js';
import { connect } from '../src/zk/index.js';
import { useCleanups } from './helpers/cleanups.js';
import { FaultInjector } from './helpers/faults.js';
import { checkInvariants } from './helpers/invariants.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const cleanups = useCleanups();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-rehearsal-test-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));

const quiet = new Writable({ write: (_c, _e, cb) => cb() });

const ROLES: RoleSpec[] = [
  { kind: 'master', name: 'm1' },
  { kind: 'master', name: 'm2' },
  { kind: 'worker', name: 'w1', capacity: 4 },
  { kind: 'worker', name: 'w2', capacity: 4 },
  { kind: 'worker', name: 'w3', capacity: 4 },
];

function newHost(root: string, faults: FaultInjector, sessionTimeout = 4000): Host {
  const host = Host.create(
    { connect: root, sessionTimeout, workdir },
    { logger: createLogger({ level: 'info', pretty: false, destination: quiet }), spawn: faults.spawn },
  );
  cleanups.push(() => host.stop({ drain: false }));
  return host;
}

async function admin(connectString: string) {
  const sup = connect({ connect: connectString });
  cleanups.push(() => sup.stop());
  return (await sup.ready).client;
}

/** The real farm moves tasks, each with one status, and its /status holds nothing else. */
async function realFarmWorks(root: string): Promise<void> {
  const sub = await Submitter.open({ connect: root });
  cleanups.push(() => sub.close());
  const ids = await sub.submitMany(Array.from({ length: 50 }, (_, i) => ({ handler: 'echo', input: i })));
  await sub.waitForAll(ids, { timeoutMs: 60_000 });
  const client = await admin(root);
  assert.deepEqual((await checkInvariants(client, ids, { workdir })).problems, []);
  assert.deepEqual(
    (await allResultIds(client)).sort(),
    [...ids].sort(),
    'no rehearsal result in the real farm',
  );
}

/** After a rehearsal a role thread died in: nothing of it left, every role running (the dead one in a new thread), the farm works. */
async function startsWhole(
  host: Host,
  servers: Awaited<ReturnType<typeof admin>>,
  throwaway: string,
  root: string,
): Promise<void> {
  assert.equal(await servers.exists(throwaway), null, 'the throwaway root is removed');
  await until(
    async () => (await host.roles()).every((r) => r.state === 'running'),
    20_000,
    'every role running, w2 in a new thread',
  );
  await realFarmWorks(root);
}

test('a rehearsal runs its tasks, leaves nothing behind, and its leader leads the real farm', async () => {
  const root = await zk.chroot('rehearsal');
  const throwaway = `/rehearsal-${process.pid}-a`;
  const host = newHost(root, new FaultInjector());
  const report = await host.startRoles(ROLES, { rehearsal: { tasks: 600, root: throwaway } });
  assert.ok(report, 'a report');
  assert.equal(report.error, undefined);
  assert.equal(report.tasks, 600);
  assert.ok(report.leader === 'm1' || report.leader === 'm2', `a master led it: ${report.leader}`);
  const servers = await admin(zk.server.connectString);
  assert.equal(await servers.exists(throwaway), null, 'the throwaway root is removed');
  assert.equal(existsSync(join(workdir, '.rehearsal')), false, 'its workdir is removed');
  const infos = await host.roles();
  assert.deepEqual(infos.map((i) => i.state).sort(), Array(5).fill('running'));
  await until(async () => (await host.roles()).some((r) => r.leader), 10_000, 'a leader');
  assert.equal((await host.roles()).find((r) => r.leader)?.name, report.leader, 'started first, it leads');
  const workerStats = (await host.allStats()).filter((s) => s.kind === 'worker');
  assert.equal(
    workerStats.reduce((n, s) => n + (s.succeeded ?? 0), 0),
    0,
    'no rehearsal count carries over',
  );
  await realFarmWorks(root);
});

test('a worker thread that dies before its rehearsal role answers is left out; the rehearsal goes on', async () => {
  const root = await zk.chroot('rehearsal-early-crash');
  const throwaway = `/rehearsal-${process.pid}-b`;
  const faults = new FaultInjector();
  const host = newHost(root, faults);
  const servers = await admin(zk.server.connectString);
  const started = host.startRoles(ROLES, { rehearsal: { tasks: 3000, root: throwaway } });
  await faults.crash('w2'); // spawned by startRoles, not yet answering its start
  const report = await started;
  assert.equal(report?.error, undefined, 'the others rehearse without it');
  assert.equal(report?.tasks, 3000);
  await startsWhole(host, servers, throwaway, root);
});

test('a worker thread that dies with rehearsal tasks in hand: the rehearsal says how far it got; the farm starts whole', async () => {
  const root = await zk.chroot('rehearsal-crash');
  const throwaway = `/rehearsal-${process.pid}-c`;
  const faults = new FaultInjector();
  // Its session outlives the rehearsal: the tasks w2 held never finish there.
  const host = newHost(root, faults, 30_000);
  const servers = await admin(zk.server.connectString);
  const started = host.startRoles(ROLES, { rehearsal: { tasks: 100_000, budgetMs: 4000, root: throwaway } });
  await until(
    async () => ((await servers.exists(`${throwaway}/status`))?.numChildren ?? 0) > 0,
    30_000,
    'the rehearsal farm finishing tasks',
  );
  await faults.crash('w2');
  const report = await started;
  assert.match(report?.error ?? '', /stopped finishing tasks/);
  assert.ok(report && report.tasks > 0, `the others went on, and it is counted: ${JSON.stringify(report)}`);
  await startsWhole(host, servers, throwaway, root);
});

test('a rehearsal that cannot run is reported, and the roles start without it', async () => {
  const root = await zk.chroot('rehearsal-bad');
  const host = newHost(root, new FaultInjector());
  // Not a path: the throwaway farm's roles cannot connect.
  const report = await host.startRoles(ROLES, { rehearsal: { tasks: 100, root: 'no-slash' } });
  assert.ok(report?.error, 'the failure is reported');
  assert.equal(report.tasks, 0);
  assert.deepEqual((await host.roles()).map((i) => i.state).sort(), Array(5).fill('running'));
  await realFarmWorks(root);
});

test('a role with bad options is refused before any rehearsal, and no thread is left behind', async () => {
  const root = await zk.chroot('rehearsal-refused');
  const host = newHost(root, new FaultInjector());
  await assert.rejects(
    host.startRoles([...ROLES, { kind: 'worker', name: 'w4', capacity: 0 }], { rehearsal: { tasks: 100 } }),
    /capacity/,
  );
  assert.equal(host.size, 0, 'no role registered');
  await host.startRoles(ROLES);
  await realFarmWorks(root);
});

test('a rehearsal interrupted during its task phase ends it at once; the real roles start, and the farm works', async () => {
  const root = await zk.chroot('rehearsal-interrupted');
  const throwaway = `/rehearsal-${process.pid}-d`;
  const host = newHost(root, new FaultInjector());
  const servers = await admin(zk.server.connectString);
  const interrupt = new AbortController();
  // Far more tasks and time than the test waits for: only the interrupt can end it soon.
  const started = host.startRoles(ROLES, {
    rehearsal: { tasks: 10_000_000, budgetMs: 3_600_000, root: throwaway, interrupt: interrupt.signal },
  });
  await until(
    async () => ((await servers.exists(`${throwaway}/status`))?.numChildren ?? 0) > 0,
    30_000,
    'the rehearsal farm finishing tasks',
  );
  interrupt.abort();
  const report = await started;
  assert.equal(report?.error, undefined);
  assert.equal(report?.interrupted, true);
  assert.ok(report.tasks < 100_000, `it stopped where it was: ${report.tasks} tasks`);
  assert.ok(report.leader, 'its masters had started');
  await startsWhole(host, servers, throwaway, root);
});

test('a rehearsal interrupted before it begins starts no rehearsal role; the real roles start', async () => {
  const root = await zk.chroot('rehearsal-skipped');
  const throwaway = `/rehearsal-${process.pid}-e`;
  const host = newHost(root, new FaultInjector());
  const servers = await admin(zk.server.connectString);
  const report = await host.startRoles(ROLES, {
    rehearsal: { tasks: 600, root: throwaway, interrupt: AbortSignal.abort() },
  });
  assert.deepEqual(report, { tasks: 0, ms: 0, leader: undefined, interrupted: true });
  assert.equal(await servers.exists(throwaway), null, 'no throwaway farm was made');
  assert.deepEqual((await host.roles()).map((i) => i.state).sort(), Array(5).fill('running'));
  await realFarmWorks(root);
});
