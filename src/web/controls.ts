/**
 * The dashboard's controls: POST endpoints that act on this process's roles and submit test tasks.
 *
 *   POST /api/roles/<name>/pause     a worker stops taking tasks; its queued ones go back to /tasks
 *   POST /api/roles/<name>/resume
 *   POST /api/roles/<name>/drain     a worker finishes its running tasks, gives back the rest, and leaves
 *                                    (202: it happens in the background)
 *   POST /api/roles/<name>/crash     a role's thread dies without clean-up (failover practice); the host
 *                                    restarts it after its backoff. Fault injection, so only when the
 *                                    dashboard was given zkfarm/testing's FaultInjector (`faults`)
 *   POST /api/roles                  {"kind": "worker", "name"?: string, "capacity"?} adds a worker (capacity as
 *                                    a worker's option, farm/options.ts; at most `maxAddedWorkers` added by
 *                                    the page still run: 429 beyond)
 *   POST /api/tasks                  {"handler": string, "input"?: any, "timeoutMs"?, "maxAttempts"?}
 *                                    submits a test task; shell tasks ("cmd") are refused here
 *   POST /api/tasks/<id>/cancel      {"reason"?, "by"?} cancels a task (task-controls.ts)
 *   POST /api/queues/<q>/pause       the queue's tasks stay queued (its /queues/<q>; every host honours it)
 *   POST /api/queues/<q>/resume
 *   POST /api/queues/<q>/set         {"rateLimit"?: number | null, "concurrency"?: number | null}
 *
 * Safety: every one answers 403 ZKFARM_CONTROLS_DISABLED unless the dashboard was started with controls
 * allowed; role actions need the host (409 ZKFARM_NO_HOST in `runtime dashboard`). The server checks
 * Host, the token, Content-Type and Origin before it gets here (server.ts, access.ts).
 */
import { describeError } from '../errors.js';
import { isSafeName } from '../exec/names.js';
import { expectedOf } from '../farm/option-schema.js';
import { workerFields } from '../farm/options.js';
import { checkTask, encode, PATHS, TASK_PREFIX } from '../farm/protocol.js';
import { QueueAdmin } from '../farm/queue-admin.js';
import { checkControls, describeControls, isQueueName, type QueueControls } from '../farm/queues.js';
import { ensureFreshTaskIds } from '../farm/task-ids.js';
import type { Host } from '../host/host.js';
import type { Logger } from '../zk/connect-options.js';
import type { Supervisor } from '../zk/supervisor.js';
import { HttpError, liveClient, WebErrorCodes } from './http.js';
import { scheduleControl } from './schedule-controls.js';
import { taskControl } from './task-controls.js';

/** What the Crash control needs: zkfarm/testing's FaultInjector has it. */
export interface RoleFaults {
  /** The role's thread dies at once without clean-up; resolves when it is gone. */
  crash(name: string): Promise<void>;
}

export interface ControlContext {
  enabled: boolean;
  host: Host | undefined;
  faults: RoleFaults | undefined;
  supervisor: Supervisor;
  log: Logger;
  /** Names of the workers this dashboard added. */
  added: Set<string>;
  maxAddedWorkers: number;
}

export type ControlAnswer = { status: number; body: Record<string, unknown> };

const ROLE_ACTIONS = ['pause', 'resume', 'drain', 'crash'] as const;
type RoleAction = (typeof ROLE_ACTIONS)[number];

export function controlsDisabled(): HttpError {
  return new HttpError(
    403,
    WebErrorCodes.CONTROLS_DISABLED,
    'controls are off on this dashboard: it shows the farm read-only. Start it with controls allowed ' +
      '(startDashboard({ controls: true }); keep such a dashboard on a loopback address)',
  );
}

export function crashDisabled(): HttpError {
  return new HttpError(
    403,
    WebErrorCodes.CONTROLS_DISABLED,
    'the Crash control is fault injection, off on this dashboard: start runtime with --http-controls ' +
      "--http-chaos (or give startDashboard zkfarm/testing's FaultInjector as faults) to practise failover",
  );
}

