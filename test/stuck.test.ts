/**
 * Stuck work must not hold tasks forever. A handler from a module runs on a pool thread, not on the
 * role's thread, so a handler that blocks its thread cannot stop the worker's session heartbeat; at its
 * deadline the pool thread is terminated and the task is retried or failed. A shell command that ignores
 * SIGTERM is SIGKILLed with its whole process group. A task with no timeout of its own gets the worker's
 * `defaultTimeoutMs`.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../src/errors.js';
import { statusPath } from '../src/farm/protocol.js';
import { Submitter } from '../src/farm/submitter.js';
import { createLogger, Host } from '../src/host/index.js';
import type { FarmSpec, RoleSpec } from '../src/host/types.js';
import { connect } from '../src/zk/index.js';
import { isAlive, readPid } from './fixtures/exec-helpers.js';
import { until } from './helpers/chaos.js';
import { sourceThreads } from './helpers/faults.js';
import { checkInvariants } from './helpers/invariants.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-stuck-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));

const FIXTURE = fileURLToPath(new URL('./fixtures/handlers.mjs', import.meta.url));
/** Short, so that a heartbeat that stopped would show as an expired session within the test. */
const SESSION_TIMEOUT = 4000;

const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
    cb();
  },
});

async function startFarm(name: string, workers: RoleSpec[], extra: Partial<FarmSpec> = {}) {
  const root = await zk.chroot(name);
  const workdir = join(tmp, name);
  const host = await Host.start(
    {
      connect: root,
      sessionTimeout: SESSION_TIMEOUT,
      workdir,
      handlerModules: [FIXTURE],
      roles: [{ kind: 'master', name: 'm1' }, ...workers],
      ...extra,
    },
    {
      logger: createLogger({ level: 'info', pretty: false, destination: sink }),
      restartDelayMs: 500,
      spawn: sourceThreads,
    },
  );
  cleanups.push(() => host.stop({ drain: false }));
  const exits: string[] = [];
  host.on('role-exit', (e: { name: string }) => exits.push(e.name));
  const sub = await Submitter.open({ connect: root });
  cleanups.push(() => sub.close());
  const sup = connect({ connect: root });
  cleanups.push(() => sup.stop());
  const admin = (await sup.ready).client;
  return { root, workdir, host, sub, admin, exits };
}

