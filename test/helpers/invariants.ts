/**
 * The farm's invariant checker, for any test and for the benchmarks. After a run:
 *
 * - every submitted task has exactly one /status, written once (its znode version is 0: never overwritten);
 * - /tasks and every /assign/<w> are empty (nothing stranded, nothing queued);
 * - every succeeded status that names an output directory has result.json there;
 * - re-executions are counted: statuses with `attempts > 1`, and runs of a task on workers other than the
 *   one that recorded its result (from the execution log, run-log.ts, and from output directories);
 * - with the execution log (`runs`): at most one run per assignment, each on the session that held it
 *   (run-log.ts `checkRuns`);
 * - when told which roles were disturbed (`disturbed`: killed, expired, restarted — see chaos.ts
 *   `watchRoles` and `runFaultPlan`), every re-execution must be traced to one of them:
 *     * `_zkfarm.lostOn` as seen in /tasks while the task waited to run again (`recordTaskHistory`) names
 *       the workers it was lost on: each must be disturbed;
 *     * a run in the execution log, or an output directory, on a worker other than the one that recorded
 *       the result means the task ran there too: that worker must be disturbed;
 *     * a re-run with neither kind of evidence (lost before any directory was made, and re-queued and
 *       taken again between two listings of /tasks) cannot be traced; it is counted as unverifiable, not
 *       as a failure.
 *   What cannot be verified from outside: the exact moment of a loss (we check the worker was disturbed
 *   at some point in the run, not that the loss coincided with it), and runs that were lost before they
 *   made their output directory when their re-queue was not observed.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { assignDir, PATHS, parseStatus, statusPath, type TaskStatus } from '../../src/farm/protocol.js';
import { allResultIds } from '../../src/farm/status-store.js';
import { whereIs } from '../../src/farm/task-locator.js';
import { type ConnectOptions, connect, isZkError, type ZkClient } from '../../src/zk/index.js';
import { checkRuns, type RunLog } from './run-log.js';

export interface InvariantOptions {
  /** Workers' output root: checks succeeded statuses have result.json, and finds extra runs. */
  workdir?: string;
  /**
   * Roles that were killed, expired or otherwise lost their session during the run. When given,
   * every re-execution must be traced to one of them.
   */
  disturbed?: ReadonlySet<string>;
  /** Re-queues observed during the run (see `recordTaskHistory`). */
  history?: TaskHistory;
  /** The execution log (run-log.ts): every run the workers started. */
  runs?: RunLog;
}

export interface InvariantReport {
  statuses: Map<string, TaskStatus>;
  missing: string[];
  leftInTasks: string[];
  leftInAssign: string[];
  missingOutput: string[];
  /** Statuses whose znode was changed after it was created (version > 0). */
  rewritten: string[];
  /** Tasks whose status says they ran more than once. */
  reruns: string[];
  /** Runs seen beyond one per task: output directories on workers other than the recording one. */
  extraRuns: number;
  /** With `disturbed`: re-runs traced to a disturbed worker. */
  rerunsVerified: number;
  /** With `disturbed`: re-runs with no evidence either way (see the module comment). */
  rerunsUnverifiable: number;
  /** With `disturbed`: re-runs or extra runs that name a worker nothing happened to. */
  unexplained: string[];
  /** With `runs`: runs of one assignment beyond the first, or on a session that did not hold it. */
  badRuns: string[];
  ok: boolean;
  problems: string[];
}