/** Route a POST under /api/; undefined when no control matches the path. */
export async function runControl(
  ctx: ControlContext,
  path: string,
  body: unknown,
): Promise<ControlAnswer | undefined> {
  const roleAction = /^\/api\/roles\/([^/]+)\/([a-z]+)$/.exec(path);
  const queueAction = /^\/api\/queues\/([^/]+)\/([a-z]+)$/.exec(path);
  const scheduleAction = /^\/api\/schedules\/([^/]+)\/([a-z]+)$/.exec(path);
  const taskAction = /^\/api\/tasks\/([^/]+)\/([a-z]+)$/.exec(path);
  const isControl =
    roleAction !== null ||
    queueAction !== null ||
    scheduleAction !== null ||
    taskAction !== null ||
    path === '/api/roles' ||
    path === '/api/tasks';
  if (!isControl) return undefined;
  if (!ctx.enabled) throw controlsDisabled();
  if (path === '/api/tasks') return submitTestTask(ctx, body);
  if (taskAction) {
    const id = decodeURIComponent(taskAction[1]!);
    return taskControl(liveClient(ctx.supervisor), ctx.log, id, taskAction[2]!, body);
  }
  if (queueAction) return queueControl(ctx, decodeURIComponent(queueAction[1]!), queueAction[2]!, body);
  if (scheduleAction)
    return scheduleControl(
      liveClient(ctx.supervisor),
      ctx.log,
      decodeURIComponent(scheduleAction[1]!),
      scheduleAction[2]!,
    );
  const host = needHost(ctx);
  if (path === '/api/roles') return addWorker(ctx, host, body);
  const name = decodeURIComponent(roleAction![1]!);
  const action = roleAction![2]! as RoleAction;
  if (!isSafeName(name))
    throw new HttpError(
      400,
      WebErrorCodes.BAD_REQUEST,
      `not a role name: ${JSON.stringify(String(name).slice(0, 40))}`,
    );
  if (!ROLE_ACTIONS.includes(action)) {
    throw new HttpError(
      404,
      WebErrorCodes.NOT_FOUND,
      `unknown action ${JSON.stringify(action)}: use one of ${ROLE_ACTIONS.join(', ')}`,
    );
  }
  return ROLE_ACTION_RUN[action](ctx, host, name);
}

type RoleActionRun = (ctx: ControlContext, host: Host, name: string) => Promise<ControlAnswer>;

/** What each action on one role does, and what the page is told. */
const ROLE_ACTION_RUN: Record<RoleAction, RoleActionRun> = {
  async pause(ctx, host, name) {
    await host.pause(name);
    ctx.log.info({ role: name }, `dashboard: paused ${name}`);
    return {
      status: 200,
      body: { ok: true, message: `${name} is paused: it takes no new tasks, its queued ones went back` },
    };
  },
  async resume(ctx, host, name) {
    await host.resume(name);
    ctx.log.info({ role: name }, `dashboard: resumed ${name}`);
    return { status: 200, body: { ok: true, message: `${name} takes tasks again` } };
  },
  async drain(ctx, host, name) {
    const info = await host.info(name);
    if (info.kind !== 'worker')
      throw new HttpError(
        400,
        WebErrorCodes.BAD_REQUEST,
        `${name} is a master: only workers drain (crash a master to try failover)`,
      );
    ctx.log.info({ role: name }, `dashboard: draining and removing ${name}`);
    void host.removeRole(name, { drain: true }).then(
      () => ctx.log.info({ role: name }, `dashboard: ${name} drained and removed`),
      (err) =>
        ctx.log.error({ err, role: name }, `dashboard: draining ${name} failed: ${describeError(err)}`),
    );
    return {
      status: 202,
      body: { ok: true, message: `${name} is draining: it finishes its running tasks, then leaves` },
    };
  },
  async crash(ctx, host, name) {
    if (!ctx.faults) throw crashDisabled();
    const info = await host.info(name);
    ctx.log.warn({ role: name }, `dashboard: crashing ${name} on request`);
    await ctx.faults.crash(name);
    const what = info.leader ? ' (it led: a standby takes over)' : '';
    return {
      status: 200,
      body: { ok: true, message: `${name} crashed${what}; the host restarts it after its backoff` },
    };
  },
};

function needHost(ctx: ControlContext): Host {
  if (!ctx.host) {
    throw new HttpError(
      409,
      WebErrorCodes.NO_HOST,
      'this dashboard runs no roles (it shows a farm from ZooKeeper alone): there is nothing here to pause, crash or add',
    );
  }
  return ctx.host;
}

async function addWorker(ctx: ControlContext, host: Host, body: unknown): Promise<ControlAnswer> {
  const b = (body ?? {}) as { kind?: unknown; name?: unknown; capacity?: unknown };
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, WebErrorCodes.BAD_REQUEST, 'expected a JSON object like {"kind": "worker"}');
  if (b.kind !== undefined && b.kind !== 'worker') {
    throw new HttpError(
      400,
      WebErrorCodes.BAD_REQUEST,
      `only workers can be added here, got kind ${JSON.stringify(b.kind)}`,
    );
  }
  const capacityField = workerFields.capacity;
  if (b.capacity !== undefined && !capacityField.schema.safeParse(b.capacity).success) {
    throw new HttpError(
      400,
      WebErrorCodes.BAD_REQUEST,
      `capacity: expected ${expectedOf(capacityField)}, got ${JSON.stringify(b.capacity)}`,
    );
  }
  const roles = await host.roles();
  for (const n of ctx.added) if (!roles.some((r) => r.name === n)) ctx.added.delete(n);
  if (ctx.added.size >= ctx.maxAddedWorkers) {
    throw new HttpError(
      429,
      WebErrorCodes.LIMIT_REACHED,
      `this dashboard already added ${ctx.added.size} workers that still run (its limit, maxAddedWorkers, is ${ctx.maxAddedWorkers}): ` +
        'drain one first, or start more workers from the command line or the config file',
    );
  }
  let name: string;
  if (b.name !== undefined) {
    if (typeof b.name !== 'string')
      throw new HttpError(400, WebErrorCodes.BAD_REQUEST, 'name: expected a string');
    name = b.name;
  } else {
    name = nextWorkerName(
      roles.map((r) => r.name),
      roles.filter((r) => r.kind === 'worker').map((r) => r.name),
    );
  }
  const capacity = (b.capacity as number | undefined) ?? roles.find((r) => r.kind === 'worker')?.capacity;
  const info = await host.addRole({ kind: 'worker', name, capacity });
  ctx.added.add(info.name);
  ctx.log.info({ role: name }, `dashboard: added worker ${name}`);
  return { status: 201, body: { ok: true, name: info.name, message: `worker ${info.name} started` } };
}

