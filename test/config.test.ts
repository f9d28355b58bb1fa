/**
 * The config file and flags: every mistake is ONE line naming the file, the field and expected vs got;
 * flags override the file; discoverConnect's order. No ZooKeeper needed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ErrorCodes, ZkfarmError } from '../src/errors.js';
import { resolveFarmSpec } from '../src/host/config.js';
import { type ConfigFile, loadConfigFile } from '../src/host/config-file.js';
import { discoverConnect, discoveryFilePath } from '../src/host/discovery.js';

const dir = mkdtempSync(join(tmpdir(), 'zkfarm-config-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(name: string, text: string): string {
  const sub = join(dir, `c${++n}`);
  mkdirSync(sub);
  const path = join(sub, name);
  writeFileSync(path, text);
  return path;
}

/** Load `text` as `name` and return the CONFIG_INVALID message (fails the test if it loads). */
async function configError(name: string, text: string): Promise<string> {
  const path = file(name, text);
  try {
    await loadConfigFile(path);
  } catch (err) {
    assert.ok(err instanceof ZkfarmError, `expected a ZkfarmError, got ${String(err)}`);
    assert.equal(err.code, ErrorCodes.CONFIG_INVALID);
    assert.doesNotMatch(err.message, /\n/, 'the message is one line');
    assert.ok(err.message.startsWith(`${path}: `), `the message names the file first: ${err.message}`);
    return err.message.slice(path.length + 2);
  }
  assert.fail(`${name} loaded although it is wrong:\n${text}`);
}