/** Output directories per task id: which workers made `<workdir>/<worker>/<task>/`. */
function runsByTask(workdir: string): Map<string, string[]> {
  const runs = new Map<string, string[]>();
  let workers: string[];
  try {
    workers = readdirSync(workdir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return runs;
  }
  for (const w of workers) {
    let tasks: string[];
    try {
      tasks = readdirSync(join(workdir, w));
    } catch {
      continue;
    }
    for (const t of tasks) {
      const list = runs.get(t);
      if (list) list.push(w);
      else runs.set(t, [w]);
    }
  }
  return runs;
}

export async function checkInvariants(
  client: ZkClient,
  ids: readonly string[],
  options: InvariantOptions = {},
): Promise<InvariantReport> {
  const statuses = new Map<string, TaskStatus>();
  const missing: string[] = [];
  const rewritten: string[] = [];
  // Bounded concurrency: a few thousand reads at once would only queue in the client.
  const queue = [...ids];
  await Promise.all(
    Array.from({ length: Math.min(64, queue.length) }, async () => {
      for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
        try {
          const { data, stat } = await client.getData(statusPath(id));
          statuses.set(id, parseStatus(data));
          if (stat.version !== 0) rewritten.push(id);
        } catch (err) {
          if (isZkError(err, 'NO_NODE')) missing.push(id);
          else throw err;
        }
      }
    }),
  );
  const leftInTasks = await client.getChildren(PATHS.tasks);
  const leftInAssign: string[] = [];
  for (const w of await client.getChildren(PATHS.assign)) {
    for (const t of await client.getChildren(assignDir(w)).catch(() => [] as string[]))
      leftInAssign.push(`${w}/${t}`);
  }
  const missingOutput: string[] = [];
  const runs = options.workdir ? runsByTask(options.workdir) : new Map<string, string[]>();
  for (const [task, workers] of options.runs?.workersOf() ?? [])
    runs.set(task, [...(runs.get(task) ?? []), ...workers]);
  if (options.workdir) {
    for (const [id, s] of statuses) {
      if (
        s.state === 'succeeded' &&
        s.worker &&
        s.outputDir !== undefined &&
        !existsSync(join(options.workdir, s.worker, id, 'result.json'))
      ) {
        missingOutput.push(id);
      }
    }
  }
  const reruns = [...statuses].filter(([, s]) => s.attempts > 1).map(([id]) => id);

  let extraRuns = 0;
  let rerunsVerified = 0;
  let rerunsUnverifiable = 0;
  const unexplained: string[] = [];
  for (const id of ids) {
    const s = statuses.get(id);
    const others = [...new Set((runs.get(id) ?? []).filter((w) => w !== s?.worker))];
    extraRuns += others.length;
    if (!options.disturbed) continue;
    const d = options.disturbed;
    const lostOn = options.history?.lostOn.get(id);
    const suspects = [...(lostOn ?? []), ...others].filter((w) => !d.has(w));
    if (suspects.length) {
      unexplained.push(
        `${id} (ran or was lost on ${[...new Set(suspects)].join(', ')}, which nothing disturbed)`,
      );
      continue;
    }
    if (!s || s.attempts <= 1) continue;
    if ((lostOn?.length ?? 0) > 0 || others.length > 0) rerunsVerified++;
    else if (d.size > 0) rerunsUnverifiable++;
    else unexplained.push(`${id} (attempts ${s.attempts}, and no role was disturbed)`);
  }

  const badRuns = options.runs ? checkRuns(options.runs.runs) : [];
  const problems: string[] = [];
  if (badRuns.length)
    problems.push(`${badRuns.length} runs against the protocol: ${badRuns.slice(0, 5).join('; ')}`);
  if (missing.length)
    problems.push(`${missing.length} tasks without a status: ${missing.slice(0, 5).join(', ')}`);
  if (rewritten.length)
    problems.push(`${rewritten.length} statuses were overwritten: ${rewritten.slice(0, 5).join(', ')}`);
  if (leftInTasks.length)
    problems.push(`${leftInTasks.length} left in /tasks: ${leftInTasks.slice(0, 5).join(', ')}`);
  if (leftInAssign.length)
    problems.push(`${leftInAssign.length} left in /assign: ${leftInAssign.slice(0, 5).join(', ')}`);
  if (missingOutput.length)
    problems.push(
      `${missingOutput.length} succeeded without output: ${missingOutput.slice(0, 5).join(', ')}`,
    );
  if (unexplained.length)
    problems.push(`${unexplained.length} unexplained re-executions: ${unexplained.slice(0, 5).join('; ')}`);
  return {
    statuses,
    missing,
    leftInTasks,
    leftInAssign,
    missingOutput,
    rewritten,
    reruns,
    extraRuns,
    rerunsVerified,
    rerunsUnverifiable,
    unexplained,
    badRuns,
    ok: problems.length === 0,
    problems,
  };
}

