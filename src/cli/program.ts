/**
 * The `runtime` command line: the program and its commands (one file per command).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { Io } from './common.js';

type Register = (program: Command, io: Io, setExit: (code: number) => void) => void;

/**
 * Each command's module, loaded only when needed: a short-lived command such as `runtime submit` then
 * loads its own code, not every other command's (the host, the YAML and cron parsers, the metrics
 * client), which took most of its start. The names are each module's top-level commands and aliases;
 * the order is the order of `runtime --help`.
 */
const COMMANDS: ReadonlyArray<{ names: readonly string[]; load: () => Promise<Register> }> = [
  { names: ['start'], load: async () => (await import('./start.js')).registerStart },
  { names: ['submit'], load: async () => (await import('./submit.js')).registerSubmit },
  { names: ['status'], load: async () => (await import('./status.js')).registerStatus },
  { names: ['queue'], load: async () => (await import('./queue.js')).registerQueue },
  { names: ['dashboard'], load: async () => (await import('./dashboard.js')).registerDashboard },
  { names: ['service'], load: async () => (await import('./service.js')).registerService },
  { names: ['schedule'], load: async () => (await import('./schedule.js')).registerSchedule },
  { names: ['retry', 'failed'], load: async () => (await import('./retry.js')).registerRetry },
  { names: ['watch', 'events'], load: async () => (await import('./watch.js')).registerWatch },
  { names: ['cancel'], load: async () => (await import('./cancel.js')).registerCancel },
  { names: ['bench'], load: async () => (await import('./bench.js')).registerBench },
];

/**
 * The commands to register for this command line: only the one it names when its first word is a
 * command, else all of them (`runtime --masters 2` runs the default command, `start`; `runtime --help`
 * and a mistyped command need every name).
 */
function commandsFor(argv: readonly string[] | undefined): typeof COMMANDS {
  const first = argv?.[2];
  const named = COMMANDS.find((c) => first !== undefined && c.names.includes(first));
  return named ? [named] : COMMANDS;
}

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

/** The program for `argv` (all commands when no argv is given). */
export async function createProgram(
  io: Io,
  setExit: (code: number) => void,
  argv?: readonly string[],
): Promise<Command> {
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
  const commands = commandsFor(argv);
  const registers = await Promise.all(commands.map((c) => c.load()));
  for (const register of registers) register(program, io, setExit);
  return program;
}
