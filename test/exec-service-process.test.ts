/**
 * exec/service-process.ts with real processes: a stop's SIGTERM reaches the command and the group is
 * given its whole grace (a command that shuts down slowly finishes, with its own exit status); a
 * command that ignores SIGTERM is SIGKILLed after the grace, nothing of it left; and when the process
 * that started it dies, the command dies with it (the guard).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ServiceProcess } from '../src/exec/service-process.js';
import { until } from './helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'zkfarm-svcproc-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const start = (cmd: string) => ServiceProcess.start({ cmd, cwd: dir, env: process.env, logDir: dir });

/** Live processes whose command line contains `needle`. */
function running(needle: string): number[] {
  return readdirSync('/proc').flatMap((p) => {
    if (!/^\d+$/.test(p)) return [];
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      return cmd.includes(needle) && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z' ? [Number(p)] : [];
    } catch {
      return [];
    }
  });
}

test('stop: SIGTERM reaches the command, which may take its grace to shut down and exit with its own status', async () => {
  const p = start('trap "echo stopping; sleep 0.5; exit 5" TERM; while :; do sleep 0.05; done');
  await until(() => p.running, 5000, 'started');
  await new Promise((r) => setTimeout(r, 300));
  const exit = await p.stop(10_000);
  assert.deepEqual(exit, { code: 5, signal: null });
  assert.match(readFileSync(join(dir, 'stdout.log'), 'utf8'), /stopping/);
});

test('stop: a command that ignores SIGTERM is SIGKILLed after the grace; nothing of its group is left', async () => {
  const p = start('trap "" TERM; exec sleep 97.125');
  await until(() => running('97.125').length === 1, 5000, 'started');
  await p.stop(300);
  assert.deepEqual(running('97.125'), []);
});

test('the command dies with the process that started it (SIGKILL of the host)', async () => {
  const host = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import('${join(import.meta.dirname, '..', 'src', 'exec', 'service-process.ts')}').then((m) => {
        m.ServiceProcess.start({ cmd: 'exec sleep 98.375', cwd: '${dir}', env: process.env, logDir: '${dir}' });
        setInterval(() => {}, 1000);
      })`,
    ],
    { stdio: 'ignore' },
  );
  try {
    await until(() => running('98.375').length === 1, 20_000, 'the command started');
    host.kill('SIGKILL');
    await until(() => running('98.375').length === 0, 10_000, 'the command gone with its host');
  } finally {
    host.kill('SIGKILL');
  }
});
