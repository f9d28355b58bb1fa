/**
 * `runtime retry ID... | --failed [filters]` re-runs failed tasks (each submitted again as it was first
 * submitted, linked to the original); `runtime failed [filters] [--json]` lists the failed tasks kept in
 * /status, or exports them as NDJSON (farm/dead-letters.ts).
 */
import type { Command } from 'commander';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { FailedFilter, FailedResult } from '../farm/dead-letters.js';
import { DEFAULT_QUEUE } from '../farm/queues.js';
import type { Submitter } from '../farm/submitter.js';
import { type ClientCommandFlags, withClientFlags, withSubmitter } from './client-command.js';
import { EXIT_FAILURE, EXIT_OK, type Io, table } from './common.js';
import { since } from './time-flags.js';

interface FilterFlags extends ClientCommandFlags {
  since?: string;
  queue?: string;
  errorCode?: string;
  failed?: boolean;
  dryRun?: boolean;
  json?: boolean;
}

function filterOf(f: FilterFlags): FailedFilter {
  return {
    ...(f.since !== undefined ? { since: since('--since', f.since) } : {}),
    ...(f.queue !== undefined ? { queue: f.queue } : {}),
    ...(f.errorCode !== undefined ? { errorCode: f.errorCode } : {}),
  };
}

const withFilters = (cmd: Command) =>
  cmd
    .option('--since <when>', 'only tasks that finished since then: 30m, 2h, 1d ago, or a date')
    .option('--queue <queue>', 'only tasks of this queue')
    .option('--error-code <code>', 'only failures with this code, e.g. ZKFARM_TASK_TIMEOUT');

async function retryIds(s: Submitter, ids: string[], io: Io): Promise<number> {
  let refused = 0;
  for (const r of await s.retry(ids)) {
    if (r.retry) io.out(`${r.id} -> ${r.retry}`);
    else {
      refused++;
      io.err(`runtime retry: ${r.error}`);
    }
  }
  return refused > 0 ? EXIT_FAILURE : EXIT_OK;
}

async function retryFailed(s: Submitter, f: FilterFlags, io: Io): Promise<number> {
  const ids: string[] = [];
  for await (const r of s.failed(filterOf(f))) {
    if (!r.status.task) io.err(`runtime retry: ${r.id} keeps no task in its result: skipped`);
    else ids.push(r.id);
  }
  if (f.dryRun) {
    for (const id of ids) io.out(id);
    io.err(`runtime retry: ${ids.length} failed task(s) would be re-run (--dry-run: nothing submitted)`);
    return EXIT_OK;
  }
  const code = await retryIds(s, ids, io);
  io.err(`runtime retry: ${ids.length} failed task(s) re-run`);
  return code;
}

function row(r: FailedResult): string[] {
  const s = r.status;
  return [
    r.id,
    new Date(s.finishedAt).toISOString(),
    s.task?.queue ?? DEFAULT_QUEUE,
    String(s.attempts),
    s.errorCode ?? '-',
    (s.error ?? '').split('\n')[0]!.slice(0, 80),
  ];
}

export function registerRetry(program: Command, io: Io, setExit: (code: number) => void): void {
  withClientFlags(
    withFilters(
      program
        .command('retry [ids...]')
        .description('re-run failed tasks: the ones named, or every failed one that matches --failed')
        .option('--failed', 'every kept failed task that matches the filters')
        .option('--dry-run', 'with --failed: list what would be re-run, submit nothing'),
    ),
  ).action(async (ids: string[], f: FilterFlags) => {
    if (ids.length > 0 === (f.failed === true))
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        'runtime retry: name the task ids to re-run, or give --failed (with --since, --queue, --error-code)',
      );
    if (!f.failed && (f.since || f.queue || f.errorCode || f.dryRun))
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        '--since, --queue, --error-code and --dry-run go with --failed',
      );
    setExit(await withSubmitter(f, (s) => (f.failed ? retryFailed(s, f, io) : retryIds(s, ids, io))));
  });
  withClientFlags(
    withFilters(
      program
        .command('failed')
        .description('list the failed tasks kept in /status (dead letters), or export them as NDJSON')
        .option('--json', 'one JSON object per line: {"id", ...its result, with the task as submitted}'),
    ),
  ).action(async (f: FilterFlags) => {
    setExit(
      await withSubmitter(f, async (s) => {
        const rows = [['TASK', 'FINISHED', 'QUEUE', 'ATTEMPTS', 'CODE', 'ERROR']];
        for await (const r of s.failed(filterOf(f))) {
          if (f.json) io.out(JSON.stringify({ id: r.id, ...r.status }));
          else rows.push(row(r));
        }
        if (!f.json) {
          if (rows.length === 1) io.out('no failed tasks kept');
          else for (const line of table(rows)) io.out(line);
        }
        return EXIT_OK;
      }),
    );
  });
}
