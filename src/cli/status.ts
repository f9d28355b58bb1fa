/**
 * `runtime status [--zk CONNECT] [--json] [TASK_ID]`: the farm as ZooKeeper sees it, or one task: where
 * it is, its latest progress while it runs, its result once it has one (web/task-details.ts reads it).
 */

import type { Command } from 'commander';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { dueOf } from '../farm/due-time.js';
import { field } from '../farm/option-schema.js';
import type { Task, TaskStatus } from '../farm/protocol.js';
import { discoverConnect } from '../host/discovery.js';
import { HttpError } from '../web/http.js';
import { type TaskDetails, taskDetails } from '../web/task-details.js';
import type { ZkClient } from '../zk/client.js';
import {
  clientFlags,
  closeQuickly,
  EXIT_FAILURE,
  EXIT_OK,
  flagOption,
  type Io,
  openSession,
  table,
} from './common.js';
import { type FarmState, readFarmState } from './farm-state.js';
import { queueRows, queueWaitLines } from './queue.js';
import { addTlsOptions, loadTls, type TlsFlags, tlsSettingFromFlags } from './zk-tls.js';

interface StatusOptions extends TlsFlags {
  zk?: string;
  json?: boolean;
  auth?: string;
  failures: number;
  connectTimeout: number;
}

export function registerStatus(program: Command, io: Io, setExit: (code: number) => void): void {
  const cmd = program
    .command('status')
    .description(
      'show the farm as ZooKeeper sees it: leader, standbys, workers and their load, queue, failures',
    )
    .argument('[task]', 'a task id (task-NNNNNNNNNN): show that task (where it is, its progress, its result)')
    .addOption(flagOption(clientFlags.zk))
    .option('--json', 'print one JSON object instead of a table')
    .addOption(
      flagOption(
        field((z) => z.int().min(0), {
          flag: '--failures <n>',
          default: 10,
          description: 'recent failures to show',
        }),
        { applyDefault: true },
      ),
    )
    .addOption(flagOption(clientFlags.auth))
    .addOption(flagOption(clientFlags.connectTimeout, { applyDefault: true }));
  addTlsOptions(cmd).action(async (task: string | undefined, opts: StatusOptions) => {
    setExit(await runStatus(opts, io, task));
  });
}

export async function runStatus(opts: StatusOptions, io: Io, task?: string): Promise<number> {
  const { connect, source, tls } = discoverConnect(opts.zk);
  const sup = await openSession(connect, source, {
    auth: opts.auth,
    tls: loadTls(tlsSettingFromFlags(opts), tls, connect),
    connectTimeout: opts.connectTimeout,
  });
  try {
    const client = sup.session!.client;
    if (task !== undefined) return await showTask(client, task, opts.json === true, io);
    const state = await readFarmState(client, { maxFailures: opts.failures });
    if (opts.json) io.out(JSON.stringify({ connect, source, ...state }));
    else for (const line of renderStatus(connect, state)) io.out(line);
    return EXIT_OK;
  } finally {
    await closeQuickly(() => sup.stop());
  }
}

/** One task: exit 0 when it is known (queued, running, finished), 1 when it is nowhere. */
async function showTask(client: ZkClient, id: string, json: boolean, io: Io): Promise<number> {
  let d: TaskDetails;
  try {
    d = await taskDetails(client, id);
  } catch (err) {
    if (err instanceof HttpError) throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, err.message);
    throw err;
  }
  if (json) io.out(JSON.stringify(d));
  else for (const line of renderTask(d)) io.out(line);
  return d.where === 'unknown' ? EXIT_FAILURE : EXIT_OK;
}

export function renderTask(d: TaskDetails): string[] {
  const since = d.since ? ` (${ago(d.since)})` : '';
  const status = (d.status ?? {}) as Partial<TaskStatus>;
  switch (d.where) {
    case 'unknown':
      return [`${d.id}  nowhere: never submitted, or finished and its result removed by retention`];
    case 'queued':
      return [`${d.id}  queued${since}${dueText(d)}`];
    case 'assigned': {
      const lines = [`${d.id}  running on ${d.worker}${since}`];
      const p = d.progress;
      if (p) {
        const value = p.value !== undefined ? `${p.value} ` : '';
        lines.push(
          `progress  ${value}${p.message ?? ''}`.trimEnd() + ` (${ago(p.at)}, attempt ${p.attempt})`,
        );
      } else lines.push('progress  none reported');
      return lines;
    }
    case 'finished': {
      const lines = [`${d.id}  ${status.state ?? 'finished'} on ${status.worker ?? 'no worker'}${since}`];
      if (status.error)
        lines.push(`error     ${status.errorCode ? `${status.errorCode}: ` : ''}${status.error}`);
      if (status.result !== undefined) lines.push(`result    ${JSON.stringify(status.result).slice(0, 500)}`);
      if (status.exitCode !== undefined) lines.push(`exit code ${status.exitCode}`);
      if (status.state === 'cancelled') lines.push(cancelledLine(status));
      return lines;
    }
  }
}