describe('config file errors: one line naming the file, the field, expected and got', () => {
  test('unknown role type', async () => {
    const msg = await configError('farm.yaml', 'roles:\n  - type: master\n  - type: wroker\n');
    assert.equal(msg, 'roles[1].type: expected "master" or "worker", got "wroker"');
  });

  test('negative count', async () => {
    const msg = await configError('farm.yaml', 'roles:\n  - type: worker\n    count: -1\n');
    assert.equal(msg, 'roles[0].count: expected a whole number from 1 to 1024, got -1');
  });

  test('fractional and string counts', async () => {
    assert.equal(
      await configError('farm.yaml', 'roles:\n  - {type: worker, count: 1.5}\n'),
      'roles[0].count: expected a whole number from 1 to 1024, got 1.5',
    );
    assert.equal(
      await configError('farm.yaml', 'roles:\n  - {type: worker, count: "3"}\n'),
      'roles[0].count: expected a whole number from 1 to 1024, got "3"',
    );
  });

  test('bad YAML names the line and column', async () => {
    const msg = await configError('farm.yaml', 'zk: 127.0.0.1:2181\nroles:\n  - type: worker\n   count: 2\n');
    assert.match(msg, /^line 4, column \d+: bad YAML: \S/);
  });

  test('bad JSON names the line and column', async () => {
    const msg = await configError('farm.json', '{\n  "roles": [\n    {"type": "master",}\n  ]\n}\n');
    assert.match(msg, /^line 3, column \d+: bad JSON: \S/);
  });

  test('missing handler module names the module and the resolved path', async () => {
    const path = file('farm.yaml', 'handlerModules:\n  - ./lib/nope.mjs\n');
    const resolved = join(path, '..', 'lib', 'nope.mjs');
    await assert.rejects(loadConfigFile(path), (err: Error) => {
      assert.equal(
        err.message,
        `${path}: handlerModules[0]: handler module "./lib/nope.mjs" not found: no file at ${resolved} ` +
          "(relative paths are resolved against the config file's directory)",
      );
      return true;
    });
  });

  test('missing per-role handler module', async () => {
    const msg = await configError('farm.yaml', 'roles:\n  - type: worker\n    handlerModules: [./x.mjs]\n');
    assert.match(
      msg,
      /^roles\[0\]\.handlerModules\[0\]: handler module "\.\/x\.mjs" not found: no file at \//,
    );
  });

  test('unknown keys are errors, with a hint', async () => {
    assert.equal(
      await configError('farm.yaml', 'sessionTimout: 5000\n'),
      'sessionTimout: unknown key "sessionTimout" (did you mean "sessionTimeout"?)',
    );
    assert.equal(
      await configError('farm.yaml', 'roles:\n  - type: worker\n    capcity: 2\n'),
      'roles[0].capcity: unknown key "capcity" (did you mean "capacity"?)',
    );
    assert.equal(
      await configError('farm.yaml', 'capacity: 2\n'),
      'capacity: unknown key "capacity" ("capacity" is set per role: put it in an entry of roles)',
    );
    assert.match(
      await configError('farm.yaml', 'retention:\n  keep: 3\n'),
      /^retention\.keep: unknown key "keep"/,
    );
  });

  test('duplicate role names', async () => {
    const path = file('farm.yaml', 'roles:\n  - {type: worker, name: w1}\n  - {type: worker, name: w1}\n');
    const config = await loadConfigFile(path);
    assert.throws(
      () => resolveFarmSpec(config, {}, { hostname: 'h' }),
      (err: ZkfarmError) => {
        assert.equal(err.code, ErrorCodes.CONFIG_INVALID);
        assert.match(
          err.message,
          new RegExp(
            `^${path}: roles\\[1\\]\\.name: duplicate role name "w1" \\(also made by roles\\[0\\]\\)`,
          ),
        );
        return true;
      },
    );
  });

  test('a named role that collides with a generated name', async () => {
    const config = await loadConfigFile(
      file(
        'farm.yaml',
        'namePrefix: p\nroles:\n  - {type: worker, name: p-worker-2}\n  - {type: worker, count: 2}\n',
      ),
    );
    assert.throws(() => resolveFarmSpec(config, {}), /roles\[1\]: duplicate role name "p-worker-2"/);
  });

  test('name and count > 1 together', async () => {
    const msg = await configError('farm.yaml', 'roles:\n  - {type: worker, name: w, count: 3}\n');
    assert.match(
      msg,
      /^roles\[0\]\.count: a role with a name is one role: expected no count \(or 1\).*got 3/,
    );
  });

  test('worker-only fields on a master', async () => {
    const msg = await configError('farm.yaml', 'roles:\n  - {type: master, capacity: 3}\n');
    assert.equal(msg, 'roles[0].capacity: only worker roles take capacity, and this role is a master');
    assert.equal(
      await configError('farm.yaml', 'roles:\n  - {type: master, taskDirs: always}\n'),
      'roles[0].taskDirs: only worker roles take taskDirs, and this role is a master',
    );
    assert.equal(
      await configError('farm.yaml', 'taskDirs: sometimes\n'),
      'taskDirs: expected "on-demand" or "always", got "sometimes"',
    );
    assert.equal(
      await configError('farm.yaml', 'roles:\n  - {type: worker, prefetch: lots}\n'),
      'roles[0].prefetch: expected a whole number from 0 to 65536, or "auto", got "lots"',
    );
  });

  test('--prefetch applies to every worker, over the file; auto or a number', async () => {
    const c = await loadConfigFile(
      file('prefetch-flag.yaml', 'roles:\n  - {type: master}\n  - {type: worker, count: 2, prefetch: 6}\n'),
    );
    const workers = (flags: Parameters<typeof resolveFarmSpec>[1]) =>
      resolveFarmSpec(c, flags)
        .roles.filter((r) => r.kind === 'worker')
        .map((r) => r.prefetch);
    assert.deepEqual(workers({}), [6, 6]);
    assert.deepEqual(workers({ prefetch: 0 }), [0, 0]);
    assert.deepEqual(workers({ prefetch: 'auto' }), ['auto', 'auto']);
    assert.deepEqual(
      resolveFarmSpec(undefined, { workers: 2, prefetch: 3 }).roles.map((r) => [r.kind, r.prefetch]),
      [
        ['master', undefined],
        ['worker', 3],
        ['worker', 3],
      ],
    );
  });

  test('prefetch: auto or a number reaches the worker role as written', async () => {
    const c = await loadConfigFile(
      file(
        'prefetch.yaml',
        'roles:\n  - {type: worker, name: a, prefetch: auto}\n  - {type: worker, name: b, prefetch: 6}\n',
      ),
    );
    const roles = resolveFarmSpec(c, {}).roles;
    assert.deepEqual(
      roles.map((r) => [r.name, r.prefetch]),
      [
        ['a', 'auto'],
        ['b', 6],
      ],
    );
  });

  test('bad names, connect strings, auth, types', async () => {
    assert.match(
      await configError('farm.yaml', 'roles:\n  - {type: worker, name: "a/b"}\n'),
      /^roles\[0\]\.name: expected a role name.* got "a\/b"$/,
    );
    assert.match(
      await configError('farm.yaml', 'namePrefix: "-x"\n'),
      /^namePrefix: expected a name prefix.* got "-x"$/,
    );
    assert.match(
      await configError('farm.yaml', 'zk: localhost\n'),
      /^zk: expected a connect string like .* got "localhost"$/,
    );
    assert.match(
      await configError('farm.yaml', 'auth: nopassword\n'),
      /^auth: expected credentials "user:password", got a value that is not shown$/,
    );
    assert.equal(
      await configError('farm.yaml', 'allowShell: yes please\n'),
      'allowShell: expected true or false, got "yes please"',
    );
    assert.equal(
      await configError('farm.yaml', 'roles: {type: worker}\n'),
      'roles: expected a list of roles like {type: worker, count: 4}, got a mapping',
    );
    assert.equal(
      await configError('farm.yaml', 'roles:\n  - {count: 2}\n'),
      'roles[0].type: missing: expected "master" or "worker"',
    );
    assert.match(
      await configError('farm.yaml', '- a\n- b\n'),
      /^expected a mapping of settings .* got a list \(2 items\)$/,
    );
    assert.match(await configError('farm.yaml', '\n\n'), /^the file is empty/);
  });

  test('more than one problem says how many more', async () => {
    const msg = await configError('farm.yaml', 'roles:\n  - {type: wroker}\n  - {type: worker, count: 0}\n');
    assert.equal(msg, 'roles[0].type: expected "master" or "worker", got "wroker" (and 1 more problem)');
  });

  test('a missing file', async () => {
    await assert.rejects(loadConfigFile(join(dir, 'nope.yaml')), (err: ZkfarmError) => {
      assert.equal(err.code, ErrorCodes.CONFIG_INVALID);
      assert.match(err.message, /nope\.yaml: cannot read the config file: no such file/);
      return true;
    });
  });
});

