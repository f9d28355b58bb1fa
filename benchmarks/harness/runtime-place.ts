/**
 * A place for a `runtime` started as a new user starts one: a directory of its own (the discovery file
 * through XDG_RUNTIME_DIR, the workdir, the embedded ZooKeeper's data), a file of N no-op tasks for
 * `runtime submit --file`, and a config file that keeps every result, as BullMQ keeps every completed job
 * by default (a busy leader's retention would otherwise remove results while they are counted).
 * Used by the fresh scenario and the tools that start a fresh runtime (fresh-passes, wait-cost,
 * alloc-per-task).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RuntimePlace {
  dir: string;
  /** The environment of the runtime and of its client commands (XDG_RUNTIME_DIR, no ZKFARM_ZK). */
  env: Record<string, string>;
  /** N lines of `{"handler":"noop"}`. */
  tasksFile: string;
  config: string;
  workdir: string;
  /** `--config … --masters 2 --workers 8 --workdir …`: the default farm's arguments. */
  farmArgs: string[];
  remove(): void;
}

export function runtimePlace(
  prefix: string,
  tasks: number,
  options: { keepResults?: number; env?: Record<string, string> } = {},
): RuntimePlace {
  const dir = mkdtempSync(join(tmpdir(), `zkfarm-${prefix}-`));
  const tasksFile = join(dir, 'tasks.ndjson');
  writeFileSync(tasksFile, '{"handler":"noop"}\n'.repeat(tasks));
  const config = join(dir, 'farm.json');
  const maxCount = options.keepResults ?? 10_000_000;
  writeFileSync(config, JSON.stringify({ retention: { maxCount, intervalMs: 86_400_000 } }));
  const workdir = join(dir, 'work');
  return {
    dir,
    env: { XDG_RUNTIME_DIR: dir, ZKFARM_ZK: '', ...options.env },
    tasksFile,
    config,
    workdir,
    farmArgs: ['--config', config, '--masters', '2', '--workers', '8', '--workdir', workdir],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
