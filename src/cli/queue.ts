/**
 * `runtime queue ls|pause|resume|set <queue> [--rate-limit N|none] [--concurrency N|none]`: see and
 * change the per-queue controls (stored in /queues/<queue>, honoured by the leading master of every host).
 */
import type { Command } from 'commander';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { QueueAdmin, type QueueOverview } from '../farm/queue-admin.js';
import { describeControls, type QueueControls } from '../farm/queues.js';
import { type ClientCommandFlags, withClient, withClientFlags } from './client-command.js';
import { type Io, table } from './common.js';

interface QueueFlags extends ClientCommandFlags {
  json?: boolean;
  rateLimit?: string;
  concurrency?: string;
}

type Action = (admin: QueueAdmin, io: Io, flags: QueueFlags, queue: string) => Promise<void>;

export function registerQueue(program: Command, io: Io, setExit: (code: number) => void): void {
  const queue = program
    .command('queue')
    .description('see and change per-queue controls: pause, resume, rate limit, concurrency cap');
  const add = (name: string, description: string, action: Action, extra?: (c: Command) => Command) => {
    let cmd = queue.command(name).description(description);
    if (extra) cmd = extra(cmd);
    withClientFlags(cmd).action(async (...args: unknown[]) => {
      // commander passes the <queue> argument (if any), the options, then the command.
      const flags = args[args.length - 2] as QueueFlags;
      const name = typeof args[0] === 'string' ? args[0] : '';
      setExit(await withClient(flags, (client) => action(new QueueAdmin(client), io, flags, name)));
    });
  };
  add(
    'ls',
    'list the queues: waiting by priority, running, paused, limits, and who serves each',
    async (admin, out, f) => printQueues(await admin.list(), out, f.json === true),
    (c) => c.option('--json', 'print one JSON object per line instead of a table'),
  );
  const named = (verb: string, description: string, change: (f: QueueFlags) => Partial<QueueControls>) =>
    add(
      `${verb} <queue>`,
      description,
      async (admin, out, f, q) => {
        const controls = await admin.update(q, change(f));
        out.out(`${q}: ${describeControls(controls)}`);
      },
      verb === 'set'
        ? (c) =>
            c
              .option('--rate-limit <n|none>', 'tasks started per second across the farm, or none')
              .option(
                '--concurrency <n|none>',
                'tasks of the queue assigned and not finished at once, or none',
              )
        : undefined,
    );
  named('pause', 'hold the queue: its tasks stay queued, nothing of it is handed out', () => ({
    paused: true,
  }));
  named('resume', 'let the queue run again', () => ({ paused: false }));
  named('set', 'set or remove the rate limit and the concurrency cap', setChange);
}

/** What `queue set` changes; a usage error when it changes nothing or a value is not a number. */
function setChange(f: QueueFlags): Partial<QueueControls> {
  const change: Partial<QueueControls> = {};
  const num = (flag: string, v: string) => {
    if (v === 'none') return null;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n))
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `${flag}: expected a number or "none", got ${JSON.stringify(v)}`,
      );
    return n;
  };
  if (f.rateLimit !== undefined) change.rateLimit = num('--rate-limit', f.rateLimit);
  if (f.concurrency !== undefined) change.concurrency = num('--concurrency', f.concurrency);
  if (Object.keys(change).length === 0)
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      'queue set: give --rate-limit <n|none> and/or --concurrency <n|none>',
    );
  return change;
}

/** `3 (p9: 1, p0: 2)`: waiting tasks, by priority, the highest first. */
export function depth(q: QueueOverview): string {
  const parts = Object.entries(q.byPriority)
    .sort((a, b) => Number(b[0]) - Number(a[0]))
    .map(([p, n]) => `p${p}: ${n}`);
  return parts.length > 1 ? `${q.waiting} (${parts.join(', ')})` : String(q.waiting);
}

/** Rows of the queue table (shared with `runtime status`). */
export function queueRows(queues: readonly QueueOverview[]): string[][] {
  const rows = [['QUEUE', 'WAITING', 'RUNNING', 'STATE', 'RATE', 'CONCURRENCY', 'WORKERS']];
  for (const q of queues)
    rows.push([
      q.queue,
      depth(q),
      String(q.running),
      q.controls.paused ? 'paused' : 'running',
      q.controls.rateLimit === null ? '-' : `${q.controls.rateLimit}/s`,
      q.controls.concurrency === null ? '-' : String(q.controls.concurrency),
      q.servedBy.length > 0 ? String(q.servedBy.length) : 'none: no live worker serves it',
    ]);
  return rows;
}

/** Why tasks of a queue wait, one line each. */
export function queueWaitLines(queues: readonly QueueOverview[]): string[] {
  const lines: string[] = [];
  for (const q of queues) {
    for (const b of q.blocked) {
      const tasks = `${b.tasks} task${b.tasks === 1 ? '' : 's'}`;
      const needs =
        b.needs === undefined
          ? ''
          : ` that need ${b.needs === 'shell' ? 'shell' : `handler "${b.needs.replace(/^handler:/, '')}"`}`;
      lines.push(`${q.queue}: ${tasks}${needs} wait: ${b.reason}`);
    }
    if (q.problem) lines.push(`${q.queue}: its controls node is not valid (${q.problem})`);
  }
  return lines;
}

function printQueues(queues: QueueOverview[], io: Io, json: boolean): void {
  if (json) {
    for (const q of queues) io.out(JSON.stringify(q));
    return;
  }
  if (queues.length === 0) {
    io.out('no queues yet (tasks without a "queue" field go to "default")');
    return;
  }
  for (const line of table(queueRows(queues))) io.out(line);
  for (const line of queueWaitLines(queues)) io.out(line);
}
