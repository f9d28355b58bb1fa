/**
 * `runtime watch [--queue Q...] [--task ID...] [--json] [--count N] [--until-done]` streams task events
 * (farm/event-stream.ts), one line each, or NDJSON; Ctrl-C (SIGINT, SIGTERM) ends it cleanly.
 */
import type { Command } from 'commander';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { EventStream } from '../farm/event-stream.js';
import { formatEvent, isFinal, type TaskEvent } from '../farm/task-events.js';
import { type ClientCommandFlags, withClientFlags, withSubmitter } from './client-command.js';
import { EXIT_OK, type Io } from './common.js';

interface WatchFlags extends ClientCommandFlags {
  queue?: string[];
  task?: string[];
  json?: boolean;
  count?: string;
  untilDone?: boolean;
  buffer?: string;
}

function wholeNumber(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, `${flag} takes a whole number ≥ 1, got "${v}"`);
  return n;
}

/** Print events until the stream ends, `count` were printed, or (`untilDone`) every named task finished. */
async function print(stream: EventStream, f: WatchFlags, io: Io, count: number | undefined): Promise<void> {
  const open = new Set(f.untilDone ? f.task : []);
  let printed = 0;
  for await (const ev of stream) {
    io.out(f.json ? JSON.stringify(ev) : formatEvent(ev));
    printed++;
    if (f.untilDone && isFinal(ev as TaskEvent)) open.delete(ev.id);
    if ((count !== undefined && printed >= count) || (f.untilDone && open.size === 0)) break;
  }
}

export function registerWatch(program: Command, io: Io, setExit: (code: number) => void): void {
  withClientFlags(
    program
      .command('watch')
      .alias('events')
      .description(
        'stream task events (queued, retrying, started, progress, succeeded, failed, cancelled) as they happen',
      )
      .option('--queue <queue...>', 'only tasks of these queues')
      .option('--task <id...>', 'only these tasks')
      .option(
        '--json',
        'one JSON object per line (NDJSON): {"type", "id", "queue", "worker", "at", "attempt", ...}',
      )
      .option('--count <n>', 'stop after n events')
      .option('--until-done', 'with --task: stop once every named task has its result')
      .option('--buffer <events>', 'events held for a slow reader before the stream stops (default: 10000)'),
  ).action(async (f: WatchFlags) => {
    const count = wholeNumber('--count', f.count);
    const bufferSize = wholeNumber('--buffer', f.buffer);
    if (f.untilDone && !f.task?.length)
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        '--until-done goes with --task ID...: the tasks to wait for',
      );
    setExit(
      await withSubmitter(f, async (s) => {
        const stream = s.events({
          ...(f.queue ? { queue: f.queue } : {}),
          ...(f.task ? { task: f.task } : {}),
          ...(bufferSize ? { bufferSize } : {}),
        });
        const stop = () => void stream.close();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          await stream.ready;
          io.err('runtime watch: watching task events; Ctrl-C stops');
          await print(stream, f, io, count);
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          await stream.close();
        }
        return EXIT_OK;
      }),
    );
  });
}
