/**
 * Entry of the `runtime` command (bin/runtime.js imports the compiled form). Parses, runs one command,
 * and exits with 0 (ok), 1 (runtime failure) or 2 (usage or config error, one line on stderr).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CommanderError } from 'commander';
import { EXIT_OK, EXIT_USAGE, errorLine, exitCodeFor, type Io, processIo } from './common.js';
import { createProgram } from './program.js';

/** Run the command line; resolves with the exit code (does not exit). */
export async function main(argv: readonly string[] = process.argv, io: Io = processIo): Promise<number> {
  let code = EXIT_OK;
  try {
    const program = await createProgram(
      io,
      (c) => {
        code = c;
      },
      argv,
    );
    await program.parseAsync([...argv]);
    return code;
  } catch (err) {
    // Commander has printed its own one-line message (or the help / version).
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    io.err(`runtime: ${errorLine(err)}`);
    return exitCodeFor(err);
  }
}

/** Run and exit once stdout and stderr are flushed (sessions and timers must not keep us alive). */
export async function run(argv: readonly string[] = process.argv): Promise<never> {
  // `runtime status | head`: the reader left; that is not our failure.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(EXIT_OK);
      throw err;
    });
  }
  const code = await main(argv);
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  await new Promise<void>((resolve) => process.stderr.write('', () => resolve()));
  process.exit(code);
}

function isEntry(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) void run();