describe('loading a good file', () => {
  test('YAML: fields kept, relative paths resolved against the file', async () => {
    const path = file(
      'farm.yml',
      [
        'zk: h1:2181,h2:2181/farm-a',
        'sessionTimeout: 5000',
        'workdir: out',
        'allowShell: true',
        'taskDirs: always',
        'auth: u:p',
        'handlerModules: [./h.mjs]',
        'retention: {maxCount: 10, maxAgeMs: 1000, intervalMs: 100}',
        'namePrefix: box',
        'roles:',
        '  - {type: master}',
        '  - {type: worker, count: 2, capacity: 3, prefetch: 0, defaultTimeoutMs: 100, sessionTimeout: 4000, taskDirs: on-demand}',
      ].join('\n'),
    );
    const here = join(path, '..');
    writeFileSync(join(here, 'h.mjs'), 'export const x = () => 1;\n');
    const c = await loadConfigFile(path);
    assert.equal(c.zk, 'h1:2181,h2:2181/farm-a');
    assert.equal(c.workdir, join(here, 'out'));
    assert.deepEqual(c.handlerModules, [join(here, 'h.mjs')]);
    assert.deepEqual(c.retention, { maxCount: 10, maxAgeMs: 1000, intervalMs: 100 });
    const spec = resolveFarmSpec(c, {});
    assert.deepEqual(
      spec.roles.map((r) => r.name),
      ['box-master-1', 'box-worker-1', 'box-worker-2'],
    );
    assert.deepEqual(spec.roles[1], {
      kind: 'worker',
      name: 'box-worker-1',
      capacity: 3,
      prefetch: 0,
      defaultTimeoutMs: 100,
      taskDirs: 'on-demand',
      sessionTimeout: 4000,
    });
    assert.equal(spec.connect, 'h1:2181,h2:2181/farm-a');
    assert.equal(spec.allowShell, true);
    assert.equal(spec.taskDirs, 'always');
    assert.equal(spec.auth, 'u:p');
    assert.equal(spec.sessionTimeout, 5000);
  });

  test('JSON by extension and by content', async () => {
    const a = await loadConfigFile(file('farm.json', '{"roles": [{"type": "worker", "count": 3}]}'));
    assert.equal(a.roles?.[0]?.count, 3);
    const b = await loadConfigFile(file('farm.conf', '{"namePrefix": "x"}'));
    assert.equal(b.namePrefix, 'x');
  });

  test('the shipped examples/farm.yaml is valid', async () => {
    const c = await loadConfigFile('examples/farm.yaml');
    const spec = resolveFarmSpec(c, {});
    assert.ok(spec.roles.some((r) => r.kind === 'master'));
    assert.ok(spec.roles.some((r) => r.kind === 'worker'));
    assert.ok(spec.handlerModules?.[0]?.endsWith('examples/handlers.mjs'));
  });
});

