/**
 * Access control: a farm started with `auth: 'user:password'` creates its nodes with a digest ACL for
 * that identity alone. A client without it cannot submit, read results, or touch assignments, workers
 * or the leader (NO_AUTH); a client with it can (Submitter.open({auth}), `runtime submit --auth`,
 * zkCli's `addauth digest`). Output files are owner-only. Shell tasks stay refused unless allowed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ErrorCodes, hasCode } from '../src/errors.js';
import { assignDir, assignPath, encode, PATHS, statusPath, workerPath } from '../src/farm/protocol.js';
import { Submitter } from '../src/farm/submitter.js';
import { startEmbeddedZooKeeper } from '../src/host/embedded.js';
import { createLogger, Host } from '../src/host/index.js';
import { connect, isZkError, type ZkClient } from '../src/zk/index.js';
import { runCli } from './helpers/chaos.js';
import { sourceThreads } from './helpers/faults.js';
import { checkInvariants } from './helpers/invariants.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
// Registered before useZooKeeper's own hook, so roles close their sessions while the server still runs.
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-acl-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const xdg = join(tmp, 'xdg');
mkdirSync(xdg);

const AUTH = 'farm:s3cret';
const ZKCLI = '/usr/share/zookeeper/bin/zkCli.sh';

async function client(root: string, auth?: string): Promise<ZkClient> {
  const sup = connect({ connect: root, sessionTimeout: 20_000, ...(auth ? { auth } : {}) });
  cleanups.push(() => sup.stop());
  return (await sup.ready).client;
}

/**
 * A farm in a chroot of its own making (`<test chroot>/farm`): the farm creates the chroot node itself,
 * with its ACL, which is the recommended setup (see docs/security.md).
 */
async function startFarm(name: string, extra: { allowShell?: boolean; taskDirs?: 'always' } = {}) {
  const root = `${await zk.chroot(name)}/farm`;
  const workdir = join(tmp, `work-${name}`);
  const host = await Host.start(
    {
      connect: root,
      auth: AUTH,
      sessionTimeout: 6000,
      workdir,
      roles: [
        { kind: 'master', name: 'm1' },
        { kind: 'worker', name: 'w1', capacity: 2 },
        { kind: 'worker', name: 'w2', capacity: 2 },
      ],
      ...extra,
    },
    {
      logger: createLogger({ level: 'warn', pretty: false, destination: process.stderr }),
      spawn: sourceThreads,
    },
  );
  cleanups.push(() => host.stop({ drain: false }));
  return { root, host, workdir };
}

/** An id in the same bucket as `id` that no task has (its last four digits changed). */
function forged(id: string): string {
  return `${id.slice(0, -4)}${id.endsWith('9999') ? '9998' : '9999'}`;
}

function noAuth(e: unknown): boolean {
  assert.ok(isZkError(e, 'NO_AUTH'), `expected NO_AUTH, got ${String(e)}`);
  return true;
}

test('without the identity a client can neither submit, nor read results, nor touch assignments, workers or the leader', async () => {
  const { root, host, workdir } = await startFarm('locked');
  const sub = await Submitter.open({ connect: root, auth: AUTH });
  cleanups.push(() => sub.close());
  const ids = await sub.submitMany([
    { handler: 'echo', input: 'secret result' },
    { handler: 'sleep', input: 4000 },
  ]);
  assert.equal(
    (await sub.waitFor(ids[0]!, { timeoutMs: 30_000 })).result,
    'secret result',
    'the identity can submit and read',
  );

  const stranger = await client(root);
  const wrongPassword = await client(root, 'farm:wrong');
  for (const c of [stranger, wrongPassword]) {
    // Submit
    await assert.rejects(c.createSequential(`${PATHS.tasks}/task-`, '{"handler":"echo"}'), noAuth);
    await assert.rejects(c.getChildren(PATHS.tasks), noAuth);
    // Read results
    await assert.rejects(c.getData(statusPath(ids[0]!)), noAuth);
    await assert.rejects(c.getChildren(PATHS.status), noAuth);
    // A forged result in an existing bucket, and a bucket of one's own: both refused.
    await assert.rejects(c.create(statusPath(forged(ids[0]!)), '{"state":"succeeded"}'), noAuth);
    await assert.rejects(c.create(`${PATHS.status}/999999`), noAuth);
    await assert.rejects(c.remove(statusPath(ids[0]!)), noAuth);
    // Assignments: read, add, remove, steal
    await assert.rejects(c.getChildren(PATHS.assign), noAuth);
    await assert.rejects(c.create(assignPath('w1', 'task-0000000042'), encode({ cmd: 'rm -rf /' })), noAuth);
    await assert.rejects(c.getChildren(assignDir('w2')), noAuth);
    const running = await sub.supervisor.session!.client.getChildren(PATHS.assign);
    assert.ok(running.length > 0);
    // Workers and the leader: no rogue worker joins, no one forges load or deposes the leader.
    await assert.rejects(
      c.createEphemeral(workerPath('rogue'), encode({ capacity: 100, prefetch: 0, paused: false })),
      noAuth,
    );
    await assert.rejects(c.setData(workerPath('w1'), encode({ capacity: 1, paused: true })), noAuth);
    await assert.rejects(c.remove(PATHS.master), noAuth);
    await assert.rejects(c.setData(PATHS.master, '{"name":"evil"}'), noAuth);
  }

  // Everything above changed nothing: the farm is whole.
  const infos = await host.roles();
  assert.ok(infos.every((r) => r.state === 'running'));
  await sub.waitForAll(ids, { timeoutMs: 30_000 });
  const report = await checkInvariants(sub.supervisor.session!.client, ids, { workdir });
  assert.deepEqual(report.problems, []);
});