/** `w2` after `w1`, `gpu-worker-4` after `gpu-worker-3`; `worker-1` when there is no worker to follow. */
export function nextWorkerName(taken: readonly string[], workers: readonly string[]): string {
  const used = new Set(taken);
  const last = [...workers].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })).at(-1);
  const m = last ? /^(.*?)(\d+)$/.exec(last) : null;
  const stem = m ? m[1]! : 'worker-';
  let n = m ? Number(m[2]) + 1 : 1;
  while (used.has(`${stem}${n}`)) n++;
  return `${stem}${n}`;
}

async function submitTestTask(ctx: ControlContext, body: unknown): Promise<ControlAnswer> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(
      400,
      WebErrorCodes.BAD_REQUEST,
      'expected a JSON task like {"handler": "echo", "input": "hello"}',
    );
  }
  const t = body as Record<string, unknown>;
  if (t['cmd'] !== undefined) {
    throw new HttpError(
      400,
      WebErrorCodes.BAD_REQUEST,
      'the dashboard submits handler tasks only: shell commands ("cmd") are refused here; use runtime submit',
    );
  }
  const allowed = new Set(['handler', 'input', 'timeoutMs', 'maxAttempts']);
  const extra = Object.keys(t).filter((k) => !allowed.has(k));
  if (extra.length)
    throw new HttpError(
      400,
      WebErrorCodes.BAD_REQUEST,
      `unknown task fields ${extra.join(', ')}: a test task has handler, input, timeoutMs, maxAttempts`,
    );
  const task = checkTask(t);
  const client = ctx.supervisor.session?.client;
  if (!client)
    throw new HttpError(
      503,
      WebErrorCodes.NOT_CONNECTED,
      'the dashboard has no ZooKeeper session right now; try again in a moment',
    );
  await client.ensurePath(PATHS.tasks);
  await ensureFreshTaskIds(client, ctx.log);
  const path = await client.createSequential(`${PATHS.tasks}/${TASK_PREFIX}`, encode(task));
  const id = path.slice(PATHS.tasks.length + 1);
  ctx.log.info({ task: id, handler: task.handler }, `dashboard: submitted test task ${id}`);
  return { status: 201, body: { ok: true, id, message: `submitted ${id}` } };
}

/** Pause, resume or set a queue's limits (QueueAdmin: a version-checked write of /queues/<q>). */
async function queueControl(
  ctx: ControlContext,
  queue: string,
  action: string,
  body: unknown,
): Promise<ControlAnswer> {
  const client = liveClient(ctx.supervisor);
  const bad = (message: string) => new HttpError(400, WebErrorCodes.BAD_REQUEST, message);
  if (!isQueueName(queue)) throw bad(`not a queue name: ${JSON.stringify(String(queue).slice(0, 70))}`);
  let change: Partial<QueueControls>;
  if (action === 'pause' || action === 'resume') change = { paused: action === 'pause' };
  else if (action === 'set') {
    const b = (body ?? {}) as Record<string, unknown>;
    change = {};
    for (const key of ['rateLimit', 'concurrency'] as const)
      if (key in b) (change as Record<string, unknown>)[key] = b[key];
    const problem =
      Object.keys(change).length === 0
        ? 'give "rateLimit" and/or "concurrency" (a number, or null for none)'
        : checkControls(change);
    if (problem) throw bad(`queue ${queue}: ${problem}`);
  } else
    throw new HttpError(
      404,
      WebErrorCodes.NOT_FOUND,
      `unknown action ${JSON.stringify(action)}: use pause, resume or set`,
    );
  const controls = await new QueueAdmin(client).update(queue, change);
  ctx.log.info({ queue, controls }, `dashboard: queue ${queue} controls changed`);
  return {
    status: 200,
    body: { ok: true, queue, controls, message: `queue ${queue}: ${describeControls(controls)}` },
  };
}