describe('resolveFarmSpec: flags override the file, then defaults', () => {
  const config = (over: Partial<ConfigFile> = {}): ConfigFile => ({
    path: '/x/farm.yaml',
    label: 'farm.yaml',
    ...over,
  });

  test('defaults: 1 master, 2 workers, ./zkfarm-work, host-name prefix, 127.0.0.1:2181', () => {
    const spec = resolveFarmSpec(undefined, {}, { cwd: '/srv', hostname: 'box7.example.com' });
    assert.deepEqual(
      spec.roles.map((r) => `${r.kind}:${r.name}`),
      ['master:box7-master-1', 'worker:box7-worker-1', 'worker:box7-worker-2'],
    );
    assert.equal(spec.workdir, '/srv/zkfarm-work');
    assert.equal(spec.connect, '127.0.0.1:2181');
    assert.equal(spec.allowShell, false);
  });

  test('--masters/--workers give the counts; the other kind keeps its default', () => {
    const spec = resolveFarmSpec(undefined, { workers: 8 }, { hostname: 'h' });
    assert.equal(spec.roles.filter((r) => r.kind === 'master').length, 1);
    assert.equal(spec.roles.filter((r) => r.kind === 'worker').length, 8);
    assert.equal(spec.roles.at(-1)?.name, 'h-worker-8');
  });

  test("--workers replaces the file's workers and keeps its masters", () => {
    const c = config({
      namePrefix: 'f',
      roles: [
        { type: 'master', name: 'boss' },
        { type: 'worker', count: 3, capacity: 9 },
      ],
    });
    const spec = resolveFarmSpec(c, { workers: 2 });
    assert.deepEqual(
      spec.roles.map((r) => r.name),
      ['boss', 'f-worker-1', 'f-worker-2'],
    );
    assert.equal(spec.roles[1]?.capacity, undefined, "the file's per-role capacity went with its workers");
  });

  test('--masters 0 leaves a worker-only host; no roles at all is an error', () => {
    const spec = resolveFarmSpec(undefined, { masters: 0, workers: 1 }, { hostname: 'h' });
    assert.deepEqual(
      spec.roles.map((r) => r.kind),
      ['worker'],
    );
    assert.throws(() => resolveFarmSpec(undefined, { masters: 0, workers: 0 }), /no roles to run/);
  });

  test('the file gives roles: no defaults are added', () => {
    const spec = resolveFarmSpec(config({ roles: [{ type: 'worker', count: 2 }] }), {}, { hostname: 'h' });
    assert.deepEqual(
      spec.roles.map((r) => r.name),
      ['h-worker-1', 'h-worker-2'],
    );
  });

  test('flags beat the file for every shared setting', () => {
    const c = config({
      zk: 'a:1',
      workdir: '/file/work',
      sessionTimeout: 1000,
      allowShell: false,
      taskDirs: 'always',
      auth: 'f:f',
      namePrefix: 'file',
      roles: [
        {
          type: 'worker',
          count: 1,
          capacity: 2,
          allowShell: false,
          taskDirs: 'always',
          sessionTimeout: 3000,
        },
      ],
    });
    const spec = resolveFarmSpec(
      c,
      {
        zk: 'b:2/chroot',
        workdir: 'rel',
        sessionTimeout: 7000,
        allowShell: true,
        taskDirs: 'on-demand',
        auth: 'u:p',
        namePrefix: 'flag',
        capacity: 6,
      },
      { cwd: '/cwd' },
    );
    assert.equal(spec.connect, 'b:2/chroot');
    assert.equal(spec.workdir, '/cwd/rel');
    assert.equal(spec.sessionTimeout, 7000);
    assert.equal(spec.allowShell, true);
    assert.equal(spec.taskDirs, 'on-demand');
    assert.equal(spec.auth, 'u:p');
    assert.deepEqual(spec.roles, [{ kind: 'worker', name: 'flag-worker-1', capacity: 6 }]);
  });

  test('the file beats the defaults', () => {
    const spec = resolveFarmSpec(
      config({ zk: 'a:1', workdir: '/file/work', namePrefix: 'file' }),
      {},
      { cwd: '/cwd' },
    );
    assert.equal(spec.connect, 'a:1');
    assert.equal(spec.workdir, '/file/work');
    assert.ok(spec.roles.every((r) => r.name.startsWith('file-')));
  });

  test('bad flags are CONFIG_INVALID naming the flag', () => {
    const bad: Array<[Parameters<typeof resolveFarmSpec>[1], RegExp]> = [
      [{ workers: -1 }, /^--workers: expected a whole number from 0 to 1024, got -1$/],
      [{ capacity: 0 }, /^--capacity: expected a whole number from 1 to 1024, got 0$/],
      [{ prefetch: -1 }, /^--prefetch: expected a whole number from 0 to 65536, or "auto", got -1$/],
      [{ zk: 'nope' }, /^--zk: expected a connect string/],
      [{ namePrefix: 'a b' }, /^--name-prefix: expected a name prefix/],
      [
        { auth: 'secretive' },
        /^--auth: expected credentials "user:password", got a value that is not shown$/,
      ],
    ];
    for (const [flags, re] of bad) {
      assert.throws(
        () => resolveFarmSpec(undefined, flags),
        (err: ZkfarmError) => err.code === ErrorCodes.CONFIG_INVALID && re.test(err.message),
        JSON.stringify(flags),
      );
    }
  });

  test('an odd host name still makes valid role names', () => {
    const spec = resolveFarmSpec(undefined, { masters: 1, workers: 0 }, { hostname: '_my host!.lan' });
    assert.match(spec.roles[0]!.name, /^[A-Za-z0-9][A-Za-z0-9._-]*-master-1$/);
  });
});