test('a submitter or a role without the identity fails at once with a clear error instead of retrying forever', async () => {
  const { root } = await startFarm('anonymous');
  // Bounded: after 30 s the attempt is aborted and the test fails saying it hung.
  const abort = AbortSignal.timeout(30_000);
  const t0 = Date.now();
  const opened = await Submitter.open({ connect: root, signal: abort }).then(
    (s) => {
      cleanups.push(() => s.close());
      return s;
    },
    (e: unknown) => e as Error,
  );
  assert.ok(
    !abort.aborted,
    `Submitter.open without the identity was still retrying after ${Date.now() - t0} ms`,
  );
  if (opened instanceof Submitter) {
    // Opening may succeed (the layout exists); submitting must then be refused.
    await assert.rejects(opened.submit({ handler: 'echo', input: 1 }), noAuth);
  } else {
    assert.match(opened.message, /NO_AUTH|--auth|access/, opened.message);
  }
  // Through the CLI, for a submitter and for a host of workers: an exit with a reason, not a hang.
  const submit = await runCli(['submit', '--zk', root, '{"handler":"echo","input":1}'], {
    xdgDir: xdg,
    timeoutMs: 60_000,
  });
  assert.equal(
    submit.code,
    1,
    `runtime submit without --auth: exit ${submit.code} after ${submit.ms} ms; ${submit.stderr}`,
  );
  assert.match(submit.stderr, /NO_AUTH|--auth/);
  const workers = await runCli(
    [
      '--zk',
      root,
      '--masters',
      '0',
      '--workers',
      '1',
      '--workdir',
      join(tmp, 'anon-work'),
      '--name-prefix',
      'anon',
      '--log-level',
      'fatal',
    ],
    { xdgDir: xdg, timeoutMs: 60_000 },
  );
  assert.equal(
    workers.code,
    1,
    `runtime without --auth on a locked farm: exit ${workers.code} after ${workers.ms} ms; ${workers.stderr.slice(-500)}`,
  );
  assert.match(workers.stderr, /NO_AUTH|--auth/);
});

test('output directories are owner-only (0700) and output files too (0600)', async () => {
  const { root, workdir } = await startFarm('modes', { allowShell: true, taskDirs: 'always' });
  const sub = await Submitter.open({ connect: root, auth: AUTH });
  cleanups.push(() => sub.close());
  const [h, sh] = await sub.submitMany([{ handler: 'echo', input: 1 }, { cmd: 'echo out; echo err >&2' }]);
  const hs = await sub.waitFor(h!, { timeoutMs: 30_000 });
  const ss = await sub.waitFor(sh!, { timeoutMs: 30_000 });
  const mode = (p: string) => statSync(p).mode & 0o777;
  for (const s of [hs, ss]) {
    assert.equal(s.state, 'succeeded');
    const dir = join(workdir, s.worker!, s === hs ? h! : sh!);
    assert.equal(mode(dir), 0o700, `${dir}`);
    assert.equal(mode(join(workdir, s.worker!)), 0o700);
    assert.equal(mode(join(dir, 'result.json')), 0o600);
  }
  const shellDir = join(workdir, ss.worker!, sh!);
  assert.equal(mode(join(shellDir, 'stdout.log')), 0o600);
  assert.equal(mode(join(shellDir, 'stderr.log')), 0o600);
});

test("the embedded ZooKeeper's data (every task and result) is not readable by other local users", async () => {
  const workdir = join(tmp, 'embedded');
  const embedded = await startEmbeddedZooKeeper({ workdir, env: { XDG_RUNTIME_DIR: xdg } });
  cleanups.push(() => embedded.stop());
  const mode = statSync(embedded.dataDir).mode & 0o777;
  assert.equal(
    mode & 0o077,
    0,
    `${embedded.dataDir} is ${mode.toString(8)}: group and others can read the snapshots`,
  );
});

