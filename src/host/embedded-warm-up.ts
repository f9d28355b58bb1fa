/**
 * The embedded ZooKeeper is warmed before `runtime` says ready, so that a farm a user has just started is
 * fast from its first task: a new JVM runs ZooKeeper's request path interpreted until it has compiled
 * it, which otherwise slows the farm's first tens of thousands of tasks (benchmarks/README.md, the fresh
 * scenario).
 *
 * The roles' rehearsal (host/rehearsal.ts) does most of it: its tasks are the farm's own requests. Only
 * without a rehearsal (ZKFARM_REHEARSAL_TASKS=0) does a first part run beside the role threads' start:
 * creates and the farm's mix (warmUpServer) within ZKFARM_ZK_WARM_UP_MS (0 turns every part off). Then,
 * once the roles have started and the machine is quiet again, a burst of small requests of every kind
 * (warmUpRequests) for at most half that: the server's per-request code, which batched tasks exercise
 * rarely (benchmarks/README.md, "The embedded ZooKeeper's per-request path"). A warm-up that fails only
 * costs speed: it is reported, never fatal.
 */
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import { openClient } from '../zk/open-client.js';
import { readTlsFiles } from '../zk/transport.js';
import { warmUpRequests, warmUpServer } from '../zk/warm-up.js';
import type { EmbeddedZooKeeper } from './embedded.js';
import type { RehearsalReport } from './rehearsal.js';

/** The warm-up's bound when ZKFARM_ZK_WARM_UP_MS is not set (ms). */
export const DEFAULT_WARM_UP_MS = 3000;

/** Tasks the roles rehearse with on the embedded ZooKeeper when ZKFARM_REHEARSAL_TASKS is not set. */
export const DEFAULT_REHEARSAL_TASKS = 30_000;

/** Its bound from the environment: ZKFARM_ZK_WARM_UP_MS, a whole number of ms (0: off). */
export function warmUpBudget(env: NodeJS.ProcessEnv): number {
  return wholeNumber(env, 'ZKFARM_ZK_WARM_UP_MS', DEFAULT_WARM_UP_MS, 'milliseconds (0: no warm-up)');
}

/** The roles' rehearsal (host/rehearsal.ts) from the environment: ZKFARM_REHEARSAL_TASKS (0: off). */
export function rehearsalTasks(env: NodeJS.ProcessEnv): number {
  return wholeNumber(env, 'ZKFARM_REHEARSAL_TASKS', DEFAULT_REHEARSAL_TASKS, 'tasks (0: no rehearsal)');
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, unit: string): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `${name}: expected a whole number of ${unit}, got "${raw}"`,
    );
  return n;
}

/**
 * Warm the embedded server within `budgetMs`, ended early by `signal` (a user's task waiting); resolves
 * to the line runtime prints, never rejects.
 */
export async function warmEmbedded(
  embedded: EmbeddedZooKeeper,
  budgetMs: number,
  signal?: AbortSignal,
): Promise<string | undefined> {
  if (budgetMs === 0 || signal?.aborted) return undefined;
  const t0 = Date.now();
  try {
    return await withClient(embedded, async (client) => {
      const half = Math.ceil(budgetMs / 2);
      const w = await warmUpServer(client, { createsMs: half, mixMs: half, ...(signal ? { signal } : {}) });
      if (signal?.aborted)
        return `runtime: the embedded ZooKeeper's warm-up gave way after ${secondsSince(t0)} s: tasks were waiting in /tasks`;
      return (
        `runtime: the embedded ZooKeeper was warmed in ${secondsSince(t0)} s ` +
        `(${w.creates + w.moved} nodes; ZKFARM_ZK_WARM_UP_MS=0 skips it)`
      );
    });
  } catch (err) {
    return `runtime: warming the embedded ZooKeeper failed (${describeError(err)}); the farm runs, its first tasks more slowly`;
  }
}

/**
 * The second part, once the roles have started: small requests for at most half of `budgetMs` (and
 * 20,000 requests), ended early by `signal`. Resolves to the line runtime prints, never rejects.
 */
export async function warmEmbeddedRequests(
  embedded: EmbeddedZooKeeper,
  budgetMs: number,
  signal?: AbortSignal,
): Promise<string | undefined> {
  if (budgetMs === 0 || signal?.aborted) return undefined;
  const t0 = Date.now();
  try {
    const n = await withClient(embedded, (client) =>
      warmUpRequests(client, { ms: Math.ceil(budgetMs / 2), ...(signal ? { signal } : {}) }),
    );
    return `runtime: and its request path with ${n} small requests in ${secondsSince(t0)} s`;
  } catch (err) {
    return `runtime: warming the embedded ZooKeeper's request path failed (${describeError(err)}); the farm runs`;
  }
}

async function withClient<T>(embedded: EmbeddedZooKeeper, use: (client: ZkClient) => Promise<T>): Promise<T> {
  const client = await openClient(embedded.connect, {
    sessionTimeout: 10_000,
    timeoutMs: 10_000,
    ...(embedded.tls ? { tls: readTlsFiles(embedded.tls) } : {}),
  });
  try {
    return await use(client);
  } finally {
    client.connection.close();
  }
}

const secondsSince = (t0: number) => ((Date.now() - t0) / 1000).toFixed(1);

/** runtime's line about the roles' rehearsal. */
export function rehearsalLine(r: RehearsalReport): string {
  const secs = (r.ms / 1000).toFixed(1);
  if (r.error)
    return `runtime: the roles' rehearsal failed after ${secs} s (${r.error}); the farm runs, its first tasks more slowly`;
  if (r.interrupted && r.tasks === 0 && r.leader === undefined)
    return 'runtime: tasks were waiting in /tasks: the roles start without a rehearsal, their first tasks more slowly';
  if (r.interrupted)
    return `runtime: the roles' rehearsal gave way after ${r.tasks} tasks in ${secs} s: tasks were waiting in /tasks`;
  return `runtime: the roles rehearsed with ${r.tasks} tasks in ${secs} s (ZKFARM_REHEARSAL_TASKS=0 skips it)`;
}
