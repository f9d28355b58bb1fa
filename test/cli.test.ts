/**
 * The `runtime` command as a user runs it, as child processes:
 * - usage and config mistakes: exit 2, ONE line on stderr naming the file/flag and field, nothing started;
 * - a farm on the test ZooKeeper (--zk with a chroot): submit (argument, stdin, NDJSON file, --wait),
 *   status (table and --json), exit codes, SIGINT ends it with exit 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { countResults } from '../src/farm/status-store.js';
import { Cli, type Result } from './helpers/cli.js';
import { proxyConnectString, startFaultProxy } from './helpers/faults.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const ROOT = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-cli-test-'));
const xdg = join(tmp, 'xdg');
after(() => rmSync(tmp, { recursive: true, force: true }));

function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_RUNTIME_DIR: xdg, ...extra };
  if (!('ZKFARM_ZK' in extra)) delete env['ZKFARM_ZK'];
  return env;
}

/** Run a command to completion (bounded). */
function cli(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}) {
  return new Cli(args, { env: childEnv(options.env), input: options.input }).exit(
    options.timeoutMs ?? 60_000,
  );
}

function assertOneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  return lines[0]!;
}

// Each case is its own short-lived process with its own files: three at a time keep both cores busy.
describe('usage and config errors: exit 2, one line, nothing started', { concurrency: 3 }, () => {
  let n = 0;
  const config = (text: string) => {
    const path = join(tmp, `farm-${++n}.yaml`);
    writeFileSync(path, text);
    return path;
  };
  const cases: Array<{ name: string; args: () => string[]; line: RegExp }> = [
    {
      name: '--workers -1',
      args: () => ['--workers', '-1'],
      line: /--workers <n>.*expected a whole number from 0 to 1024, got "-1"/,
    },
    {
      name: '--capacity abc',
      args: () => ['--capacity', 'abc'],
      line: /--capacity <n>.*expected a whole number from 1 to 1024, got "abc"/,
    },
    { name: '--masters 1.5', args: () => ['start', '--masters', '1.5'], line: /--masters <n>.*got "1\.5"/ },
    {
      name: '--prefetch lots',
      args: () => ['--prefetch', 'lots'],
      line: /--prefetch <n\|auto>.*expected a whole number from 0 to 65536, or "auto", got "lots"/,
    },
    {
      name: 'an unknown option',
      args: () => ['--wrokers', '3'],
      line: /unknown option '--wrokers' \(Did you mean --workers\?\)$/,
    },
    { name: 'an unknown command', args: () => ['bogus'], line: /unknown command "bogus"/ },
    {
      name: '--log-level loud',
      args: () => ['--log-level', 'loud'],
      line: /--log-level <level>.*expected "fatal", "error", .* or "silent", got "loud"/,
    },
    {
      name: '--zk without a port',
      args: () => ['--zk', 'localhost'],
      line: /--zk <connect>.*expected a connect string like .*, got "localhost"/,
    },
    {
      name: 'unknown role type',
      args: () => ['--config', config('roles:\n  - type: master\n  - type: wroker\n')],
      line: /farm-\d+\.yaml: roles\[1\]\.type: expected "master" or "worker", got "wroker"$/,
    },
    {
      name: 'negative count',
      args: () => ['--config', config('roles:\n  - type: worker\n    count: -1\n')],
      line: /farm-\d+\.yaml: roles\[0\]\.count: expected a whole number from 1 to 1024, got -1$/,
    },
    {
      name: 'bad YAML',
      args: () => ['--config', config('roles:\n  - type: worker\n   count: 2\n')],
      line: /farm-\d+\.yaml: line 3, column \d+: bad YAML: /,
    },
    {
      name: 'missing handler module',
      args: () => ['--config', config('handlerModules: [./missing-handlers.mjs]\n')],
      line: new RegExp(
        `farm-\\d+\\.yaml: handlerModules\\[0\\]: handler module "\\./missing-handlers\\.mjs" not found: no file at ${tmp}/missing-handlers\\.mjs`,
      ),
    },
    {
      name: 'unknown key',
      args: () => ['--config', config('workers: 3\n')],
      line: /farm-\d+\.yaml: workers: unknown key "workers"/,
    },
    {
      name: 'duplicate names',
      args: () => ['--config', config('roles:\n  - {type: master, name: a}\n  - {type: worker, name: a}\n')],
      line: /farm-\d+\.yaml: roles\[1\]\.name: duplicate role name "a"/,
    },
    {
      name: 'a missing config file',
      args: () => ['--config', join(tmp, 'nope.yaml')],
      line: /nope\.yaml: cannot read the config file: no such file/,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const workdir = join(tmp, `work-${++n}`);
      const started = Date.now();
      const r = await cli([...c.args(), '--workdir', workdir], { timeoutMs: 30_000 });
      assert.equal(r.code, 2, `exit code; stderr:\n${r.stderr}`);
      assert.match(assertOneLine(r.stderr), c.line);
      assert.match(r.stderr, /^runtime: /);
      assert.equal(r.stdout, '', 'nothing on stdout (no logs: nothing started)');
      assert.equal(existsSync(workdir), false, 'no workdir (no embedded ZooKeeper) was created');
      assert.equal(
        existsSync(xdg) && readdirSync(xdg, { recursive: true }).some((f) => String(f).endsWith('.json')),
        false,
      );
      assert.ok(Date.now() - started < 30_000);
    });
  }

  test('submit: a TASK_JSON that is not JSON, or not a task', async () => {
    const a = await cli(['submit', '--zk', '127.0.0.1:1', '{nope'], { timeoutMs: 30_000 });
    assert.equal(a.code, 2);
    assert.match(assertOneLine(a.stderr), /^runtime: TASK_JSON: not valid JSON/);
    const b = await cli(['submit', '--zk', '127.0.0.1:1', '{"x":1}'], { timeoutMs: 30_000 });
    assert.equal(b.code, 2);
    assert.match(
      assertOneLine(b.stderr),
      /^runtime: TASK_JSON: invalid task: .*exactly one of "cmd".*"handler"/,
    );
  });

  test('--help on every command: exit 0', async () => {
    const helps = [['--help'], ['start', '--help'], ['submit', '--help'], ['status', '--help']];
    const answers = await Promise.all(helps.map((args) => cli(args, { timeoutMs: 30_000 })));
    answers.forEach((r, i) => {
      assert.equal(r.code, 0, helps[i]!.join(' '));
      assert.match(r.stdout, /^Usage: runtime/);
    });
    const start = answers[1]!;
    for (const flag of [
      '--masters',
      '--workers',
      '--zk',
      '--config',
      '--workdir',
      '--capacity',
      '--allow-shell',
      '--session-timeout',
      '--name-prefix',
      '--log-level',
      '--auth',
    ]) {
      assert.ok(start.stdout.includes(flag), `start --help lists ${flag}`);
    }
  });
});

