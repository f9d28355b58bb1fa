/**
 * The embedded ZooKeeper is warmed while the roles start (src/zk/warm-up.ts), so that a farm a user has
 * just started is fast from its first task: a new JVM runs ZooKeeper's request path interpreted until it
 * has compiled it, which otherwise slows the farm's first tens of thousands of tasks
 * (benchmarks/README.md, the fresh scenario).
 *
 * It runs beside the role threads' start, which leaves ZooKeeper mostly idle, and `runtime` says ready
 * once both are done. Bounded by ZKFARM_ZK_WARM_UP_MS (milliseconds in all, half creates and half the
 * farm's mix; 0 turns it off). A warm-up that fails only costs speed: it is reported, never fatal.
 */
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { openClient, readTlsFiles } from '../zk/index.js';
import { warmUpServer } from '../zk/warm-up.js';
import type { EmbeddedZooKeeper } from './embedded.js';

/** The warm-up's bound when ZKFARM_ZK_WARM_UP_MS is not set (ms). */
export const DEFAULT_WARM_UP_MS = 3000;

/** Its bound from the environment: ZKFARM_ZK_WARM_UP_MS, a whole number of ms (0: off). */
export function warmUpBudget(env: NodeJS.ProcessEnv): number {
  const raw = env['ZKFARM_ZK_WARM_UP_MS'];
  if (raw === undefined || raw.trim() === '') return DEFAULT_WARM_UP_MS;
  const ms = Number(raw);
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `ZKFARM_ZK_WARM_UP_MS: expected a whole number of milliseconds (0: no warm-up), got "${raw}"`,
    );
  return ms;
}

/** Warm the embedded server within `budgetMs`; resolves to the line runtime prints, never rejects. */
export async function warmEmbedded(
  embedded: EmbeddedZooKeeper,
  budgetMs: number,
): Promise<string | undefined> {
  if (budgetMs === 0) return undefined;
  const t0 = Date.now();
  try {
    const client = await openClient(embedded.connect, {
      sessionTimeout: 10_000,
      timeoutMs: 10_000,
      ...(embedded.tls ? { tls: readTlsFiles(embedded.tls) } : {}),
    });
    try {
      const half = Math.ceil(budgetMs / 2);
      const w = await warmUpServer(client, { createsMs: half, mixMs: half });
      return (
        `runtime: the embedded ZooKeeper was warmed in ${((Date.now() - t0) / 1000).toFixed(1)} s ` +
        `(${w.creates + w.moved} nodes; ZKFARM_ZK_WARM_UP_MS=0 skips it)`
      );
    } finally {
      client.connection.close();
    }
  } catch (err) {
    return `runtime: warming the embedded ZooKeeper failed (${describeError(err)}); the farm runs, its first tasks more slowly`;
  }
}
