/**
 * Bad input, each a test: whatever a client writes, whatever a handler does, whatever an operator
 * mistypes, the result is a clear error or a failed status with the reason; no role dies; no task is lost.
 *
 * Most tests share one farm (a host with a master and two workers, in threads, on a real ZooKeeper) and
 * end by checking that it is still whole: every role running on the session it started with, no thread
 * exited, and a canary task still completes. Tests that need a farm of their own (a blocked workdir, a
 * task at ZooKeeper's size limit) make one in a chroot of their own.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, hasCode } from '../src/errors.js';
import { Master, Worker } from '../src/farm/index.js';
import { assignPath, PATHS, parseStatus, statusPath, taskPath } from '../src/farm/protocol.js';
import { Submitter } from '../src/farm/submitter.js';
import { createLogger, Host } from '../src/host/index.js';
import type { FarmSpec, RoleSpec } from '../src/host/types.js';
import { freePorts } from '../src/zk/free-ports.js';
import { connect, OPEN_ACL, openClient, startZkServer, type ZkClient } from '../src/zk/index.js';
import { encodedAcl, OP } from '../src/zk/jute.js';
import { processesMentioning, runCli, spawnRuntime, until } from './helpers/chaos.js';
import { sourceThreads } from './helpers/faults.js';
import { checkInvariants, waitForStatuses } from './helpers/invariants.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
// Registered before useZooKeeper's own hook, so roles close their sessions while the server still runs.
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const zk = useZooKeeper();

const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-bad-input-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const xdg = join(tmp, 'xdg');
mkdirSync(xdg);

const FIXTURE = fileURLToPath(new URL('./fixtures/handlers.mjs', import.meta.url));
/** More misbehaving handlers, written at run time (plain JS: a pool thread loads it without a loader). */
const MORE = join(tmp, 'more-handlers.mjs');
writeFileSync(
  MORE,
  `
export function hangs() { return new Promise(() => {}); }
export function circular() { const a = { name: 'loop' }; a.self = a; return a; }
export function returnsFunction() { return { ok: true, later: () => 1 }; }
export function returnsUndefined() { return undefined; }
export function throwsString() { throw 'a plain string, not an Error'; }
export function throwsNull() { throw null; }
export function exitsThread() { process.exit(7); }
export function hugeResult() { return 'x'.repeat(2_000_000); }
export function hugeError() { throw new Error('e'.repeat(2_000_000)); }
`,
);

const SESSION_TIMEOUT = 6000;

/** Log lines of every host in this file, for assertions and for diagnosis. */
const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    for (const l of String(chunk).split('\n')) {
      if (!l.trim()) continue;
      try {
        lines.push(JSON.parse(l));
      } catch {
        lines.push({ msg: l });
      }
    }
    cb();
  },
});

async function adminClient(root: string): Promise<ZkClient> {
  const sup = connect({ connect: root, sessionTimeout: 20_000 });
  cleanups.push(() => sup.stop());
  return (await sup.ready).client;
}

interface Farm {
  root: string;
  host: Host;
  workdir: string;
  admin: ZkClient;
  sub: Submitter;
  exits: Array<{ name: string; code: number }>;
  sessions: Map<string, string | undefined>;
  ids: string[];
}

async function startFarm(name: string, roles: RoleSpec[], extra: Partial<FarmSpec> = {}): Promise<Farm> {
  const root = await zk.chroot(name);
  const workdir = extra.workdir ?? join(tmp, `work-${name}`);
  const host = await Host.start(
    {
      connect: root,
      sessionTimeout: SESSION_TIMEOUT,
      workdir,
      handlerModules: [FIXTURE, MORE],
      roles,
      ...extra,
    },
    {
      logger: createLogger({ level: 'info', pretty: false, destination: sink }),
      restartDelayMs: 500,
      spawn: sourceThreads,
    },
  );
  cleanups.push(() => host.stop({ drain: false }));
  const exits: Farm['exits'] = [];
  host.on('role-exit', (e: { name: string; code: number }) => exits.push(e));
  const sub = await Submitter.open({ connect: root });
  cleanups.push(() => sub.close());
  const sessions = new Map((await host.roles()).map((r) => [r.name, r.sessionId]));
  return { root, host, workdir, admin: await adminClient(root), sub, exits, sessions, ids: [] };
}

