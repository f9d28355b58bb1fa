/**
 * Several hosts on one ensemble: two `runtime` processes (one with 2 masters and 2 workers, one with
 * 1 master and 4 workers, distinct --name-prefix) join one farm on a 3-member ZooKeeper ensemble. The
 * first is SIGKILLed mid-stream, its leader included; the second finishes every task. No process is
 * left behind.
 *
 * This is how a farm scales past one machine: one ensemble, `runtime --zk h1:2181,h2:2181,h3:2181/farm`
 * on each host with its own --name-prefix.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PATHS, statusPath } from '../src/farm/protocol.js';
import { allResultIds, countResults } from '../src/farm/status-store.js';
import { Submitter } from '../src/farm/submitter.js';
import { connect, startZkEnsemble } from '../src/zk/index.js';
import {
  processesMentioning,
  type RuntimeProcess,
  runCli,
  sigkillProcess,
  spawnRuntime,
  until,
} from './helpers/chaos.js';
import { useCleanups } from './helpers/cleanups.js';
import { checkInvariants, recordTaskHistory, waitForStatuses } from './helpers/invariants.js';

const cleanups = useCleanups();

const TASKS = 400;

test('two runtime hosts on one ensemble: the first is SIGKILLed mid-stream, the second finishes every task', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-multi-host-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const xdg = join(tmp, 'xdg');
  mkdirSync(xdg);
  // One output root for both hosts (as a shared file system would be), so one check sees every result.
  const workdir = join(tmp, 'work');

  const ensemble = await startZkEnsemble({ size: 3, tickTime: 1000 });
  cleanups.push(async () => {
    await ensemble.stop();
    assert.deepEqual(processesMentioning(ensemble.baseDir), [], 'no ZooKeeper process left');
  });
  const zk = `${ensemble.connectString}/multi`;
  const common = [
    '--zk',
    zk,
    '--workdir',
    workdir,
    '--task-dirs',
    'always', // the invariant check finds extra runs by their output directories
    '--session-timeout',
    '4000',
    '--capacity',
    '4',
    '--log-level',
    'warn',
  ];

  const hosts: RuntimeProcess[] = [];
  const start = async (args: string[]) => {
    const p = spawnRuntime([...common, ...args], { xdgDir: xdg });
    hosts.push(p);
    cleanups.push(() => p.stop('SIGKILL', 5000));
    await p.waitForOutput(/runtime: ready/, 90_000);
    return p;
  };
  const first = await start(['--masters', '2', '--workers', '2', '--name-prefix', 'alpha']);
  const second = await start(['--masters', '1', '--workers', '4', '--name-prefix', 'beta']);

  const sup = connect({ connect: zk, sessionTimeout: 20_000 });
  cleanups.push(() => sup.stop());
  const admin = (await sup.ready).client;
  // The first host started first, so one of its masters leads.
  const leader = () => admin.getJson<{ name: string }>(PATHS.master).then((r) => r.value.name);
  assert.match(await leader(), /^alpha-master-/);
  await until(
    async () => (await admin.getChildren(PATHS.workers)).length === 6,
    30_000,
    'six workers registered',
  );

  const history = await recordTaskHistory({ connect: zk });
  cleanups.push(() => history.stop());
  const sub = await Submitter.open({ connect: zk });
  cleanups.push(() => sub.close());
  const ids: string[] = [];
  const stream = (async () => {
    for (let b = 0; b < TASKS / 20; b++) {
      ids.push(
        ...(await sub.submitMany(
          Array.from({ length: 20 }, (_, k) => ({ handler: 'sleep', input: 150 + ((b * 20 + k) % 5) * 50 })),
        )),
      );
      await new Promise((r) => setTimeout(r, 250));
    }
  })();

  // Mid-stream, once both hosts have done work: SIGKILL the first, leader and all.
  await until(
    async () => {
      return (await countResults(admin)) >= TASKS / 5;
    },
    120_000,
    'a fifth of the tasks done',
  );
  const byAlpha = (
    await Promise.all(
      (await allResultIds(admin)).slice(0, 50).map((id) => admin.getJson<{ worker: string }>(statusPath(id))),
    )
  ).filter((s) => s.value.worker.startsWith('alpha-')).length;
  assert.ok(byAlpha > 0, 'the first host did work before it died');
  const running = (
    await Promise.all(
      ['alpha-worker-1', 'alpha-worker-2'].map((w) =>
        admin.getChildren(`${PATHS.assign}/${w}`).catch(() => []),
      ),
    )
  ).flat().length;
  const killed = await sigkillProcess(first.child, 'runtime alpha').inject();
  await killed.recovered;
  assert.equal(first.child.signalCode, 'SIGKILL');

  await stream;
  await waitForStatuses(admin, ids, 180_000);
  await until(async () => (await admin.getChildren(PATHS.tasks)).length === 0, 30_000, 'an empty queue');
  assert.match(await leader(), /^beta-master-/, 'the second host leads now');
  await history.stop();

  const disturbed = new Set(['alpha-master-1', 'alpha-master-2', 'alpha-worker-1', 'alpha-worker-2']);
  const report = await checkInvariants(admin, ids, { workdir, disturbed, history });
  assert.deepEqual(report.problems, []);
  const workersUsed = new Set([...report.statuses.values()].map((s) => s.worker));
  for (const w of ['beta-worker-1', 'beta-worker-2', 'beta-worker-3', 'beta-worker-4'])
    assert.ok(workersUsed.has(w), `${w} worked`);
  console.log(
    `# multi-host: ${ids.length} tasks; alpha SIGKILLed holding ${running} assignments; ${report.reruns.length} tasks ran again ` +
      `(${report.rerunsVerified} traced to alpha's workers, ${report.rerunsUnverifiable} untraceable); ${report.extraRuns} extra runs`,
  );

  // `runtime status` through the ensemble sees the survivors only.
  const status = await runCli(['status', '--zk', zk, '--json'], { xdgDir: xdg });
  assert.equal(status.code, 0, status.stderr);
  const state = JSON.parse(status.stdout) as Record<string, unknown>;
  assert.doesNotMatch(
    JSON.stringify(state['workers'] ?? state),
    /alpha-worker/,
    "the dead host's workers are gone",
  );

  // The second host stops cleanly, and nothing of either host is left running.
  assert.equal(await second.stop('SIGTERM', 60_000), 0, second.stderr());
  for (const h of hosts) assert.ok(h.child.exitCode !== null || h.child.signalCode !== null);
  await until(() => processesMentioning(workdir).length === 0, 10_000, 'no runtime process left');
});