describe('a farm on a given ZooKeeper (--zk with a chroot)', () => {
  const zk = useZooKeeper();
  let connect: string;
  let farm: Cli;
  const workdir = join(tmp, 'zk-farm-work');

  before(async () => {
    connect = await zk.chroot('cli');
    farm = new Cli(
      [
        '--zk',
        connect,
        '--masters',
        '1',
        '--workers',
        '2',
        '--capacity',
        '2',
        '--name-prefix',
        'clitest',
        '--workdir',
        workdir,
        '--log-level',
        'warn',
      ],
      { env: childEnv() },
    );
    await farm.waitForErr(/runtime: ready: 1 master, 2 workers on /, 120_000);
  });
  after(async () => {
    if (farm.proc.exitCode === null) farm.proc.kill('SIGKILL');
  });

  test('it says where it runs and how to submit, and starts no embedded ZooKeeper', () => {
    assert.doesNotMatch(farm.stderr, /embedded ZooKeeper/);
    assert.ok(farm.stderr.includes(`--zk ${connect}`), 'the hint names the connect string');
    assert.equal(existsSync(join(workdir, 'zookeeper')), false);
  });

  test('submit --wait: prints the id, then the result; exit 0', async () => {
    const r = await cli([
      'submit',
      '--zk',
      connect,
      '--wait',
      '--timeout',
      '30000',
      '{"handler":"echo","input":"hi"}',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [id, result, ...rest] = r.stdout.trimEnd().split('\n');
    assert.match(id!, /^task-\d{10}$/);
    assert.equal(rest.length, 0);
    const status = JSON.parse(result!);
    assert.equal(status.id, id);
    assert.equal(status.state, 'succeeded');
    assert.equal(status.result, 'hi');
    assert.match(status.worker, /^clitest-worker-[12]$/);
  });

  test('submit --wait of a failing task: exit 1', async () => {
    const r = await cli(['submit', '--zk', connect, '--wait', '{"handler":"fail","input":"on purpose"}']);
    assert.equal(r.code, 1);
    const status = JSON.parse(r.stdout.trimEnd().split('\n')[1]!);
    assert.equal(status.state, 'failed');
    assert.match(status.error, /on purpose/);
    assert.match(r.stderr, /1 failed of 1 task/);
  });

  test('submit from stdin, as `echo ... | sendtask` did', async () => {
    const r = await cli(['submit', '--zk', connect, '--wait'], {
      input: '{"handler":"echo","input":[1,2]}\n',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trimEnd().split('\n')[1]!).result, [1, 2]);
  });

  test('submit --file: many tasks, blank lines skipped, one result per task', async () => {
    const file = join(tmp, 'tasks.ndjson');
    const lines = Array.from({ length: 12 }, (_, i) => JSON.stringify({ handler: 'echo', input: i }));
    writeFileSync(file, `${lines.slice(0, 6).join('\n')}\n\n${lines.slice(6).join('\n')}\n`);
    const r = await cli(['submit', '--zk', connect, '--file', file, '--wait']);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.trimEnd().split('\n');
    const ids = out.slice(0, 12);
    assert.ok(ids.every((id) => /^task-\d{10}$/.test(id)));
    const results = out.slice(12).map((l) => JSON.parse(l));
    assert.equal(results.length, 12);
    assert.deepEqual(
      results.map((s) => s.input ?? s.result).sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, i) => i),
    );
    assert.deepEqual(new Set(results.map((s) => s.id)), new Set(ids));
  });

  test('submit --wait of plain tasks loads neither zod nor @opentelemetry/core (a short-lived command pays each load)', async () => {
    const file = join(tmp, 'plain.ndjson');
    writeFileSync(file, `${Array.from({ length: 5 }, () => '{"handler":"noop"}').join('\n')}\n`);
    const probe = join(ROOT, 'test', 'fixtures', 'require-probe.mjs');
    const args = ['submit', '--zk', connect, '--connect-timeout', '20000', '--file', file, '--wait'];
    const r = await new Cli(args, { env: childEnv(), nodeArgs: ['--import', probe] }).exit(60_000);
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout.trimEnd().split('\n');
    assert.equal(out.filter((l) => /^task-\d{10}$/.test(l)).length, 5, r.stdout);
    assert.equal(out.filter((l) => l.startsWith('{') && JSON.parse(l).state === 'succeeded').length, 5);
    const loaded = /^require-probe: (.*)$/m.exec(r.stderr)?.[1]?.split(' ') ?? [];
    assert.ok(loaded.includes('@opentelemetry/api'), `the probe sees what submit loads: ${loaded.join(' ')}`);
    assert.deepEqual(
      loaded.filter((p) => p === 'zod' || p === '@opentelemetry/core'),
      [],
      'loaded by a submit of plain tasks',
    );
  });

  test('submit --file with a bad line: exit 2 naming the line; what came before is submitted; --skip goes on', async () => {
    const raw = await zk.rawClient(connect);
    const before = await countResults(raw);
    const file = join(tmp, 'bad.ndjson');
    const good = (i: number) => JSON.stringify({ handler: 'echo', input: i });
    writeFileSync(file, `${good(1)}\n\n${good(2)}\n{"handler": oops}\n${good(3)}\n`);
    const r = await cli(['submit', '--zk', connect, '--file', file]);
    assert.equal(r.code, 2);
    const line = assertOneLine(r.stderr);
    assert.match(line, /bad\.ndjson:4: not valid JSON/);
    assert.match(line, /2 tasks before it were submitted/);
    assert.match(line, /runtime submit --file \S+bad\.ndjson --skip 3/);
    const first = r.stdout.trimEnd().split('\n');
    assert.equal(first.length, 2, 'the ids of lines 1 and 3');
    // Fixed, and resumed from the bad line.
    writeFileSync(file, `${good(1)}\n\n${good(2)}\n${good(4)}\n${good(3)}\n`);
    const again = await cli(['submit', '--zk', connect, '--file', file, '--skip', '3', '--wait']);
    assert.equal(again.code, 0, again.stderr);
    const results = again.stdout
      .trimEnd()
      .split('\n')
      .slice(2)
      .map((l) => JSON.parse(l).result);
    assert.deepEqual(results.sort(), [3, 4]);
    await until(async () => (await countResults(raw)) === before + 4, 30_000, 'four results, none twice');
  });

  test('JSON lines on stdin cut off part-way: exit 1, and the ids ZooKeeper confirmed are printed', async () => {
    const root = await zk.chroot('cli-cut'); // no farm: what is submitted stays in /tasks
    const admin = await zk.rawClient(root);
    await admin.create('/tasks');
    const proxy = await startFaultProxy({ target: zk.server.connectString });
    after(() => proxy.close());
    proxy.setDelay(40); // each multi's answer comes 80 ms after it was sent: time to cut between them
    const input = Array.from({ length: 6000 }, (_, i) => `{"handler":"echo","input":${i}}\n`).join('');
    const run = new Cli(['submit', '--zk', proxyConnectString(proxy, root), '--connect-timeout', '20000'], {
      env: childEnv(),
      input,
    });
    await until(async () => (await admin.getChildren('/tasks')).length >= 1000, 30_000, 'a part is in');
    proxy.cut();
    const r = await run.exit(60_000);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /may or may not be in \/tasks.*runtime submit printed the \d+ ids confirmed/);
    const printed = r.stdout.trimEnd().split('\n').filter(Boolean);
    assert.ok(printed.length > 0, `the confirmed ids are printed; stderr: ${r.stderr}`);
    const inTasks = new Set(await admin.getChildren('/tasks'));
    assert.deepEqual(
      printed.filter((id) => !inTasks.has(id)),
      [],
      'every id printed is in /tasks',
    );
    assert.ok(inTasks.size < 6000, 'the cut came before the end');
  });

  test('submit --file --on-bad skip: each bad line is reported with its number and skipped', async () => {
    const file = join(tmp, 'skip.ndjson');
    writeFileSync(file, '{"handler":"echo","input":1}\n{"input":2}\n[]\n{"handler":"echo","input":3}\n');
    const r = await cli(['submit', '--zk', connect, '--file', file, '--on-bad', 'skip', '--wait']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /skip\.ndjson:2: invalid task: .* \(skipped\)/);
    assert.match(r.stderr, /skip\.ndjson:3: .* \(skipped\)/);
    assert.match(r.stderr, /2 tasks submitted from \S+skip\.ndjson, 2 bad lines skipped/);
    const results = r.stdout
      .trimEnd()
      .split('\n')
      .slice(2)
      .map((l) => JSON.parse(l).result);
    assert.deepEqual(results.sort(), [1, 3]);
  });

  test('status --json: the leader, the workers with capacity and load, the recent failures', async () => {
    const r = await cli(['status', '--zk', connect, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.connect, connect);
    assert.equal(s.source, 'flag');
    assert.equal(s.leader.name, 'clitest-master-1');
    assert.deepEqual(s.standbys, []);
    assert.deepEqual(
      s.workers.map((w: { name: string }) => w.name),
      ['clitest-worker-1', 'clitest-worker-2'],
    );
    for (const w of s.workers) {
      assert.equal(w.capacity, 2);
      assert.equal(w.load, 0);
      assert.equal(w.paused, false);
    }
    assert.equal(s.queued, 0);
    assert.equal(s.assigned, 0);
    assert.ok(s.statuses >= 15, `statuses: ${s.statuses}`);
    assert.ok(s.recentFailures.some((f: { error: string }) => /on purpose/.test(f.error)));
  });

  test('status: a readable table', async () => {
    const r = await cli(['status', '--zk', connect]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^leader\s+clitest-master-1/m);
    assert.match(r.stdout, /^standbys\s+none/m);
    assert.match(r.stdout, /^clitest-worker-1\s+0\s+2\s+ready/m);
    assert.match(r.stdout, /^recent failures/m);
    assert.match(r.stdout, /on purpose/);
  });

  test('queue pause/set/resume/ls: the controls as stored, a paused queue holds its task, status shows it', async () => {
    const paused = await cli(['queue', 'pause', 'default', '--zk', connect]);
    assert.equal(paused.code, 0, paused.stderr);
    assert.equal(paused.stdout.trim(), 'default: paused, rate limit none, concurrency none');
    const set = await cli([
      'queue',
      'set',
      'default',
      '--zk',
      connect,
      '--rate-limit',
      '50',
      '--concurrency',
      '3',
    ]);
    assert.equal(set.stdout.trim(), 'default: paused, rate limit 50/s, concurrency 3');
    const sub = await cli(['submit', '--zk', connect, '{"handler":"echo","input":"held","priority":4}']);
    const id = sub.stdout.trim();
    // The leader holds it and says why (its summary is rewritten at most once a second).
    let ls = '';
    for (let i = 0; i < 100 && !/default: 1 task wait: queue "default" is paused/.test(ls); i++) {
      await new Promise((r) => setTimeout(r, 100));
      ls = (await cli(['queue', 'ls', '--zk', connect])).stdout;
    }
    assert.match(ls, /^default\s+1\s+0\s+paused\s+50\/s\s+3\s+2$/m, ls);
    assert.match(ls, /default: 1 task wait: queue "default" is paused/);
    const status = await cli(['status', '--zk', connect]);
    assert.match(status.stdout, /^QUEUE\s+WAITING/m);
    assert.match(status.stdout, /^default\s+1\s+0\s+paused/m);
    const json = JSON.parse(
      (await cli(['queue', 'ls', '--zk', connect, '--json'])).stdout.trim().split('\n')[0]!,
    );
    assert.deepEqual(json.controls, { paused: true, rateLimit: 50, concurrency: 3 });
    assert.deepEqual(json.byPriority, { 4: 1 });
    const resumed = await cli(['queue', 'resume', 'default', '--zk', connect]);
    assert.equal(resumed.stdout.trim(), 'default: running, rate limit 50/s, concurrency 3');
    const r = await cli([
      'submit',
      '--zk',
      connect,
      '--wait',
      '--timeout',
      '30000',
      '{"handler":"echo","input":"after"}',
    ]);
    assert.equal(r.code, 0, r.stderr);
    await cli(['queue', 'set', 'default', '--zk', connect, '--rate-limit', 'none', '--concurrency', 'none']);
    assert.match(id, /^task-\d{10}$/);
  });

  test('queue: a bad name or value is a usage error (exit 2) that says what was expected', async () => {
    const bad = await cli(['queue', 'pause', 'no/slash', '--zk', connect]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /queue: expected a queue name/);
    const zero = await cli(['queue', 'set', 'default', '--zk', connect, '--rate-limit', '0']);
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /rateLimit: expected a number of tasks per second > 0/);
    const nothing = await cli(['queue', 'set', 'default', '--zk', connect]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /give --rate-limit/);
  });

  test('a farm whose role names are taken: exit 1, a clear line', async () => {
    const r = await cli(
      [
        '--zk',
        connect,
        '--masters',
        '0',
        '--workers',
        '1',
        '--name-prefix',
        'clitest',
        '--workdir',
        workdir,
        '--session-timeout',
        '2000',
      ],
      { timeoutMs: 90_000 },
    );
    assert.equal(r.code, 1, r.stderr);
    const last = r.stderr.trimEnd().split('\n').at(-1)!;
    assert.match(last, /^runtime: the name "clitest-worker-1" is held by another live worker/);
  });

  test('SIGINT: the farm stops, exit 0, its workers vanish from ZooKeeper', async () => {
    farm.proc.kill('SIGINT');
    const r = await farm.exit(60_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /runtime: stopped/);
    const s = JSON.parse((await cli(['status', '--zk', connect, '--json'])).stdout);
    assert.equal(s.leader, null);
    assert.deepEqual(s.workers, []);
  });
});