describe('discoverConnect: --zk > ZKFARM_ZK > a running runtime > 127.0.0.1:2181', () => {
  const runtimeDir = mkdtempSync(join(tmpdir(), 'zkfarm-xdg-'));
  after(() => rmSync(runtimeDir, { recursive: true, force: true }));
  const env = { XDG_RUNTIME_DIR: runtimeDir };
  const writeDiscovery = (pid: number) => {
    const path = discoveryFilePath(env);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(
      path,
      JSON.stringify({ connect: '127.0.0.1:40123', pid, workdir: '/w', startedAt: Date.now() }),
    );
  };

  test('the discovery file lives under XDG_RUNTIME_DIR, per user', () => {
    assert.equal(discoveryFilePath(env), join(runtimeDir, `zkfarm-${process.getuid!()}`, 'embedded.json'));
  });

  test('order', () => {
    rmSync(discoveryFilePath(env), { force: true });
    assert.deepEqual(discoverConnect(undefined, env), { connect: '127.0.0.1:2181', source: 'default' });
    writeDiscovery(process.pid);
    assert.deepEqual(discoverConnect(undefined, env), { connect: '127.0.0.1:40123', source: 'embedded' });
    assert.deepEqual(discoverConnect(undefined, { ...env, ZKFARM_ZK: 'e:1' }), {
      connect: 'e:1',
      source: 'env',
    });
    assert.deepEqual(discoverConnect('f:2', { ...env, ZKFARM_ZK: 'e:1' }), {
      connect: 'f:2',
      source: 'flag',
    });
  });

  test('a discovery file whose runtime is dead is ignored', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    const pid = child.pid!;
    await new Promise((r) => child.once('exit', r));
    writeDiscovery(pid);
    assert.deepEqual(discoverConnect(undefined, env), { connect: '127.0.0.1:2181', source: 'default' });
  });

  test('a garbled discovery file is ignored', () => {
    writeFileSync(discoveryFilePath(env), '{not json');
    assert.equal(discoverConnect(undefined, env).source, 'default');
  });
});

