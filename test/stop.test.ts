/**
 * Every stop ends: `runtime` stops within its drain timeout plus the bound docs/reliability.md states,
 * whatever its roles and ZooKeeper are doing when the signal comes.
 *
 * The case that once ran on idle for minutes after SIGTERM: a host restarted under the same role names
 * while the nodes of its earlier run were still held (its roles wait in their start for those sessions
 * to expire), and then its whole ZooKeeper went away.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { STOP_BOUND_MS } from '../src/cli/start.js';
import { Cli, killRuntimes } from './helpers/cli.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-stop-test-'));
const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: join(tmp, 'xdg') };
delete env['ZKFARM_ZK'];

after(() => {
  killRuntimes();
  rmSync(tmp, { recursive: true, force: true });
});

const DRAIN_MS = 1000;

test('SIGTERM while the roles wait for their names and ZooKeeper is gone: runtime stops cleanly, in bounded time', async () => {
  const connect = await zk.chroot('stall');
  // An earlier run of this host, still alive as far as ZooKeeper knows: its session holds the names.
  const earlier = await zk.rawClient(connect, { sessionTimeout: 30_000 });
  await earlier.ensurePath('/masters');
  await earlier.ensurePath('/workers');
  await earlier.createEphemeral('/masters/st-master-1', '{}');
  await earlier.createEphemeral('/workers/st-worker-1', '{}');

  const farm = new Cli(
    [
      '--zk',
      connect,
      '--masters',
      '1',
      '--workers',
      '1',
      '--name-prefix',
      'st',
      '--session-timeout',
      '10000',
      '--drain-timeout',
      String(DRAIN_MS),
      '--workdir',
      join(tmp, 'work'),
      '--log-level',
      'info',
    ],
    { env },
  );
  // The master is in its start (the workers start after it), waiting for the earlier session to go.
  await farm.waitForOut(/st-master-1 is held by session/, 60_000);
  await zk.server.kill();
  farm.proc.kill('SIGTERM');
  await farm.waitForErr(/SIGTERM: stopping/, 10_000);
  // A bounded wait for the exit (the noisy machine gets a generous margin over the stated bound).
  const r = await farm.exit(DRAIN_MS + STOP_BOUND_MS + 30_000);
  assert.equal(r.code, 0, `runtime should stop cleanly; stderr:\n${r.stderr}`);
  assert.match(r.stderr, /runtime: stopped/);
});

test('SIGTERM with every role running and ZooKeeper gone: runtime stops cleanly, in bounded time', async () => {
  if (!zk.server.running) await zk.server.restart();
  const connect = await zk.chroot('gone');
  const farm = new Cli(
    [
      '--zk',
      connect,
      '--masters',
      '2',
      '--workers',
      '2',
      '--name-prefix',
      'gone',
      '--session-timeout',
      '4000',
      '--drain-timeout',
      String(DRAIN_MS),
      '--workdir',
      join(tmp, 'work-gone'),
    ],
    { env },
  );
  await farm.waitForErr(/runtime: ready/, 120_000);
  await zk.server.kill();
  farm.proc.kill('SIGTERM');
  await farm.waitForErr(/SIGTERM: stopping/, 10_000);
  const r = await farm.exit(DRAIN_MS + STOP_BOUND_MS + 30_000);
  assert.equal(r.code, 0, `runtime should stop cleanly; stderr:\n${r.stderr}`);
  assert.match(r.stderr, /runtime: stopped/);
});
