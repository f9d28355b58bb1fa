/**
 * Progress of running tasks (src/exec/progress.ts, src/farm/progress.ts) on a real farm: an inline
 * handler's, a shell task's (a stdout line) and a pool handler's reports reach /progress/<id>, the library
 * and `runtime status <id>` while the task runs; a burst of reports makes few writes and the latest wins;
 * the node goes with the completion. The host's shared pool carries reports back to the role thread.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { createHandlerPool, resolveHandlerModule, type TaskProgress } from '../src/exec/index.js';
import { progressPath } from '../src/farm/progress.js';
import { remotePool, servePool } from '../src/host/shared-pool.js';
import { useCleanups } from './helpers/cleanups.js';
import { Cli } from './helpers/cli.js';
import { useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-progress-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir: join(tmp, 'work') });
const fixture = join(import.meta.dirname, 'fixtures', 'progress-handlers.mjs');

function status(root: string, id: string) {
  const env = { ...process.env };
  delete env['ZKFARM_ZK'];
  return new Cli(['status', '--zk', root, id], { env }).exit(60_000);
}

test('a handler and a shell task report progress: seen by the library and runtime status while they run, gone with the completion', async () => {
  const root = await zk.chroot('progress');
  const raw = await zk.rawClient(root);
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', {
    allowShell: true,
    handlers: {
      copy: async (_input, ctx) => {
        for (let i = 0; i <= 1000; i++) ctx.progress(i / 10, `copied ${i} files`);
        await released;
        return 'copied';
      },
    },
  });
  const sub = await farm.submitter(root);
  const handlerTask = await sub.submit({ handler: 'copy' });
  const gate = join(tmp, 'shell-gate');
  const shellTask = await sub.submit({
    cmd: `echo "$ZKFARM_PROGRESS_PREFIX 30% halfway there"; for i in $(seq 1 600); do [ -f ${gate} ] && exit 0; sleep 0.05; done; exit 1`,
  });

  // The burst of 1,001 reports: the latest wins, in at most two writes (the first at once, then one more).
  await until(async () => (await sub.progress(handlerTask))?.value === 100, 10_000, 'the last report');
  const p = await sub.progress(handlerTask);
  assert.deepEqual(
    { ...p, at: 0 },
    { worker: 'w1', attempt: 1, value: 100, message: 'copied 1000 files', at: 0 },
  );
  assert.ok(
    (await raw.exists(progressPath(handlerTask)))!.version <= 1,
    'a write per interval, not per report',
  );
  await until(async () => (await sub.progress(shellTask))?.value === 30, 10_000, 'the shell progress line');
  assert.equal((await sub.progress(shellTask))?.message, 'halfway there');

  const [h, s] = await Promise.all([status(root, handlerTask), status(root, shellTask)]);
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, new RegExp(`${handlerTask}  running on w1`));
  assert.match(h.stdout, /progress {2}100 copied 1000 files \(\d+s ago, attempt 1\)/);
  assert.match(s.stdout, /progress {2}30 halfway there/);

  release();
  writeFileSync(gate, '');
  const results = await sub.waitForAll([handlerTask, shellTask], { timeoutMs: 30_000 });
  assert.deepEqual(
    results.map((r) => r.state),
    ['succeeded', 'succeeded'],
  );
  await until(
    async () => (await raw.exists(progressPath(handlerTask))) === null,
    10_000,
    'the progress node to go',
  );
  await until(
    async () => (await raw.exists(progressPath(shellTask))) === null,
    10_000,
    'the progress node to go',
  );
  const done = await status(root, handlerTask);
  assert.match(done.stdout, new RegExp(`${handlerTask}  succeeded on w1`));
  assert.match(done.stdout, /result {4}"copied"/);
});

test("a pool handler reports from its thread: on a worker of its own, and through the host's shared pool", async () => {
  const root = await zk.chroot('progress-pool');
  const module = await resolveHandlerModule(fixture);
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlerModules: [fixture] });
  const sub = await farm.submitter(root);
  const release = join(tmp, 'pool-gate');
  const id = await sub.submit({
    handler: 'reportAndWait',
    input: { value: 7, message: 'from the pool', release },
  });
  await until(async () => (await sub.progress(id))?.message === 'from the pool', 15_000, 'the pool progress');
  assert.equal((await sub.progress(id))?.value, 7);
  writeFileSync(release, '');
  assert.equal((await sub.waitFor(id, { timeoutMs: 30_000 })).state, 'succeeded');

  // The host lends its pool to role threads over a port: reports come back over it.
  const pool = createHandlerPool({ maxThreads: 1 });
  cleanups.push(() => pool.close());
  const ch = new MessageChannel();
  servePool(pool, ch.port1);
  const remote = remotePool(ch.port2);
  cleanups.push(() => {
    ch.port1.close();
    return remote.close();
  });
  const seen: TaskProgress[] = [];
  // The handler waits for its own gate: a report that arrives after its call ended is dropped (its
  // task's progress is over), so the call must still run when the report comes back.
  const gate = join(tmp, 'shared-pool-gate');
  const running = remote.run(
    {
      module,
      handler: 'reportAndWait',
      input: { value: 55, message: 'shared', release: gate },
      taskId: 'task-0000000001',
      attempt: 1,
      outputDir: join(tmp, 'remote-out'),
    },
    { onProgress: (p) => seen.push(p) },
  );
  await until(() => seen.length > 0, 15_000, 'the report through the shared pool');
  writeFileSync(gate, '');
  assert.deepEqual(await running, { released: true });
  assert.deepEqual(seen, [{ value: 55, message: 'shared' }]);
});