const standardRoles: RoleSpec[] = [
  { kind: 'master', name: 'm1' },
  { kind: 'worker', name: 'w1', capacity: 2 },
  { kind: 'worker', name: 'w2', capacity: 2 },
];

let farm: Farm;
// Started by the first test's hook (a root before() may run alongside useZooKeeper's own).
beforeEach(async () => {
  farm ??= await startFarm('shared', standardRoles);
});

/** Create a task znode with exactly these bytes (what any client in any language could write). */
async function rawTask(f: Farm, data: string | Buffer | undefined): Promise<string> {
  const id = (await f.admin.createSequential(`${PATHS.tasks}/task-`, data)).slice(PATHS.tasks.length + 1);
  f.ids.push(id);
  return id;
}

async function submit(f: Farm, task: Record<string, unknown>): Promise<string> {
  const id = await f.sub.submit(task);
  f.ids.push(id);
  return id;
}

function waitStatus(f: Farm, id: string, timeoutMs = 30_000) {
  return f.sub.waitFor(id, { timeoutMs });
}

/**
 * The farm is whole: every role runs on the session it started with, no thread exited, a canary task
 * still completes, and every task this farm was given has exactly one status with nothing left queued.
 */
async function assertWhole(f: Farm): Promise<void> {
  const canary = await submit(f, { handler: 'echo', input: 'canary' });
  assert.equal((await waitStatus(f, canary)).result, 'canary', 'a canary task still completes');
  const roles = await f.host.roles();
  for (const r of roles) {
    assert.equal(r.state, 'running', `${r.name} runs`);
    assert.equal(r.sessionId, f.sessions.get(r.name), `${r.name} kept its session`);
  }
  assert.deepEqual(f.exits, [], 'no role thread exited');
  await waitForStatuses(f.admin, f.ids, 30_000);
  const report = await checkInvariants(f.admin, f.ids, { workdir: f.workdir });
  assert.deepEqual(report.problems, []);
}

// ---------------------------------------------------------------------------------------------------
// Task data
// ---------------------------------------------------------------------------------------------------