describe('zk as a mapping: connect and tls', () => {
  test('tls files resolved against the file; tls: true alone; a plain string still works', async () => {
    const path = file(
      'farm.yaml',
      'zk:\n  connect: h1:2281/farm-a\n  tls:\n    ca: tls/ca.pem\n    cert: /abs/client.pem\n    key: k.pem\n    servername: zk.example.com\n',
    );
    const here = join(path, '..');
    const c = await loadConfigFile(path);
    assert.equal(c.zk, 'h1:2281/farm-a');
    assert.deepEqual(c.zkTls, {
      ca: join(here, 'tls', 'ca.pem'),
      cert: '/abs/client.pem',
      key: join(here, 'k.pem'),
      servername: 'zk.example.com',
    });
    const embedded = await loadConfigFile(file('farm.yaml', 'zk:\n  tls: true\n'));
    assert.equal(embedded.zk, undefined, 'no connect: the embedded ZooKeeper');
    assert.deepEqual(embedded.zkTls, {});
    const off = await loadConfigFile(file('farm.yaml', 'zk:\n  connect: a:1\n  tls: false\n'));
    assert.equal(off.zkTls, undefined);
  });

  test('mistakes inside it are named by their path', async () => {
    assert.equal(
      await configError('farm.yaml', 'zk:\n  tls:\n    ca: 5\n'),
      'zk.tls.ca: expected the path of a PEM file (the CA certificate), got 5',
    );
    assert.equal(
      await configError('farm.yaml', 'zk:\n  tsl: true\n'),
      'zk.tsl: unknown key "tsl" (did you mean "tls"?)',
    );
    assert.equal(
      await configError('farm.yaml', 'zk:\n  tls:\n    servrname: x\n'),
      'zk.tls.servrname: unknown key "servrname" (did you mean "servername"?)',
    );
    assert.match(
      await configError('farm.yaml', 'zk:\n  connect: nope\n'),
      /^zk\.connect: expected a connect string like .* got "nope"$/,
    );
  });
});