test('an authenticated client still cannot run shell commands on a farm that does not allow them', async () => {
  const { root } = await startFarm('no-shell');
  const sub = await Submitter.open({ connect: root, auth: AUTH });
  cleanups.push(() => sub.close());
  const marker = join(tmp, 'ran');
  const s = await sub.waitFor(await sub.submit({ cmd: `touch ${marker}` }), { timeoutMs: 30_000 });
  assert.equal(s.state, 'failed');
  assert.equal(s.errorCode, ErrorCodes.SHELL_DISABLED);
  assert.equal(existsSync(marker), false);
});

test('runtime submit and runtime status with --auth work on an access-controlled farm', async () => {
  const { root } = await startFarm('cli');
  const ok = await runCli(
    [
      'submit',
      '--zk',
      root,
      '--auth',
      AUTH,
      '--wait',
      '--timeout',
      '30000',
      '{"handler":"echo","input":"via cli"}',
    ],
    { xdgDir: xdg },
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /"result":"via cli"/);
  const status = await runCli(['status', '--zk', root, '--auth', AUTH, '--json'], { xdgDir: xdg });
  assert.equal(status.code, 0, status.stderr);
});

test('zkCli: after `addauth digest user:password` it reads results and submits tasks; before, it is refused', {
  skip: !existsSync(ZKCLI) && 'zkCli.sh not installed',
}, async () => {
  const { root } = await startFarm('zkcli');
  const sub = await Submitter.open({ connect: root, auth: AUTH });
  cleanups.push(() => sub.close());
  const id = await sub.submit({ handler: 'echo', input: 'for zkCli' });
  await sub.waitFor(id, { timeoutMs: 30_000 });
  const server = root.slice(0, root.indexOf('/'));
  const chroot = root.slice(root.indexOf('/'));
  const zkCli = (commands: string[]) =>
    spawnSync(ZKCLI, ['-server', server], {
      input: `${commands.join('\n')}\nquit\n`,
      encoding: 'utf8',
      timeout: 60_000,
    });
  const refused = zkCli([`get ${chroot}${statusPath(id)}`]);
  assert.match(refused.stdout + refused.stderr, /Insufficient permission|NoAuth/i);
  assert.doesNotMatch(refused.stdout, /for zkCli/);
  const allowed = zkCli([
    `addauth digest ${AUTH}`,
    `get ${chroot}${statusPath(id)}`,
    // A task from zkCli: `auth::cdrwa` gives it the session's identity, like the farm's own nodes.
    `create -s ${chroot}/tasks/task- {"handler":"echo","input":"from-zkCli"} auth::cdrwa`,
  ]);
  assert.match(allowed.stdout, /"result":"for zkCli"/);
  const created = /Created (\S+\/tasks\/(task-\d{10}))/.exec(allowed.stdout + allowed.stderr);
  assert.ok(created, allowed.stdout + allowed.stderr);
  const s = await sub.waitFor(created[2]!, { timeoutMs: 30_000 });
  assert.equal(s.result, 'from-zkCli');
});

test('nodes made before the farm starts by someone without the identity (open ACL) do not leave the farm open', async () => {
  // Someone without the identity made the chroot node and the farm's layout first, with ZooKeeper's
  // default open ACL (world:anyone:cdrwa). A farm with no chroot is in the same place: ZooKeeper's "/" is open.
  const root = await zk.chroot('squat');
  const squatter = await client(root);
  for (const p of [PATHS.tasks, PATHS.status, PATHS.assign]) await squatter.create(p);
  const workdir = join(tmp, 'work-squat');
  let host: Host | undefined;
  try {
    host = await Host.start(
      {
        connect: root,
        auth: AUTH,
        sessionTimeout: 6000,
        workdir,
        roles: [
          { kind: 'master', name: 'm1' },
          { kind: 'worker', name: 'w1' },
        ],
      },
      {
        logger: createLogger({ level: 'fatal', pretty: false, destination: process.stderr }),
        restart: false,
        spawn: sourceThreads,
      },
    );
    cleanups.push(() => host?.stop({ drain: false }));
  } catch (err) {
    // Refusing to start, naming the open node, is a fine answer too.
    assert.match(String(err), /ACL|open|\/tasks/);
    return;
  }
  // If it started, the layout must be locked now: the squatter can no longer submit or read results.
  await assert.rejects(
    squatter.createSequential(`${PATHS.tasks}/task-`, '{"handler":"echo","input":"from the squatter"}'),
    (e: unknown) => hasCode(e, 'NO_AUTH'),
    'a farm started with --auth must not run tasks anyone can submit',
  );
  await assert.rejects(squatter.getChildren(PATHS.status), (e: unknown) => hasCode(e, 'NO_AUTH'));
  // Deleting /master (and creating a fake one) needs rights on its parent, the farm's root node.
  await assert.rejects(
    squatter.remove(PATHS.master),
    (e: unknown) => hasCode(e, 'NO_AUTH'),
    'a stranger must not be able to depose the leader',
  );
});