/** `cancelled while running by alice: not needed` */
function cancelledLine(s: { cancelledWhile?: unknown; cancelledBy?: unknown; reason?: unknown }): string {
  const who = typeof s.cancelledBy === 'string' ? ` by ${s.cancelledBy}` : '';
  const why = typeof s.reason === 'string' ? `: ${s.reason}` : '';
  return `cancelled while ${String(s.cancelledWhile ?? 'queued')}${who}${why}`;
}

/** ", due <time>" for a queued task not due yet (runAt, delayMs, notBefore: due-time.ts). */
function dueText(d: TaskDetails): string {
  const ok = typeof d.task === 'object' && d.task !== null && d.since !== undefined;
  const due = ok ? dueOf(d.task as Task, d.since!) : undefined;
  return due !== undefined && due > Date.now() ? `, due ${new Date(due).toISOString()}` : '';
}

/** What the leader says waits in the queue for a reason (blocked, delayed, set aside). */
function renderWaiting(s: FarmState): string[] {
  const q = s.leader?.queue;
  if (!q) return [];
  const lines: string[] = [];
  const tasks = (n: number) => `${n} task${n === 1 ? '' : 's'}`;
  // A leader that says it per queue: the queue lines below say it (with what the tasks need).
  for (const b of q.queues ? [] : q.blocked) {
    const needs = b.needs === 'shell' ? 'shell' : `handler "${b.needs.replace(/^handler:/, '')}"`;
    lines.push(`waiting   ${tasks(b.tasks)} that need ${needs}: ${b.reason}`);
  }
  if (q.delayed > 0) {
    const area = q.delayedArea ? `; ${q.delayedArea} of them in /delayed` : '';
    lines.push(`waiting   ${tasks(q.delayed)} not due yet (runAt, delayMs, retry backoff${area})`);
  }
  if (q.setAsideCount > 0) {
    lines.push(`set aside ${tasks(q.setAsideCount)} the leader cannot move:`);
    for (const t of q.setAside) lines.push(`          ${t.id}: ${t.reason}`);
    if (q.setAsideCount > q.setAside.length)
      lines.push(`          … and ${q.setAsideCount - q.setAside.length} more`);
  }
  return lines;
}

function ago(ms: number, now = Date.now()): string {
  if (!ms) return '';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

/**
 * The per-queue table is what the leader last published (at most once a second); the `queue` line is
 * counted now. Right after a burst the table may still show tasks that have all finished.
 */
function leaderBehind(s: FarmState): boolean {
  return s.queued === 0 && s.assigned === 0 && s.queues.some((q) => q.waiting > 0 || q.running > 0);
}

export function renderStatus(connect: string, s: FarmState): string[] {
  const lines: string[] = [];
  const leader = s.leader
    ? `${s.leader.name}${s.leader.host ? ` on ${s.leader.host}` : ''}${s.leader.since ? `, since ${ago(s.leader.since)}` : ''}`
    : 'none (tasks wait until a master runs)';
  lines.push(`farm at ${connect}`);
  lines.push(`leader    ${leader}`);
  lines.push(`standbys  ${s.standbys.length ? s.standbys.join(', ') : 'none'}`);
  const capacity = s.workers.reduce((a, w) => a + w.capacity, 0);
  lines.push(
    `queue     ${s.queued} waiting${s.backlog > 0 ? ` (${s.backlog} in the backlog)` : ''}, ${s.assigned} assigned, ${s.statuses} results kept` +
      `, ${s.workers.length} workers with capacity ${capacity}`,
  );
  lines.push(...renderWaiting(s));
  if (s.queues.length > 0) {
    lines.push('');
    lines.push(...table(queueRows(s.queues)), ...queueWaitLines(s.queues));
    if (leaderBehind(s))
      lines.push(
        "(per queue: the leader's last count, at most about a second old; the queue line above is read now: nothing waits or runs)",
      );
  }
  if (s.workers.length > 0) {
    lines.push('');
    const rows = [['WORKER', 'LOAD', 'CAPACITY', 'STATE', 'HOST']];
    for (const w of s.workers) {
      const state = w.draining ? 'draining' : w.paused ? 'paused' : 'ready';
      rows.push([
        w.name,
        String(w.load),
        String(w.capacity),
        state,
        `${w.host}${w.pid ? ` pid ${w.pid}` : ''}`,
      ]);
    }
    lines.push(...table(rows));
  }
  lines.push('');
  if (s.recentFailures.length === 0) {
    lines.push(`no failures among the last ${s.recentWindow} results`);
  } else {
    lines.push(`recent failures (newest first, among the last ${s.recentWindow} results):`);
    const rows = [['TASK', 'WORKER', 'WHEN', 'ERROR']];
    for (const f of s.recentFailures) {
      const error = f.error.split('\n')[0]!;
      rows.push([
        f.id,
        f.worker ?? '-',
        ago(f.finishedAt),
        error.length > 100 ? `${error.slice(0, 100)}…` : error,
      ]);
    }
    lines.push(...table(rows));
  }
  return lines;
}
