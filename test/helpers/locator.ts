/**
 * A waiter's TaskLocator (src/farm/task-locator.ts) run over tasks a test placed: it checks every 50 ms
 * and gives up on a task after two checks that find it nowhere. One task that never was is added, so
 * the run ends once the locator has given it up; every task that can be found must not be given up.
 */
import { TaskLocator } from '../../src/farm/task-locator.js';
import type { ZkClient } from '../../src/zk/client.js';
import type { Cleanup } from './cleanups.js';
import { until } from './wait.js';

export const NEVER_WAS = 'task-9999999999';

/** The ids the locator gave up on (NEVER_WAS among them), and the requests `client` made meanwhile. */
export async function locateAll(
  client: ZkClient,
  ids: readonly string[],
  cleanups: Cleanup[],
): Promise<{ nowhere: string[]; requests: number }> {
  const nowhere: string[] = [];
  const locator = new TaskLocator(
    () => client,
    (id) => nowhere.push(id),
    { everyMs: 50, firstMs: 10 },
  );
  cleanups.push(() => locator.close());
  const before = client.requests;
  for (const id of ids) locator.add(id);
  locator.add(NEVER_WAS);
  await until(() => nowhere.length > 0, 10_000, 'the locator giving up on a task that never was');
  return { nowhere, requests: client.requests - before };
}