/** Wait until every id has a status (one listing of /status per poll), or throw. */
export async function waitForStatuses(
  client: ZkClient,
  ids: readonly string[],
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const want = new Set(ids);
  const pollMs = ids.length > 1000 ? 250 : 100;
  for (;;) {
    let n = 0;
    const missing: string[] = [];
    try {
      const have = new Set(await allResultIds(client));
      for (const id of want)
        if (have.has(id)) n++;
        else missing.push(id);
      if (n === want.size) return;
    } catch (err) {
      // A ZooKeeper member may be down right now: keep polling until the deadline.
      if (!isZkError(err) || !err.transient) throw err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `only ${n} of ${want.size} tasks have a status after ${timeoutMs} ms; ${await describeMissing(client, missing)}`,
      );
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Where the first few tasks without a status are, and who is registered, for a failure's message. */
async function describeMissing(client: ZkClient, missing: readonly string[]): Promise<string> {
  try {
    const places = await Promise.all(
      missing
        .slice(0, 5)
        .map(async (id) => `${id}: ${JSON.stringify(await whereIs(client, id), placeReplacer)}`),
    );
    const workers = await client.getChildren(PATHS.workers).catch(() => ['?']);
    return `where: ${places.join('; ')}; registered workers: ${workers.join(',')}`;
  } catch (err) {
    return `(could not look: ${(err as Error).message})`;
  }
}

const placeReplacer = (key: string, v: unknown) =>
  key === 'data' && v && typeof v === 'object' ? Buffer.from((v as { data: number[] }).data).toString() : v;

/** What a watcher of /tasks saw of re-queued tasks. */
export interface TaskHistory {
  /** Task id → the longest `_zkfarm.lostOn` seen in /tasks (the workers it was lost on). */
  readonly lostOn: Map<string, string[]>;
  /** Task id → times it was seen back in /tasks after a run (loss or retry). */
  readonly requeues: Map<string, number>;
  /** Tasks (first submissions and re-queues alike) that had left /tasks again before we could read them. */
  unread: number;
  stop(): Promise<void>;
}

/**
 * Watch /tasks for the run and read every task that appears: a task that carries `_zkfarm` has been
 * run before and came back (lost with its worker, or retried after a failure). Costs one listing of
 * /tasks per change and one read per task.
 */
export async function recordTaskHistory(options: ConnectOptions): Promise<TaskHistory> {
  const sup = connect({ sessionTimeout: 20_000, ...options });
  const history: TaskHistory = {
    lostOn: new Map(),
    requeues: new Map(),
    unread: 0,
    stop: () => sup.stop(),
  };
  await sup.ready;
  const watch = sup.watchChildren(PATHS.tasks, async ({ added }) => {
    const client = sup.session?.client;
    if (!client) return;
    await Promise.all(
      added.map(async (id) => {
        try {
          const { data } = await client.getData(`${PATHS.tasks}/${id}`);
          const meta = (
            JSON.parse(data.toString('utf8')) as { _zkfarm?: { attempts?: number; lostOn?: string[] } }
          )._zkfarm;
          if (!meta) return;
          history.requeues.set(id, (history.requeues.get(id) ?? 0) + 1);
          const lost = meta.lostOn ?? [];
          if (lost.length > (history.lostOn.get(id)?.length ?? 0)) history.lostOn.set(id, lost);
        } catch (err) {
          if (isZkError(err, 'NO_NODE')) history.unread++;
          // not JSON, or the connection dropped: nothing to learn from this one
        }
      }),
    );
  });
  await watch.ready;
  return history;
}
