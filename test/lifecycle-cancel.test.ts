/**
 * Cancellation on a real farm (cancel-request.ts, cancel-desk.ts, worker-cancels.ts, cancel-client.ts):
 * a queued task, a task held by a worker but not started, a running shell task (its whole process
 * group is gone), a running inline handler (its signal aborts), a running pool task (its thread is
 * terminated); a cancel racing completion leaves one final status that agrees with the cancel's
 * answer; a foreign client's one create cancels; unknown and finished ids are answered as such.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SHELVE_HELD_AFTER } from '../src/farm/backlog.js';
import { cancelPath } from '../src/farm/cancel-request.js';
import {
  assignDir,
  assignPath,
  backlogLanePath,
  encode,
  PATHS,
  parseStatus,
  statusPath,
  taskPath,
  workerPath,
} from '../src/farm/protocol.js';
import { QueueAdmin } from '../src/farm/queue-admin.js';
import { useCleanups } from './helpers/cleanups.js';
import { Cli } from './helpers/cli.js';
import { useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-cancel-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir: join(tmp, 'work') });
const fixture = join(import.meta.dirname, 'fixtures', 'cancel-handlers.mjs');

function runtime(...args: string[]) {
  const env = { ...process.env };
  delete env['ZKFARM_ZK'];
  return new Cli(args, { env }).exit(60_000);
}

/** A process is gone once /proc has no live entry for it (a zombie waiting to be reaped has exited). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

test('a queued task is cancelled with who and why; a finished one and an unknown id are answered as such', async () => {
  const root = await zk.chroot('cancel-queued');
  const raw = await zk.rawClient(root);
  await farm.master(root, 'm1');
  const sub = await farm.submitter(root);
  const id = await sub.submit({ handler: 'echo', input: 'never runs', queue: 'q1' });

  const [r] = await sub.cancel([id], { by: 'alice', reason: 'not needed' });
  assert.equal(r!.outcome, 'cancelled');
  const status = parseStatus((await raw.getData(statusPath(id))).data);
  assert.equal(status.state, 'cancelled');
  assert.equal(status.cancelledBy, 'alice');
  assert.equal(status.reason, 'not needed');
  assert.equal(status.cancelledWhile, 'queued');
  assert.equal(status.worker, null);
  assert.deepEqual(status.task, { handler: 'echo', input: 'never runs', queue: 'q1' });
  assert.equal(await raw.exists(taskPath(id)), null, 'the task is gone from the queue');
  await until(async () => (await raw.exists(cancelPath(id))) === null, 10_000, 'the request to be deleted');
  // Cancelled by mistake: it can be re-run, linked to the original.
  const [rerun] = await sub.retry([id]);
  assert.ok(rerun!.retry, rerun!.error);

  // A task that finished first keeps its result; the answer says so.
  await farm.worker(root, 'w1', { queues: ['default'] });
  const done = await sub.submit({ handler: 'echo', input: 1 });
  await sub.waitFor(done, { timeoutMs: 20_000 });
  const [f] = await sub.cancel([done]);
  assert.equal(f!.outcome, 'finished-first');
  assert.equal(f!.status?.state, 'succeeded');

  const [n] = await sub.cancel(['task-0000999999'], { waitMs: 2000 });
  assert.equal(n!.outcome, 'not-found');
  assert.equal(await raw.exists(cancelPath('task-0000999999')), null, 'a request for nothing is not left');
});

test("a foreign client cancels with one create; bad request data still cancels and says it wasn't read", async () => {
  const root = await zk.chroot('cancel-foreign');
  const raw = await zk.rawClient(root);
  await farm.master(root, 'm1');
  const sub = await farm.submitter(root);
  const [a, b] = await sub.submitMany([{ handler: 'echo' }, { handler: 'echo' }]);
  await raw.create(cancelPath(a!), Buffer.from('{"by":"zkCli","reason":"typo in input"}'));
  await raw.create(cancelPath(b!), Buffer.from('{not json'));
  const [sa, sb] = await sub.waitForAll([a!, b!], { timeoutMs: 20_000 });
  assert.deepEqual([sa!.state, sa!.cancelledBy, sa!.reason], ['cancelled', 'zkCli', 'typo in input']);
  assert.equal(sb!.state, 'cancelled');
  assert.match(String(sb!.reason), /not a JSON object/);
  await until(async () => (await raw.getChildren(PATHS.cancel)).length === 0, 10_000, 'requests deleted');
});

test('a running shell task is stopped with its whole process group; its status is cancelled', async () => {
  const root = await zk.chroot('cancel-shell');
  const raw = await zk.rawClient(root);
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { allowShell: true });
  const sub = await farm.submitter(root);
  const pids = join(tmp, 'shell-pids');
  // The shell and a child of its own (in the same group): both must be gone.
  const id = await sub.submit({ cmd: `sleep 60 & echo "$$ $!" > ${pids}; wait` });
  await until(() => existsSync(pids) && readFileSync(pids, 'utf8').trim().split(' ').length === 2, 20_000);
  const [shell, child] = readFileSync(pids, 'utf8').trim().split(' ').map(Number) as [number, number];
  assert.ok(alive(shell) && alive(child), 'the shell and its child run before the cancel');

  const [r] = await sub.cancel([id], { by: 'ops' });
  assert.equal(r!.outcome, 'cancelled');
  assert.equal(r!.status?.cancelledWhile, 'running');
  assert.equal(r!.status?.worker, 'w1');
  assert.equal(r!.status?.attempts, 1);
  await until(() => !alive(shell) && !alive(child), 10_000, 'the shell and its child to be gone');
  assert.deepEqual(await raw.getChildren(assignDir('w1')), [], 'no assignment left');
});

test('a running handler sees its signal abort; a task held but not started never starts', async () => {
  const root = await zk.chroot('cancel-handler');
  let sawAbort: unknown;
  let started = 0;
  await farm.master(root, 'm1');
  const worker = await farm.worker(root, 'w1', {
    capacity: 1,
    prefetch: 1,
    handlers: {
      wait: async (_input, ctx) => {
        started++;
        await new Promise<void>((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            sawAbort = ctx.signal.reason;
            resolve();
          });
        });
        return 'released';
      },
    },
  });
  const sub = await farm.submitter(root);
  const running = await sub.submit({ handler: 'wait' });
  await until(() => started === 1, 20_000, 'the first task to start');
  const held = await sub.submit({ handler: 'wait' });
  await until(() => worker.stats().queued === 1, 20_000, 'the second task to be held by the worker');

  const [h] = await sub.cancel([held], { reason: 'held' });
  assert.equal(h!.outcome, 'cancelled');
  assert.equal(h!.status?.cancelledWhile, 'assigned');
  assert.equal(h!.status?.startedAt, null);
  const [r] = await sub.cancel([running], { reason: 'running' });
  assert.equal(r!.outcome, 'cancelled');
  assert.equal(r!.status?.cancelledWhile, 'running');
  assert.equal((sawAbort as { code?: string })?.code, 'ZKFARM_TASK_CANCELLED');
  assert.equal(started, 1, 'the held task never started');
});

test("a running pool task's thread is terminated", async () => {
  const root = await zk.chroot('cancel-pool');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlerModules: [fixture] });
  const sub = await farm.submitter(root);
  // It would spin for 30 s: only terminating its thread ends it sooner.
  const id = await sub.submit({ handler: 'spin', input: { ms: 30_000 } });
  await until(async () => (await sub.progress(id))?.message === 'spinning', 20_000, 'the pool task to run');
  const began = Date.now();
  const [r] = await sub.cancel([id], { waitMs: 20_000 });
  assert.equal(r!.outcome, 'cancelled');
  assert.equal(r!.status?.cancelledWhile, 'running');
  assert.ok(Date.now() - began < 20_000, 'cancelled long before the spin would end');
  // The pool still runs tasks afterwards (a new thread replaced the terminated one).
  const next = await sub.submit({ handler: 'spin', input: { ms: 10 } });
  assert.equal((await sub.waitFor(next, { timeoutMs: 20_000 })).state, 'succeeded');
});

test('cancels racing completion: each task has one final status, and the answer agrees with it', async () => {
  const root = await zk.chroot('cancel-race');
  const raw = await zk.rawClient(root);
  await farm.master(root, 'm1');
  const worker = await farm.worker(root, 'w1', { capacity: 8 });
  const sub = await farm.submitter(root);
  const n = 50;
  const ids = await sub.submitMany(
    Array.from({ length: n }, (_, i) => ({ handler: 'sleep', input: 20 + (i % 5) * 10 })),
  );
  // Each cancel is sent around the time its task finishes: some win, some lose.
  const answers = await Promise.all(
    ids.map(async (id, i) => {
      await new Promise((r) => setTimeout(r, 30 + (i % 7) * 15 + Math.floor(i / 8) * 40));
      return (await sub.cancel([id], { waitMs: 20_000 }))[0]!;
    }),
  );
  let cancelled = 0;
  for (const a of answers) {
    const status = parseStatus((await raw.getData(statusPath(a.id))).data);
    assert.equal(a.status?.state, status.state, `the answer for ${a.id} agrees with its status`);
    assert.equal(a.outcome, status.state === 'cancelled' ? 'cancelled' : 'finished-first');
    if (status.state === 'cancelled') cancelled++;
    else assert.equal(status.state, 'succeeded');
  }
  const buckets = await raw.getChildren(PATHS.status);
  const statuses = (await Promise.all(buckets.map((b) => raw.getChildren(`${PATHS.status}/${b}`)))).flat();
  assert.equal(statuses.length, n, 'one status per task');
  assert.deepEqual(await raw.getChildren(PATHS.tasks), []);
  assert.deepEqual(await raw.getChildren(assignDir('w1')), []);
  // Each outcome was recorded once: by the worker (run or cancelled) or by the master (cancelled queued).
  const s = worker.stats();
  assert.equal(s.succeeded, n - cancelled);
  await until(async () => (await raw.getChildren(PATHS.cancel)).length === 0, 10_000, 'requests deleted');
  console.log(`race: ${cancelled} cancelled, ${n - cancelled} finished first`);
});

test('runtime cancel: by id (status shows who and why), by queue with --yes, exit codes', async () => {
  const root = await zk.chroot('cancel-cli');
  const raw = await zk.rawClient(root);
  await farm.master(root, 'm1');
  const sub = await farm.submitter(root);
  // No worker: everything stays queued.
  // Hundreds: the requests go out together and are answered together, well within one wait.
  const q2 = await sub.submitMany(
    Array.from({ length: 300 }, (_, input) => ({ handler: 'echo', input, queue: 'q2' })),
  );
  const [other, one] = await sub.submitMany([{ handler: 'echo' }, { handler: 'echo' }]);

  const byId = await runtime('cancel', '--zk', root, one!, '--by', 'bob', '--reason', 'duplicate');
  assert.equal(byId.code, 0, byId.stderr);
  assert.equal(byId.stdout.trim(), `${one} cancelled`);
  const shown = await runtime('status', '--zk', root, one!);
  assert.match(shown.stdout, new RegExp(`${one}  cancelled on no worker`));
  assert.match(shown.stdout, /cancelled while queued by bob: duplicate/);

  const ask = await runtime('cancel', '--zk', root, '--queue', 'q2');
  assert.equal(ask.code, 2);
  assert.match(ask.stderr, /300 waiting task\(s\) of queue "q2"; nothing cancelled: add --yes/);
  assert.equal((await raw.getChildren(PATHS.tasks)).length, 301, 'nothing cancelled without --yes');

  const all = await runtime('cancel', '--zk', root, '--queue', 'q2', '--yes');
  assert.equal(all.code, 0, all.stderr);
  assert.deepEqual(
    all.stdout.trim().split('\n').sort(),
    q2.map((id) => `${id} cancelled`),
  );
  assert.deepEqual(await raw.getChildren(PATHS.tasks), [other], "only the other queue's task waits");

  const again = await runtime('cancel', '--zk', root, one!, 'task-0000999999', '--wait-ms', '1000');
  assert.equal(again.code, 1, 'not every task named was cancelled now');
  assert.deepEqual(again.stdout.trim().split('\n'), [`${one} cancelled`, 'task-0000999999 not-found']);
  const usage = await runtime('cancel', '--zk', root);
  assert.equal(usage.code, 2);
});

test("a task in a paused deep queue's backlog is cancelled where it waits; the leader hands out the rest", async () => {
  const root = await zk.chroot('cancel-backlog');
  const raw = await zk.rawClient(root);
  await new QueueAdmin(raw).pause('deep');
  await farm.master(root, 'm1');
  const sub = await farm.submitter(root);
  const ids = await sub.submitMany(
    Array.from({ length: SHELVE_HELD_AFTER + 200 }, (_, i) => ({ handler: 'echo', input: i, queue: 'deep' })),
  );
  const lane = backlogLanePath('deep', 0);
  const shelved = async () => {
    const buckets = await raw.getChildren(lane).catch(() => [] as string[]);
    return (await Promise.all(buckets.map((b) => raw.getChildren(`${lane}/${b}`)))).flat();
  };
  await until(async () => (await shelved()).length > 0, 30_000, 'the paused deep queue shelved');
  const victim = (await shelved()).sort()[0]!;
  assert.ok(ids.includes(victim));
  assert.equal(await raw.exists(taskPath(victim)), null, 'it waits in the backlog, not in /tasks');

  const [r] = await sub.cancel([victim], { reason: 'backlog' });
  assert.equal(r!.outcome, 'cancelled');
  assert.equal(r!.status?.cancelledWhile, 'queued');
  assert.ok(!(await shelved()).includes(victim), 'gone from the backlog');
  assert.equal((await sub.waiting('deep')).length, ids.length - 1, 'the others still wait');

  // Resumed, the leader hands out every other task (its view of the backlog forgot the cancelled one).
  await new QueueAdmin(raw).resume('deep');
  await farm.worker(root, 'w1', { queues: ['deep'], capacity: 16 });
  const results = await sub.waitForAll(
    ids.filter((id) => id !== victim),
    { timeoutMs: 40_000 },
  );
  assert.ok(results.every((s) => s.state === 'succeeded'));
  assert.equal(parseStatus((await raw.getData(statusPath(victim))).data).state, 'cancelled');
});

test('a task held by a worker that never answers (gone, or older than cancellation) is cancelled once it is given back', async () => {
  const root = await zk.chroot('cancel-lost');
  const raw = await zk.rawClient(root);
  // A worker that registers and takes tasks, but knows nothing of /cancel.
  const old = await zk.rawClient(root);
  await old.ensurePath(assignDir('old'));
  await old.ensurePath(PATHS.workers);
  const info = { capacity: 1, prefetch: 0, paused: false, queues: [{ name: 'default', weight: 1 }] };
  await old.createEphemeral(workerPath('old'), encode({ ...info, host: 'h', pid: 1, startedAt: Date.now() }));
  await farm.master(root, 'm1');
  const sub = await farm.submitter(root);
  const id = await sub.submit({ handler: 'echo', input: 'held' });
  await until(
    async () => (await raw.exists(assignPath('old', id))) !== null,
    20_000,
    'the old worker to hold it',
  );

  const [r] = await sub.cancel([id], { reason: 'stuck', waitMs: 1000 });
  assert.equal(r!.outcome, 'pending', 'the worker holding it does not answer');
  assert.notEqual(await raw.exists(cancelPath(id)), null, 'the request stands');

  // The worker goes; the master gives the task back, and answers the request where the task then waits.
  old.connection.close();
  const status = await sub.waitFor(id, { timeoutMs: 20_000 });
  assert.equal(status.state, 'cancelled');
  assert.equal(status.cancelledWhile, 'queued');
  assert.equal(status.reason, 'stuck');
  await until(async () => (await raw.exists(cancelPath(id))) === null, 10_000, 'the request deleted');
});

test('a delayed task is cancelled in the due-time area; the leader moves nothing back for it', async () => {
  const root = await zk.chroot('cancel-delayed');
  const raw = await zk.rawClient(root);
  await farm.master(root, 'm1', { delayThresholdMs: 1000 });
  await farm.worker(root, 'w1');
  const sub = await farm.submitter(root);
  const id = await sub.submit({ handler: 'echo', input: 'later', delayMs: 4000 });
  const slotOf = async () => {
    for (const slot of await raw.getChildren(PATHS.delayed).catch(() => [] as string[]))
      if (await raw.exists(`${PATHS.delayed}/${slot}/${id}`)) return slot;
    return undefined;
  };
  await until(async () => (await slotOf()) !== undefined, 10_000, 'the task in /delayed');

  const [r] = await sub.cancel([id], { by: 'bob', reason: 'plans changed' });
  assert.equal(r!.outcome, 'cancelled');
  const status = parseStatus((await raw.getData(statusPath(id))).data);
  assert.equal(status.state, 'cancelled');
  assert.equal(status.cancelledWhile, 'queued');
  assert.equal(status.cancelledBy, 'bob');
  assert.equal(await slotOf(), undefined, 'gone from the due-time area');
  // Past its due time nothing came back to the queue for it, and its one status stands.
  await new Promise((resolve) => setTimeout(resolve, 4500));
  assert.equal(await raw.exists(taskPath(id)), null);
  assert.equal(parseStatus((await raw.getData(statusPath(id))).data).state, 'cancelled');
});