test('task data that is not JSON gets a failed status naming the problem', async () => {
  const cases: Array<[string | Buffer | undefined, RegExp]> = [
    ['{"cmd": ', /not valid JSON/],
    ['hello world', /not valid JSON/],
    ['{handler: "echo"}', /not valid JSON/],
    [Buffer.from([0xff, 0xfe, 0x00, 0x01]), /not valid JSON/],
    [undefined, /empty/],
    ['   ', /empty/],
  ];
  const ids = await Promise.all(cases.map(([data]) => rawTask(farm, data)));
  for (const [i, id] of ids.entries()) {
    const s = await waitStatus(farm, id);
    assert.equal(s.state, 'failed');
    assert.equal(s.errorCode, ErrorCodes.INVALID_TASK);
    assert.match(s.error!, cases[i]![1]);
    assert.match(
      s.error!,
      /expected a JSON object|\{"cmd"|not valid JSON/,
      'the reason says what a task looks like',
    );
  }
  await assertWhole(farm);
});

test('task data that is JSON but not a task object gets a failed status naming the problem', async () => {
  const cases: Array<[string, RegExp]> = [
    ['42', /must be a JSON object, got number/],
    ['"echo"', /must be a JSON object, got string/],
    ['null', /must be a JSON object, got null/],
    ['[{"handler":"echo"}]', /must be a JSON object, got an array/],
    ['true', /must be a JSON object, got boolean/],
    ['{}', /exactly one of "cmd".*"handler"/],
    ['{"cmd":"true","handler":"echo"}', /exactly one of/],
    ['{"handler":5}', /handler/],
    ['{"handler":""}', /handler/],
    ['{"handler":"echo","timeoutMs":-1}', /timeoutMs/],
    ['{"handler":"echo","timeoutMs":"soon"}', /timeoutMs/],
    ['{"handler":"echo","maxAttempts":0}', /maxAttempts/],
    ['{"handler":"echo","maxAttempts":1e9}', /maxAttempts/],
    ['{"handler":"echo","_zkfarm":"forged"}', /_zkfarm/],
    ['{"handler":"echo","_zkfarm":{"attempts":-3}}', /_zkfarm/],
    ['{"handler":"sleep","input":"forever"}', /sleep wants its input to be a number/],
  ];
  const ids = await Promise.all(cases.map(([data]) => rawTask(farm, data)));
  for (const [i, id] of ids.entries()) {
    const s = await waitStatus(farm, id);
    assert.equal(s.state, 'failed', `${cases[i]![0]} fails`);
    assert.match(s.error!, cases[i]![1], `${cases[i]![0]}: ${s.error}`);
  }
  // The submitter refuses the same mistakes before they reach ZooKeeper.
  for (const bad of [{}, { handler: 5 }, { cmd: 'x', handler: 'y' }, { handler: 'echo', maxAttempts: 0 }]) {
    await assert.rejects(farm.sub.submit(bad as never), (e: unknown) => hasCode(e, ErrorCodes.INVALID_TASK));
  }
  await assertWhole(farm);
});

test('a task bigger than ZooKeeper accepts: the submitter refuses it with a clear error, ZooKeeper refuses a raw one', async () => {
  const before = (await farm.admin.getChildren(PATHS.tasks)).length;
  const big = { handler: 'echo', input: 'x'.repeat(2 * 1024 * 1024) };
  await assert.rejects(farm.sub.submit(big), (e: unknown) => {
    assert.ok(hasCode(e, ErrorCodes.INVALID_TASK), String(e));
    assert.match((e as Error).message, /bytes of JSON; the limit is \d+/);
    assert.match((e as Error).message, /reference/, 'says what to do instead');
    return true;
  });
  // One oversized task among good ones: nothing of the batch is sent.
  const batch = [
    { handler: 'echo', input: 1 },
    { handler: 'echo', input: 'y'.repeat(600 * 1024) },
    { handler: 'echo', input: 3 },
  ];
  await assert.rejects(farm.sub.submitMany(batch), (e: unknown) => /task #2/.test((e as Error).message));
  assert.equal((await farm.admin.getChildren(PATHS.tasks)).length, before, 'nothing was submitted');

  // A client that does not check sizes writing more than jute.maxbuffer: ZooKeeper itself refuses (it
  // drops the connection). The request is written by hand, past our client's own size checks (a
  // connection told the servers take 8 MiB).
  const raw = await openClient(farm.root, { maxBuffer: 8 * 1024 * 1024 });
  after(() => raw.connection.close());
  const conn = raw.connection;
  const refused = await conn
    .request(
      OP.create,
      'create',
      `${PATHS.tasks}/task-`,
      (w) => {
        w.ustring(conn.serverPath(`${PATHS.tasks}/task-`));
        w.buffer(Buffer.alloc(1024 * 1024 + 100, 0x61));
        w.raw(encodedAcl(OPEN_ACL));
        w.int(2);
      },
      undefined,
    )
    .then(
      () => 'created',
      (err: unknown) => err,
    );
  assert.ok(refused instanceof Error, `refused: ${String(refused)}`);
  await assertWhole(farm);
});

test("a raw task just under ZooKeeper's size limit gets a status and does not stall the farm", async () => {
  // ZooKeeper takes a create of ~1 MB of data, but the master moves a task with a multi that carries the
  // whole task again plus its own bookkeeping: such a task must end with a clear failed status (or run),
  // never wedge the leader in a loop of refused requests.
  const f = await startFarm('near-limit', standardRoles);
  const overhead = '{"handler":"echo","input":""}'.length;
  const data = `{"handler":"echo","input":"${'z'.repeat(1_048_400 - overhead)}"}`;
  const id = await rawTask(f, data);
  const canaries = [await submit(f, { handler: 'echo', input: 'after the big one' })];
  const s = await waitStatus(f, id, 60_000);
  if (s.state === 'failed') assert.match(s.error!, /large|size|bytes|limit/i, s.error);
  for (const c of canaries) assert.equal((await waitStatus(f, c, 60_000)).state, 'succeeded');
  await assertWhole(f);
});

// ---------------------------------------------------------------------------------------------------
// Handlers that misbehave
// ---------------------------------------------------------------------------------------------------

test('a handler that throws (an Error, a string, null) fails its task with the reason; retries are bounded', async () => {
  const err = await submit(farm, { handler: 'throws', input: { n: 1 } });
  const str = await submit(farm, { handler: 'throwsString' });
  const nul = await submit(farm, { handler: 'throwsNull' });
  const retried = await submit(farm, { handler: 'throws', input: 'again', maxAttempts: 3 });
  const permanent = await submit(farm, { handler: 'permanentFailure', maxAttempts: 3 });
  const s = await waitStatus(farm, err);
  assert.equal(s.state, 'failed');
  assert.equal(s.errorCode, ErrorCodes.HANDLER_FAILED);
  assert.match(s.error!, /exploded on \{"n":1\}/);
  assert.match((await waitStatus(farm, str)).error!, /a plain string, not an Error/);
  assert.equal((await waitStatus(farm, nul)).errorCode, ErrorCodes.HANDLER_FAILED);
  const r = await waitStatus(farm, retried);
  assert.equal(r.attempts, 3, 'retried up to maxAttempts');
  const p = await waitStatus(farm, permanent);
  assert.equal(p.attempts, 1, 'an error marked retryable: false is not retried');
  await assertWhole(farm);
});

test('a handler that hangs past its timeout (blocking its thread, or never settling) is stopped and fails', async () => {
  const spin = await submit(farm, { handler: 'blockForever', timeoutMs: 1000 });
  const hang = await submit(farm, { handler: 'hangs', timeoutMs: 1000 });
  const inline = await submit(farm, { handler: 'sleep', input: 600_000, timeoutMs: 500 });
  for (const id of [spin, hang, inline]) {
    const s = await waitStatus(farm, id, 60_000);
    assert.equal(s.state, 'failed');
    assert.equal(s.errorCode, ErrorCodes.TASK_TIMEOUT, `${id}: ${s.error}`);
    assert.match(s.error!, /timeout of \d+ ms/);
  }
  await assertWhole(farm);
});

test('a handler that returns something JSON cannot hold fails RESULT_NOT_SERIALIZABLE; a huge result is kept on disk', async () => {
  const cases = ['bigint', 'circular', 'returnsFunction'];
  const ids = await Promise.all(cases.map((h) => submit(farm, { handler: h, maxAttempts: 3 })));
  for (const [i, id] of ids.entries()) {
    const s = await waitStatus(farm, id);
    assert.equal(s.state, 'failed', cases[i]);
    assert.equal(s.errorCode, ErrorCodes.RESULT_NOT_SERIALIZABLE, `${cases[i]}: ${s.error}`);
    assert.equal(s.attempts, 1, 'not retried: the same code returns the same value');
    assert.match(s.error!, /return plain data/);
  }
  const undef = await waitStatus(farm, await submit(farm, { handler: 'returnsUndefined' }));
  assert.equal(undef.state, 'succeeded');
  assert.equal(undef.result, null);
  // 2 MB of result does not fit a znode: the status says so, result.json has it all.
  const huge = await waitStatus(farm, await submit(farm, { handler: 'hugeResult' }), 60_000);
  assert.equal(huge.state, 'succeeded');
  assert.equal(huge.result, undefined);
  assert.equal(huge['resultTruncated'], true);
  const onDisk = JSON.parse(readFileSync(join(String(huge['outputDir']), 'result.json'), 'utf8'));
  assert.equal(onDisk.result.length, 2_000_000);
  await assertWhole(farm);
});

test('a handler that throws an enormous error message: its task fails with the reason cut short, the worker goes on', async () => {
  // A status must fit in a znode. A 2 MB message must be shortened, not sent as is: ZooKeeper drops the
  // connection of a request over jute.maxbuffer, and a worker that retries the same completion forever
  // would hold this task, and every task it completes after it, in /assign for good.
  const f = await startFarm('huge-error', [
    { kind: 'master', name: 'hm1' },
    { kind: 'worker', name: 'hw1', capacity: 1 },
  ]);
  const id = await submit(f, { handler: 'hugeError' });
  const next = await submit(f, { handler: 'echo', input: 'next' });
  const s = await waitStatus(f, id, 60_000);
  assert.equal(s.state, 'failed');
  assert.equal(s.errorCode, ErrorCodes.HANDLER_FAILED);
  assert.match(s.error!, /^handler "hugeError" failed: eeee/);
  assert.ok(s.error!.length < 300_000, `error cut short (${s.error!.length} characters)`);
  assert.equal((await waitStatus(f, next, 60_000)).result, 'next');
  await assertWhole(f);
});

test('a handler that ends its own pool thread (process.exit) fails its task; the worker lives on', async () => {
  const id = await submit(farm, { handler: 'exitsThread' });
  const s = await waitStatus(farm, id, 60_000);
  assert.equal(s.state, 'failed');
  assert.match(s.error!, /pool thread died|exit/i, s.error);
  await assertWhole(farm);
});

test('an unknown handler, and a shell task on a farm without --allow-shell, fail without running anything', async () => {
  const marker = join(tmp, 'shell-ran');
  const shell = await submit(farm, { cmd: `touch ${marker}` });
  const unknown = await submit(farm, { handler: 'noSuchHandler' });
  const s = await waitStatus(farm, shell);
  assert.equal(s.state, 'failed');
  assert.equal(s.errorCode, ErrorCodes.SHELL_DISABLED);
  assert.match(s.error!, /--allow-shell/);
  assert.equal(s.attempts, 1);
  assert.throws(() => statSync(marker), 'the command did not run');
  const u = await waitStatus(farm, unknown);
  assert.equal(u.errorCode, ErrorCodes.UNKNOWN_HANDLER);
  assert.match(u.error!, /noSuchHandler.*knows .*echo/);
  await assertWhole(farm);
});

// ---------------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------------

test('task ids crafted to escape the workdir: ZooKeeper refuses . and .., the worker refuses the rest', async () => {
  const c = farm.admin;
  // What ZooKeeper itself refuses (server-side path validation, whatever the client): relative elements.
  for (const bad of ['..', '.', '../x']) {
    await assert.rejects(
      c.create(`${PATHS.tasks}/${bad}`, '{"handler":"echo"}'),
      `ZooKeeper refuses /tasks/${bad}`,
    );
  }
  // Names ZooKeeper accepts, and that a worker could therefore receive. None may become a path.
  const crafted = [
    '..%2F..%2Fescaped',
    '...',
    '.hidden',
    'a b',
    '-rf',
    '$(touch pwned)',
    'a\\b',
    'x:y',
    '名前',
    'n'.repeat(200),
  ];
  for (const name of crafted) await c.create(taskPath(name), '{"handler":"echo","input":"crafted"}');
  // And straight into a worker's assignments, skipping the master.
  await c.create(assignPath('w1', '..%2Fdirect'), '{"handler":"echo"}');
  const all = [...crafted, '..%2Fdirect'];
  farm.ids.push(...all);
  for (const name of all) {
    const s = await waitStatus(farm, name);
    assert.equal(s.state, 'failed', JSON.stringify(name));
    assert.equal(s.errorCode, ErrorCodes.INVALID_NAME, `${JSON.stringify(name)}: ${s.error}`);
    assert.match(s.error!, /cannot be used as a directory/);
  }
  // Nothing was written outside <workdir>/<worker>/, and nothing under a crafted name.
  for (const w of readdirSync(farm.workdir)) {
    if (w.startsWith('.')) continue;
    for (const entry of readdirSync(join(farm.workdir, w)))
      assert.match(entry, /^task-\d{10}$/, `${w}/${entry}`);
  }
  assert.deepEqual(
    readdirSync(tmp).filter((e) => /escaped|pwned|direct/.test(e)),
    [],
    'nothing escaped into the directory above the workdir',
  );
  await assertWhole(farm);
});

test('options that make no sense (a batch size of 0 or NaN, a negative queue wait) are refused up front with INVALID_ARGUMENT', async () => {
  const root = await zk.chroot('bad-options');
  const invalid = (option: string) => (e: unknown) =>
    (e as { code?: string }).code === 'ZKFARM_INVALID_ARGUMENT' &&
    new RegExp(`^${option}: expected a whole number`).test((e as Error).message);
  // A batch size of NaN used to make submitMany loop for ever; now nothing connects.
  await assert.rejects(Submitter.open({ connect: root, batchSize: Number.NaN }), invalid('batchSize'));
  await assert.rejects(Submitter.open({ connect: root, batchSize: 0 }), invalid('batchSize'));
  await assert.rejects(Submitter.open({ connect: root, maxQueue: 0 }), invalid('maxQueue'));
  await assert.rejects(Submitter.open({ connect: root, queueWaitMs: -1 }), invalid('queueWaitMs'));
  assert.throws(() => new Master({ name: 'm1', connect: root, batchSize: 0.5 }), invalid('batchSize'));
  assert.throws(() => new Master({ name: 'm1', connect: root, maxLost: 0 }), invalid('maxLost'));
  assert.throws(
    () => new Worker({ name: 'w1', connect: root, workdir: join(tmp, 'opts-work'), capacity: 0 }),
    invalid('capacity'),
  );
  // A submitter with a large batch size is held to ZooKeeper's multi bounds and still works.
  const sub = await Submitter.open({ connect: root, batchSize: 1000 });
  cleanups.push(() => sub.close());
  assert.equal((await sub.submitMany(Array.from({ length: 450 }, () => ({ handler: 'noop' })))).length, 450);
});

test('two roles claiming one name: the second is refused with NAME_TAKEN, the first keeps running', async () => {
  // In one spec: refused before anything starts.
  await assert.rejects(
    Host.start({
      connect: farm.root,
      workdir: join(tmp, 'dup'),
      roles: [
        { kind: 'worker', name: 'x' },
        { kind: 'worker', name: 'x' },
      ],
    }),
    (e: unknown) => hasCode(e, ErrorCodes.CONFIG_INVALID) && /appears twice/.test((e as Error).message),
  );
  // A second host on the same farm with a worker and a master named like live ones (both at once: each
  // waits its whole bound for the live role's node to go before it is refused).
  const claim = async (spec: { kind: 'worker' | 'master'; name: string }) => {
    const t0 = Date.now();
    await assert.rejects(
      Host.start(
        {
          connect: farm.root,
          // The claimer's own timeout sets its wait (2 × it + 4 s): short, the live node never goes anyway.
          sessionTimeout: 2000,
          workdir: join(tmp, `dup-${spec.name}`),
          roles: [spec],
        },
        {
          logger: createLogger({ level: 'fatal', pretty: false, destination: sink }),
          restart: false,
          spawn: sourceThreads,
        },
      ),
      (e: unknown) => {
        assert.ok(hasCode(e, ErrorCodes.NAME_TAKEN), String(e));
        assert.match((e as Error).message, new RegExp(`"${spec.name}" is held by another live ${spec.kind}`));
        assert.match((e as Error).message, /another name|stop the other/);
        return true;
      },
    );
    assert.ok(Date.now() - t0 < 60_000, 'refused within a bounded wait');
  };
  await Promise.all([claim({ kind: 'worker', name: 'w1' }), claim({ kind: 'master', name: 'm1' })]);
  await assertWhole(farm);
});

// ---------------------------------------------------------------------------------------------------
// The operator's mistakes
// ---------------------------------------------------------------------------------------------------

test('a workdir that cannot be written (a file in the way) is refused at start with a clear error', async () => {
  const file = join(tmp, 'not-a-dir');
  writeFileSync(file, 'in the way');
  await assert.rejects(
    Host.start(
      { connect: farm.root, workdir: join(file, 'sub'), roles: [{ kind: 'worker', name: 'wd1' }] },
      {
        logger: createLogger({ level: 'fatal', pretty: false, destination: sink }),
        restart: false,
        spawn: sourceThreads,
      },
    ),
    (e: unknown) => {
      assert.ok(hasCode(e, ErrorCodes.WORKDIR_UNWRITABLE), String(e));
      assert.match((e as Error).message, /cannot be written \(it, or a directory above it, is a file\)/);
      assert.match((e as Error).message, /--workdir/);
      return true;
    },
  );
  // Through the CLI: one line, a non-zero exit, nothing left running.
  const r = await runCli(
    ['--zk', farm.root, '--masters', '0', '--workers', '1', '--workdir', file, '--name-prefix', 'wdcli'],
    { xdgDir: xdg },
  );
  assert.notEqual(r.code, 0, r.stderr);
  assert.match(r.stderr, /work directory .* cannot be written/);
  assert.deepEqual(processesMentioning(file), [], 'no process left behind');
  await assertWhole(farm);
});

test('a worker whose own output directory is blocked mid-run fails its tasks with the reason, loses none, lives on', async () => {
  const workdir = join(tmp, 'blocked-work');
  const f = await startFarm(
    'blocked',
    [
      { kind: 'master', name: 'bm1' },
      { kind: 'worker', name: 'bw1', capacity: 2 },
    ],
    { workdir },
  );
  // Not tracked by the invariant check: its output directory is about to be removed.
  const first = await f.sub.submit({ handler: 'writesFile', input: 1 });
  assert.equal((await waitStatus(f, first)).state, 'succeeded');
  // Someone replaces the worker's directory with a file.
  rmSync(join(workdir, 'bw1'), { recursive: true, force: true });
  writeFileSync(join(workdir, 'bw1'), 'in the way');
  // Tasks that write files fail, saying why; tasks that need no directory still run.
  const writers = await Promise.all(
    [1, 2, 3].map((i) => submit(f, { handler: 'writesFile', input: i, maxAttempts: 2 })),
  );
  const echo = await submit(f, { handler: 'echo', input: 'no files' });
  for (const id of writers) {
    const s = await waitStatus(f, id);
    assert.equal(s.state, 'failed');
    assert.equal(s.errorCode, ErrorCodes.WORKDIR_UNWRITABLE);
    assert.match(s.error!, /cannot make the task's output directory/);
  }
  assert.equal((await waitStatus(f, echo)).result, 'no files');
  rmSync(join(workdir, 'bw1'));
  await assertWhole(f);
});

test('an unreachable ZooKeeper: a host gives up at connectTimeout with a clear error (the CLI side is in cli.test.ts)', async () => {
  const [dead] = await freePorts(1);
  const t0 = Date.now();
  await assert.rejects(
    Host.start(
      {
        connect: `127.0.0.1:${dead}`,
        connectTimeout: 1500,
        workdir: join(tmp, 'unreachable'),
        roles: [{ kind: 'worker', name: 'u1' }],
      },
      {
        logger: createLogger({ level: 'fatal', pretty: false, destination: sink }),
        restart: false,
        spawn: sourceThreads,
      },
    ),
    (e: unknown) => {
      assert.ok(hasCode(e, ErrorCodes.ZK_UNREACHABLE), String(e));
      assert.match(
        (e as Error).message,
        new RegExp(`could not reach ZooKeeper at 127\\.0\\.0\\.1:${dead} within 1500 ms`),
      );
      return true;
    },
  );
  assert.ok(Date.now() - t0 < 60_000, 'a bounded wait');
  // A config file's zk that does not answer: the message says where the address came from.
  const cfg = join(tmp, 'unreachable.yaml');
  writeFileSync(cfg, `zk: 127.0.0.1:${dead}\nroles:\n  - type: worker\n`);
  const r = await runCli(
    ['--config', cfg, '--connect-timeout', '1500', '--workdir', join(tmp, 'unreachable-cli')],
    { xdgDir: xdg },
  );
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(`cannot reach ZooKeeper at 127\\.0\\.0\\.1:${dead} \\(from the config file\\) within 1500 ms`),
  );
});

test('runtime waits for a ZooKeeper that comes up within --connect-timeout, then runs', async () => {
  const [port] = await freePorts(1);
  const workdir = join(tmp, 'late-zk');
  const rt = spawnRuntime(
    [
      '--zk',
      `127.0.0.1:${port}`,
      '--connect-timeout',
      '90000',
      '--masters',
      '1',
      '--workers',
      '1',
      '--workdir',
      workdir,
      '--name-prefix',
      'late',
      '--session-timeout',
      '4000',
      '--log-level',
      'warn',
    ],
    { xdgDir: xdg },
  );
  cleanups.push(() => rt.stop('SIGKILL'));
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(rt.child.exitCode, null, `still waiting, not failed: ${rt.stderr()}`);
  const server = await startZkServer({ port });
  cleanups.push(() => server.stop());
  await rt.waitForOutput(/runtime: ready: 1 master, 1 worker/, 90_000);
  const r = await runCli(
    [
      'submit',
      '--zk',
      `127.0.0.1:${port}`,
      '--wait',
      '--timeout',
      '30000',
      '{"handler":"echo","input":"late"}',
    ],
    { xdgDir: xdg },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /"result":"late"/);
  assert.equal(await rt.stop('SIGTERM'), 0, rt.stderr());
});

test('config mistakes only a starting farm can find (handler modules that load badly): exit 2, one line, nothing left running', async () => {
  // The file-level mistakes (types, keys, names, YAML) are in config.test.ts and cli.test.ts; these are
  // found when a worker loads its handler modules.
  const dir = join(tmp, 'cfg');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'syntax.mjs'), 'export function broken( {\n');
  writeFileSync(
    join(dir, 'throws-on-load.mjs'),
    "throw new Error('cannot load: no licence key');\nexport function x() {}\n",
  );
  const noHandlers = fileURLToPath(new URL('./fixtures/no-handlers.mjs', import.meta.url));
  const clash = fileURLToPath(new URL('./fixtures/handlers-clash.mjs', import.meta.url));
  const cases: Array<[string, string[], RegExp]> = [
    [
      'a module with a syntax error',
      [join(dir, 'syntax.mjs')],
      /handler module .*syntax\.mjs.* could not be loaded/,
    ],
    [
      'a module that throws while loading',
      [join(dir, 'throws-on-load.mjs')],
      /could not be loaded: .*no licence key/,
    ],
    ['a module that exports no functions', [noHandlers], /exports no functions/],
    ['two modules defining one handler', [FIXTURE, clash], /handler "square" is defined twice/],
  ];
  for (const [what, modules, line] of cases) {
    const cfg = join(dir, `${what.replace(/\W+/g, '-')}.yaml`);
    writeFileSync(
      cfg,
      `handlerModules:\n${modules.map((m) => `  - ${m}\n`).join('')}roles:\n  - type: worker\n`,
    );
    const workdir = join(dir, `work-${what.replace(/\W+/g, '-')}`);
    const r = await runCli(
      [
        '--config',
        cfg,
        '--zk',
        farm.root,
        '--workdir',
        workdir,
        '--name-prefix',
        'cfg',
        '--log-level',
        'fatal',
      ],
      {
        xdgDir: xdg,
        timeoutMs: 90_000,
      },
    );
    assert.equal(r.code, 2, `${what}: exit ${r.code}; ${r.stderr}`);
    const last = r.stderr.trim().split('\n').at(-1)!;
    assert.match(last, /^runtime: /, what);
    assert.match(last, line, `${what}: ${last}`);
    assert.deepEqual(processesMentioning(workdir), [], `${what}: nothing left running`);
  }
  await assertWhole(farm);
});

test('statuses of every test in this file: each task has exactly one, never overwritten', async () => {
  await waitForStatuses(farm.admin, farm.ids, 30_000);
  const report = await checkInvariants(farm.admin, farm.ids, { workdir: farm.workdir });
  assert.deepEqual(report.problems, []);
  for (const id of farm.ids.slice(0, 3)) parseStatus((await farm.admin.getData(statusPath(id))).data);
  await until(async () => (await farm.admin.getChildren(PATHS.tasks)).length === 0, 10_000, 'an empty queue');
});
