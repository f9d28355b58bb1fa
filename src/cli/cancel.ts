/**
 * `runtime cancel ID... [--by] [--reason] [--wait-ms]` cancels tasks (queued, held or running); `runtime
 * cancel --queue Q --yes` cancels every task of a queue still waiting (farm/cancel-client.ts). One line
 * per task on stdout: `<id> cancelled | finished-first (<state>) | not-found | pending`.
 *
 * Exit: 0 when every task named is cancelled (now or before), 1 when any finished first, was not found
 * or is still pending, 2 for usage (no ids and no --queue, both, --queue without --yes).
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { CancelResult } from '../farm/cancel-client.js';
import { isQueueName, QUEUE_NAME_EXPECTED } from '../farm/queues.js';
import type { Submitter } from '../farm/submitter.js';
import { type ClientCommandFlags, withClientFlags, withSubmitter } from './client-command.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type Io } from './common.js';

interface CancelFlags extends ClientCommandFlags {
  by?: string;
  reason?: string;
  queue?: string;
  yes?: boolean;
  waitMs?: string;
}

function line(r: CancelResult): string {
  if (r.outcome === 'finished-first') return `${r.id} finished-first (${r.status?.state ?? 'finished'})`;
  return `${r.id} ${r.outcome}`;
}

function waitMsOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Number(text);
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `--wait-ms wants a whole number of milliseconds >= 0, got ${JSON.stringify(text)}`,
    );
  return ms;
}

async function cancelAll(s: Submitter, ids: string[], f: CancelFlags, io: Io): Promise<number> {
  const by = f.by ?? defaultBy();
  const results = await s.cancel(ids, { by, reason: f.reason, waitMs: waitMsOf(f.waitMs) });
  for (const r of results) io.out(line(r));
  return results.every((r) => r.outcome === 'cancelled') ? EXIT_OK : EXIT_FAILURE;
}

async function cancelQueue(s: Submitter, f: CancelFlags, io: Io): Promise<number> {
  if (!isQueueName(f.queue))
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `--queue: expected a queue name (${QUEUE_NAME_EXPECTED}), got ${JSON.stringify(f.queue)}`,
    );
  const ids = await s.waiting(f.queue!);
  if (!f.yes) {
    io.err(
      `runtime cancel: ${ids.length} waiting task(s) of queue "${f.queue}"; nothing cancelled: add --yes to cancel them`,
    );
    return EXIT_USAGE;
  }
  const code = ids.length === 0 ? EXIT_OK : await cancelAll(s, ids, f, io);
  io.err(`runtime cancel: ${ids.length} waiting task(s) of queue "${f.queue}" asked to cancel`);
  return code;
}

/** Who asks, when --by is not given: the user and host, as a log would name them. */
function defaultBy(): string {
  try {
    return `${userInfo().username} (runtime cancel)`;
  } catch {
    return 'runtime cancel';
  }
}

export function registerCancel(program: Command, io: Io, setExit: (code: number) => void): void {
  withClientFlags(
    program
      .command('cancel [ids...]')
      .description('cancel tasks: queued ones never run, running ones are stopped (see docs/cli.md)')
      .option('--by <who>', 'who asks (kept in the cancelled status; default: your user name)')
      .option('--reason <why>', 'why (kept in the cancelled status)')
      .option('--queue <queue>', 'every task of this queue still waiting (with --yes)')
      .option('--yes', 'with --queue: do it (without it, only the count is shown)')
      .option('--wait-ms <ms>', 'wait this long for each final status (default 10000; 0: do not wait)'),
  ).action(async (ids: string[], f: CancelFlags) => {
    if (ids.length > 0 === (f.queue !== undefined))
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        'runtime cancel: name the task ids to cancel, or give --queue <queue> --yes',
      );
    if (f.yes && f.queue === undefined)
      throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, '--yes goes with --queue');
    setExit(
      await withSubmitter(f, (s) =>
        f.queue !== undefined ? cancelQueue(s, f, io) : cancelAll(s, ids, f, io),
      ),
    );
  });
}
