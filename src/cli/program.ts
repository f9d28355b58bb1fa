/**
 * The `runtime` command line: the program and its commands (one file per command).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerBench } from './bench.js';
import { registerCancel } from './cancel.js';
import type { Io } from './common.js';
import { registerDashboard } from './dashboard.js';
import { registerQueue } from './queue.js';
import { registerRetry } from './retry.js';
import { registerSchedule } from './schedule.js';
import { registerService } from './service.js';
import { registerStart } from './start.js';
import { registerStatus } from './status.js';
import { registerSubmit } from './submit.js';
import { registerWatch } from './watch.js';

/** zkfarm's version, from the nearest package.json named zkfarm above this file. */
function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'zkfarm') return pkg.version ?? 'unknown';
    } catch {
      // not here
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

export function createProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('runtime');
  program
    .description('zkfarm: a task farm on Apache ZooKeeper. Run a farm, submit tasks to it, see its state.')
    .version(version(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      // One line: commander puts its "(Did you mean ...?)" hint on a line of its own.
      outputError: (s, write) =>
        write(
          `runtime: ${s
            .replace(/^error: /, '')
            .trim()
            .replace(/\s*\n\s*/g, ' ')}\n`,
        ),
    })
    .addHelpText(
      'after',
      [
        '',
        'Exit codes: 0 ok, 1 a runtime failure (e.g. a task failed with --wait), 2 a usage or config error.',
        'Client commands find the farm by --zk, then $ZKFARM_ZK, then a running `runtime` on this machine,',
        'then 127.0.0.1:2181. See docs/cli.md.',
      ].join('\n'),
    );
  registerStart(program, io, setExit);
  registerSubmit(program, io, setExit);
  registerStatus(program, io, setExit);
  registerQueue(program, io, setExit);
  registerDashboard(program, io, setExit);
  registerService(program, io, setExit);
  registerSchedule(program, io, setExit);
  registerRetry(program, io, setExit);
  registerWatch(program, io, setExit);
  registerCancel(program, io, setExit);
  registerBench(program, io, setExit);
  return program;
}
