/**
 * The workdir is checked and nothing below it is written through a link (src/exec/workdir.ts), and a
 * handler module named by package is resolved once, from the current directory, to the file the pool
 * thread then loads (src/exec/handler-module.ts resolveHandlerModule). No ZooKeeper: the Executor alone.
 */
import assert from 'node:assert/strict';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, hasCode } from '../src/errors.js';
import {
  createHandlerPool,
  type ExecRequest,
  Executor,
  resolveHandlerModule,
  type TaskSpec,
} from '../src/exec/index.js';
import { removeTempDirs, tempDir } from './fixtures/exec-helpers.js';

after(removeTempDirs);
const isRoot = process.getuid?.() === 0;
const req = (taskId: string, spec: TaskSpec): ExecRequest => ({ workerName: 'w1', taskId, attempt: 1, spec });

test('a workdir that group or others may write is refused with ZKFARM_WORKDIR_UNSAFE, and so is one of another user', async () => {
  const open = join(await tempDir(), 'work');
  mkdirSync(open);
  chmodSync(open, 0o777);
  const ex = new Executor({ workdir: open });
  await assert.rejects(
    ex.init(),
    (e: unknown) => hasCode(e, ErrorCodes.WORKDIR_UNSAFE) && /chmod go-w/.test(String(e)),
  );
  const out = await ex.run(req('task-0000000001', { handler: 'echo', input: 1 }));
  assert.equal(out.state, 'failed');
  assert.equal(out.errorCode, ErrorCodes.WORKDIR_UNSAFE);
  await ex.close();
  if (!isRoot) return; // making a directory of another user needs root
  const theirs = join(await tempDir(), 'theirs');
  mkdirSync(theirs, { mode: 0o700 });
  chownSync(theirs, 65534, 65534);
  const ex2 = new Executor({ workdir: theirs });
  await assert.rejects(
    ex2.init(),
    (e: unknown) => hasCode(e, ErrorCodes.WORKDIR_UNSAFE) && /uid 65534/.test(String(e)),
  );
  await ex2.close();
});

test('a link planted at result.json, at a log, or in place of a task directory is not written through', async () => {
  const base = await tempDir();
  const workdir = join(base, 'work');
  const victim = join(base, 'victim.txt');
  writeFileSync(victim, 'untouched');
  const victimDir = join(base, 'elsewhere');
  mkdirSync(victimDir);
  const ex = new Executor({ workdir, allowShell: true, taskDirs: 'always' });
  await ex.init();
  mkdirSync(join(workdir, 'w1'), { mode: 0o700 });
  mkdirSync(join(workdir, 'w1', 'task-0000000001'), { mode: 0o700 });
  symlinkSync(victim, join(workdir, 'w1', 'task-0000000001', 'result.json'));
  mkdirSync(join(workdir, 'w1', 'task-0000000002'), { mode: 0o700 });
  symlinkSync(victim, join(workdir, 'w1', 'task-0000000002', 'stdout.log'));
  symlinkSync(victimDir, join(workdir, 'w1', 'task-0000000003'));

  const viaResult = await ex.run(req('task-0000000001', { handler: 'echo', input: 'overwrite' }));
  const viaLog = await ex.run(req('task-0000000002', { cmd: 'echo overwrite' }));
  const viaDir = await ex.run(req('task-0000000003', { handler: 'echo', input: 'overwrite' }));
  for (const out of [viaResult, viaLog, viaDir]) {
    assert.equal(out.state, 'failed');
    assert.equal(out.errorCode, ErrorCodes.WORKDIR_UNWRITABLE);
  }
  assert.match(viaResult.error ?? '', /symbolic link/);
  assert.match(viaDir.error ?? '', /symbolic link/);
  assert.equal(readFileSync(victim, 'utf8'), 'untouched');
  assert.equal(existsSync(join(victimDir, 'result.json')), false);
  // An ordinary task next to them is unaffected.
  assert.equal((await ex.run(req('task-0000000004', { handler: 'echo', input: 1 }))).state, 'succeeded');
  await ex.close();
});

test('a handler module named by package resolves from the current directory, ESM exports included, and a file of that name does not shadow it', async () => {
  const project = await tempDir('zkfarm-project-');
  const pkg = join(project, 'node_modules', 'zkfarm-test-handlers');
  mkdirSync(pkg, { recursive: true });
  // An ESM-only package: its exports have an import condition and no require one.
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({
      name: 'zkfarm-test-handlers',
      type: 'module',
      exports: { '.': { import: './esm.mjs' } },
    }),
  );
  writeFileSync(join(pkg, 'esm.mjs'), 'export function fromPackage(x) { return "package: " + x; }\n');
  // A file in the current directory with the package's name.
  writeFileSync(join(project, 'zkfarm-test-handlers'), 'export function planted() { return "planted"; }\n');

  const url = await resolveHandlerModule('zkfarm-test-handlers', project);
  assert.equal(fileURLToPath(url), join(pkg, 'esm.mjs'));
  const pool = createHandlerPool({ maxThreads: 1 });
  try {
    assert.deepEqual(await pool.listHandlers(url), ['fromPackage']);
  } finally {
    await pool.close();
  }
  await assert.rejects(resolveHandlerModule('zkfarm-no-such-package', project), (e: unknown) =>
    hasCode(e, ErrorCodes.CONFIG_INVALID),
  );
});