test("a handler that blocks its thread forever is killed at its deadline and retried, while the worker's session stays alive", async () => {
  const f = await startFarm('spin', [{ kind: 'worker', name: 'w1', capacity: 2 }]);
  const session = (await f.host.info('w1')).sessionId;
  // Each run spins for twice the session timeout: a heartbeat on the same thread would miss it.
  const timeoutMs = 2 * SESSION_TIMEOUT;
  const stuck = await f.sub.submit({ handler: 'blockForever', timeoutMs, maxAttempts: 2 });
  await until(async () => ((await f.host.stats('w1')).running ?? 0) > 0, 30_000, 'the stuck task to start');

  // While the pool thread spins, the worker's own thread answers, holds its session, and runs more work.
  const echoes = await f.sub.submitMany(
    Array.from({ length: 20 }, (_, i) => ({ handler: 'echo', input: i })),
  );
  const results = await f.sub.waitForAll(echoes, { timeoutMs: 30_000 });
  assert.ok(results.every((r) => r.state === 'succeeded' && r.worker === 'w1'));
  assert.equal(
    await f.sub.result(stuck),
    undefined,
    'the stuck task is still running (its deadline is later)',
  );
  const probes: string[] = [];
  while ((await f.sub.result(stuck)) === undefined) {
    const info = await f.host.info('w1');
    probes.push(`${info.session}:${info.sessionId === session ? 'same' : info.sessionId}`);
    assert.ok(info.session === 'connected', `w1's session is ${info.session} while its handler spins`);
    assert.equal(info.sessionId, session, 'w1 keeps the session it started with');
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(probes.length > 4, `the worker was probed while the handler spun (${probes.length} probes)`);

  const s = await f.sub.waitFor(stuck, { timeoutMs: 5000 });
  assert.equal(s.state, 'failed');
  assert.equal(s.errorCode, ErrorCodes.TASK_TIMEOUT);
  assert.match(s.error!, new RegExp(`timeout of ${timeoutMs} ms`));
  assert.equal(s.attempts, 2, 'retried once at its deadline, then failed');
  assert.equal(s.worker, 'w1');
  const info = await f.host.info('w1');
  assert.equal(info.sessionId, session);
  assert.equal(info.sessions, 1, 'never a new session');
  assert.deepEqual(f.exits, [], 'no role thread died');
  assert.deepEqual((await checkInvariants(f.admin, [stuck, ...echoes], { workdir: f.workdir })).problems, []);
});

test("a task without a timeout of its own is stopped by the worker's defaultTimeoutMs", async () => {
  const f = await startFarm('default-timeout', [
    { kind: 'worker', name: 'w1', capacity: 1, defaultTimeoutMs: 2000 },
  ]);
  const id = await f.sub.submit({ handler: 'blockForever' });
  const s = await f.sub.waitFor(id, { timeoutMs: 60_000 });
  assert.equal(s.state, 'failed');
  assert.equal(s.errorCode, ErrorCodes.TASK_TIMEOUT);
  assert.match(s.error!, /timeout of 2000 ms/);
  // The slot is free again.
  const next = await f.sub.submit({ handler: 'square', input: 7 });
  assert.equal((await f.sub.waitFor(next, { timeoutMs: 30_000 })).result, 49);
  assert.deepEqual(f.exits, []);
});

test('stuck handlers occupy pool threads only until their deadlines: other module tasks wait, none is lost', async () => {
  const f = await startFarm('pool-full', [
    { kind: 'worker', name: 'w1', capacity: 4 },
    { kind: 'worker', name: 'w2', capacity: 4 },
  ]);
  const stuck = await f.sub.submitMany(
    Array.from({ length: 4 }, () => ({ handler: 'blockForever', timeoutMs: 1500 })),
  );
  const squares = await f.sub.submitMany(
    Array.from({ length: 8 }, (_, i) => ({ handler: 'square', input: i })),
  );
  const builtins = await f.sub.submitMany(
    Array.from({ length: 8 }, (_, i) => ({ handler: 'echo', input: i })),
  );
  const all = await f.sub
    .waitForAll([...stuck, ...squares, ...builtins], { timeoutMs: 120_000 })
    .catch(async (err) => {
      // Say where the missing tasks are, for diagnosis.
      const where = await Promise.all(
        [...stuck, ...squares, ...builtins].map(async (id) => {
          if (await f.admin.exists(statusPath(id))) return undefined;
          for (const w of ['w1', 'w2'])
            if (await f.admin.exists(`/assign/${w}/${id}`)) return `${id} in /assign/${w}`;
          return (await f.admin.exists(`/tasks/${id}`)) ? `${id} in /tasks` : `${id} nowhere`;
        }),
      );
      console.log(`missing: ${where.filter(Boolean).join(', ')}`);
      console.log(JSON.stringify(await f.host.allStats()));
      console.log(
        lines
          .slice(-40)
          .map((l) => `${l['role']} ${l['msg']}`)
          .join('\n'),
      );
      throw err;
    });
  assert.ok(all.slice(0, 4).every((s) => s.errorCode === ErrorCodes.TASK_TIMEOUT));
  assert.deepEqual(
    all.slice(4, 12).map((s) => s.result),
    [0, 1, 4, 9, 16, 25, 36, 49],
  );
  assert.ok(all.slice(12).every((s) => s.state === 'succeeded'));
  assert.deepEqual(f.exits, []);
  assert.deepEqual(
    (await checkInvariants(f.admin, [...stuck, ...squares, ...builtins], { workdir: f.workdir })).problems,
    [],
  );
});

test('a shell task that ignores its timeout (trap "" TERM) is killed, with every process it started', async () => {
  const f = await startFarm('shell', [{ kind: 'worker', name: 'w1', capacity: 1 }], { allowShell: true });
  const id = await f.sub.submit({
    cmd: `trap '' TERM; echo $$ > shell.pid; sleep 100 & echo $! > sleep.pid; wait; sleep 100`,
    timeoutMs: 1000,
  });
  const s = await f.sub.waitFor(id, { timeoutMs: 60_000 });
  assert.equal(s.state, 'failed');
  assert.equal(s.errorCode, ErrorCodes.TASK_TIMEOUT, s.error);
  const dir = join(f.workdir, 'w1', id);
  const pids = [await readPid(join(dir, 'shell.pid')), await readPid(join(dir, 'sleep.pid'))];
  await until(() => pids.every((p) => !isAlive(p)), 10_000, 'the shell and its sleep to be gone');
  // The worker is free for the next task.
  const next = await f.sub.submit({ cmd: 'echo next' });
  assert.equal((await f.sub.waitFor(next, { timeoutMs: 30_000 })).state, 'succeeded');
  assert.deepEqual(f.exits, []);
});
