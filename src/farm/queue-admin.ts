/**
 * QueueAdmin: read and change the per-queue controls of a farm (for the CLI, the dashboard and
 * programs), and put together what the farm says of each queue.
 *
 * Znodes: reads and writes /queues/<queue> (its controls, queues.ts); `list` also reads /master (what
 * the leader says waits and runs, per queue) and /workers/* (who serves which queue).
 *
 * Writes are read, change, setData(version): two admins changing one queue at once both take effect
 * (the later one reads again when its version check fails), and a field one of them did not change
 * keeps its value. A queue's node is created on its first change.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import { childrenIfExists as children } from '../zk/compound.js';
import { isZkError } from '../zk/errors.js';
import { encode, type MasterInfo, PATHS, parseWorkerInfo, queuePath, type WorkerInfo } from './protocol.js';
import type { QueueSummary } from './queue-view.js';
import {
  checkControls,
  isQueueName,
  NO_CONTROLS,
  parseControls,
  QUEUE_NAME_EXPECTED,
  type QueueControls,
} from './queues.js';

/** What the farm says of one queue. */
export interface QueueOverview {
  queue: string;
  controls: QueueControls;
  /** Tasks waiting that the leader has read, by priority (only the priorities that have some). */
  byPriority: Record<string, number>;
  waiting: number;
  delayed: number;
  /** Tasks assigned and not finished, as the leader last counted them. */
  running: number;
  /** Live workers that serve it. */
  servedBy: string[];
  /** Why its tasks wait, as the leader says. */
  blocked: Array<{ reason: string; tasks: number; needs?: string }>;
  /** A control in its node that is not valid (it counts as unset). */
  problem?: string;
}

/** Most optimistic-write attempts before giving up (another admin keeps changing the queue). */
const MAX_TRIES = 20;

export class QueueAdmin {
  readonly #client: ZkClient;

  constructor(client: ZkClient) {
    this.#client = client;
  }

  /** The queue's controls (none set: not paused, no limits). */
  async controls(queue: string): Promise<QueueControls> {
    checkName(queue);
    try {
      return parseControls((await this.#client.getData(queuePath(queue))).data).controls;
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return { ...NO_CONTROLS };
      throw err;
    }
  }

  pause(queue: string): Promise<QueueControls> {
    return this.update(queue, { paused: true });
  }

  resume(queue: string): Promise<QueueControls> {
    return this.update(queue, { paused: false });
  }

  /** Change some controls (null: remove that limit); returns the controls now stored. */
  async update(queue: string, change: Partial<QueueControls>): Promise<QueueControls> {
    checkName(queue);
    const problem = checkControls(change);
    if (problem) throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, `queue ${queue}: ${problem}`);
    const path = queuePath(queue);
    for (let i = 0; i < MAX_TRIES; i++) {
      const current = await this.#client.getData(path).catch((err: unknown) => {
        if (isZkError(err, 'NO_NODE')) return undefined;
        throw err;
      });
      const next: QueueControls = { ...parseControls(current?.data).controls, ...change };
      try {
        if (current) await this.#client.setData(path, encode(next), current.stat.version);
        else await this.#client.ensurePath(PATHS.queues).then(() => this.#client.create(path, encode(next)));
        return next;
      } catch (err) {
        // Changed or created meanwhile by someone else: read again and apply ours on top.
        if (!isZkError(err, 'BAD_VERSION') && !isZkError(err, 'NODE_EXISTS') && !isZkError(err, 'NO_NODE'))
          throw err;
      }
    }
    throw new ZkfarmError(
      ErrorCodes.QUEUE_CONFLICT,
      `queue ${queue}: its controls kept changing under us (${MAX_TRIES} tries); try again`,
    );
  }

  /** Every queue the farm knows of (has controls, has tasks the leader read, or a worker serves it). */
  async list(): Promise<QueueOverview[]> {
    const [names, master, workers] = await Promise.all([
      children(this.#client, PATHS.queues),
      this.#client.getJson<MasterInfo>(PATHS.master).then(
        (r) => r.value,
        () => undefined,
      ),
      this.#workers(),
    ]);
    const controls = new Map<string, { controls: QueueControls; problem?: string }>();
    await Promise.all(
      names.map(async (q) => {
        const data = await this.#client.getData(queuePath(q)).then(
          (r) => r.data,
          () => null,
        );
        controls.set(q, parseControls(data));
      }),
    );
    return queueOverview(controls, master?.queue, workers);
  }

  async #workers(): Promise<Array<[string, WorkerInfo]>> {
    const names = await children(this.#client, PATHS.workers);
    const infos = await Promise.all(
      names.map((n) =>
        this.#client.getData(`${PATHS.workers}/${n}`).then(
          (r) => parseWorkerInfo(r.data),
          () => undefined,
        ),
      ),
    );
    return names.flatMap((n, i) => (infos[i] ? [[n, infos[i]] as [string, WorkerInfo]] : []));
  }
}

/** Put together, per queue, its controls, what the leader says of it, and who serves it. */
export function queueOverview(
  controls: ReadonlyMap<string, { controls: QueueControls; problem?: string }>,
  summary: QueueSummary | undefined,
  workers: ReadonlyArray<readonly [string, WorkerInfo]>,
): QueueOverview[] {
  const out = new Map<string, QueueOverview>();
  const of = (queue: string) => {
    let o = out.get(queue);
    if (!o) {
      const c = controls.get(queue);
      o = {
        queue,
        controls: c?.controls ?? { ...NO_CONTROLS },
        byPriority: {},
        waiting: 0,
        delayed: 0,
        running: summary?.running?.[queue] ?? 0,
        servedBy: [],
        blocked: [],
        ...(c?.problem ? { problem: c.problem } : {}),
      };
      out.set(queue, o);
    }
    return o;
  };
  for (const q of controls.keys()) of(q);
  for (const w of summary?.queues ?? []) {
    const o = of(w.queue);
    Object.assign(o, {
      byPriority: w.byPriority,
      waiting: w.waiting,
      delayed: w.delayed,
      blocked: w.blocked,
    });
  }
  for (const q of Object.keys(summary?.running ?? {})) if (q !== '') of(q);
  for (const [name, info] of workers) for (const q of info.queues) of(q.name).servedBy.push(name);
  for (const o of out.values()) o.servedBy.sort();
  return [...out.values()].sort((a, b) => (a.queue < b.queue ? -1 : 1));
}

function checkName(queue: string): void {
  if (!isQueueName(queue))
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `queue: expected ${QUEUE_NAME_EXPECTED}, got ${JSON.stringify(queue)}`,
    );
}