describe('bin/runtime.js (the installed command)', () => {
  const built = existsSync(join(ROOT, 'dist', 'src', 'cli', 'main.js'));
  test('runs the compiled CLI with the same exit codes', {
    skip: !built && 'not built: run npm run build',
  }, async () => {
    const run = (args: string[]) =>
      new Promise<Result>((resolve) => {
        const proc = spawn(process.execPath, ['bin/runtime.js', ...args], { cwd: ROOT, env: childEnv() });
        let stdout = '';
        let stderr = '';
        proc.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
        });
        proc.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
        proc.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, stdout, stderr });
        });
      });
    const help = await run(['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: runtime/);
    const bad = await run(['--workers', 'x']);
    assert.equal(bad.code, 2);
    assert.match(assertOneLine(bad.stderr), /--workers <n>.*got "x"/);
  });
});

describe('what a command loads', () => {
  // `runtime submit` is started once per batch of tasks by scripts: it must not pay for the host, the
  // server launcher, the config file's YAML parser, the metrics client or the logger.
  test("runtime submit loads its own modules, not the other commands'", async () => {
    const probe = join(ROOT, 'test', 'fixtures', 'load-probe.mjs');
    const r = await new Cli(['submit', '--help'], { env: childEnv(), nodeArgs: ['--import', probe] }).exit(
      30_000,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: runtime submit/);
    const loaded = [...r.stderr.matchAll(/^load-probe: (.*)$/gm)].map((m) => m[1]!);
    assert.ok(
      loaded.some((u) => /\/src\/cli\/submit\.[jt]s$/.test(u)),
      'the probe saw submit load',
    );
    const unwanted = [
      /\/node_modules\/(yaml|prom-client|pino|cron-parser)\//,
      /\/src\/host\/(host|embedded)\.[jt]s$/,
      /\/src\/zk\/server\.[jt]s$/,
      /\/src\/cli\/start\.[jt]s$/,
    ];
    assert.deepEqual(
      loaded.filter((u) => unwanted.some((w) => w.test(u))),
      [],
      'modules runtime submit does not need',
    );
  });
});

describe('client commands without a farm', () => {
  test('submit to nothing: exit 1 with a line that says what to do', async () => {
    const r = await cli(['submit', '--connect-timeout', '1000', '{"handler":"noop"}'], {
      env: { ZKFARM_ZK: '127.0.0.1:1' },
    });
    assert.equal(r.code, 1);
    assert.match(
      assertOneLine(r.stderr),
      /cannot reach ZooKeeper at 127\.0\.0\.1:1 \(from ZKFARM_ZK\) within 1000 ms/,
    );
  });

  test('status to nothing: exit 1', async () => {
    const r = await cli(['status', '--zk', '127.0.0.1:1', '--connect-timeout', '1000']);
    assert.equal(r.code, 1);
    assert.match(assertOneLine(r.stderr), /cannot reach ZooKeeper at 127\.0\.0\.1:1 \(from --zk\)/);
  });

  test('runtime --zk to nothing: exit 1, nothing left running', async () => {
    const r = await cli([
      '--zk',
      '127.0.0.1:1',
      '--connect-timeout',
      '1000',
      '--workdir',
      join(tmp, 'w-none'),
    ]);
    assert.equal(r.code, 1);
    assert.match(assertOneLine(r.stderr), /cannot reach ZooKeeper at 127\.0\.0\.1:1/);
  });
});
