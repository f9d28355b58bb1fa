/**
 * Progress of running tasks in ZooKeeper, without a write per report.
 *
 * Znodes (public, read-only for clients; docs/protocol.md "Progress"):
 *   /progress                  persistent   made by each worker when it registers
 *   /progress/<task-id>        ephemeral    the worker's session: {"worker", "attempt", "value"?, "message"?, "at"}
 *
 * A task reports as often as it likes (exec/progress.ts); the worker keeps the latest report and writes
 * it at most once per `intervalMs` per task: the first report at once (a create), later ones when the
 * interval since the last write has passed (a setData of the latest; what came between is dropped:
 * latest value wins). The node goes when the task's completion is written (the worker deletes it), and
 * with the worker's session if the worker dies: no node outlives its task's run for long, and the
 * listing of /progress holds at most the tasks running with progress across the farm.
 *
 * SUSPENDED: writes fail and are not retried; the next report (or the interval's timer) writes again.
 * LOST: the ephemerals went with the session; the next report creates the node on the new session.
 */
import { describeError } from '../errors.js';
import type { TaskProgress } from '../exec/index.js';
import { CreateMode, type ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import { encode, PATHS } from './protocol.js';

export const progressPath = (id: string) => `${PATHS.progress}/${id}`;

/** Writes per task at most once per this many ms. */
export const PROGRESS_INTERVAL_MS = 1000;

/** What /progress/<task-id> holds. */
export interface ProgressRecord extends TaskProgress {
  worker: string;
  attempt: number;
  /** When the report it holds was made (ms since the epoch). */
  at: number;
}

interface Tracked {
  attempt: number;
  /** The latest report not written yet. */
  latest: ProgressRecord | undefined;
  /** When the last write went out (performance.now()), and on which session its node was made. */
  wroteAt: number;
  madeOn: Session | undefined;
  writing: boolean;
  timer: NodeJS.Timeout | undefined;
  ended: boolean;
}

export class ProgressPublisher {
  readonly #worker: string;
  readonly #session: () => Session | undefined;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #tasks = new Map<string, Tracked>();

  constructor(
    worker: string,
    session: () => Session | undefined,
    log: Logger,
    intervalMs = PROGRESS_INTERVAL_MS,
  ) {
    this.#worker = worker;
    this.#session = session;
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /** A report of task `id` (run `attempt`): written now, or kept to be written when the interval allows. */
  report(id: string, attempt: number, progress: TaskProgress): void {
    let t = this.#tasks.get(id);
    if (!t || t.attempt !== attempt) {
      if (t) clearTimeout(t.timer);
      t = {
        attempt,
        latest: undefined,
        wroteAt: -Infinity,
        madeOn: undefined,
        writing: false,
        timer: undefined,
        ended: false,
      };
      this.#tasks.set(id, t);
    }
    t.latest = { worker: this.#worker, attempt, ...progress, at: Date.now() };
    this.#schedule(id, t);
  }

  #schedule(id: string, t: Tracked): void {
    if (t.writing || t.timer || t.ended || !t.latest) return;
    const wait = t.wroteAt + this.#intervalMs - performance.now();
    if (wait <= 0) void this.#write(id, t);
    else {
      t.timer = setTimeout(() => {
        t.timer = undefined;
        this.#schedule(id, t);
      }, wait);
      t.timer.unref?.();
    }
  }

  async #write(id: string, t: Tracked): Promise<void> {
    const session = this.#session();
    const record = t.latest!;
    t.latest = undefined;
    t.writing = true;
    t.wroteAt = performance.now();
    try {
      if (!session) return;
      await this.#put(session, id, t, encode(record));
    } catch (err) {
      if (session?.alive) this.#log.debug({ err, task: id }, `progress not published: ${describeError(err)}`);
    } finally {
      t.writing = false;
      if (t.ended) await this.#remove(id, t);
      else this.#schedule(id, t);
    }
  }

  /** Create the node on this session (NODE_EXISTS: our own earlier node), or set its data. */
  async #put(session: Session, id: string, t: Tracked, data: Buffer): Promise<void> {
    const client = session.client;
    if (t.madeOn === session) {
      await client.setData(progressPath(id), data);
      return;
    }
    try {
      await client.create(progressPath(id), data, CreateMode.EPHEMERAL);
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) {
        await client.ensurePath(PATHS.progress);
        await client.create(progressPath(id), data, CreateMode.EPHEMERAL);
      } else if (isZkError(err, 'NODE_EXISTS')) await client.setData(progressPath(id), data);
      else throw err;
    }
    t.madeOn = session;
  }

  /** The task's run is over (its completion was written, or it was given up): its node goes. */
  end(id: string): void {
    const t = this.#tasks.get(id);
    if (!t) return;
    clearTimeout(t.timer);
    t.timer = undefined;
    t.ended = true;
    t.latest = undefined;
    if (!t.writing) void this.#remove(id, t);
  }

  async #remove(id: string, t: Tracked): Promise<void> {
    if (this.#tasks.get(id) === t) this.#tasks.delete(id);
    const session = t.madeOn;
    if (!session?.alive) return;
    await session.client.removeIfExists(progressPath(id)).catch(() => {});
  }

  /** Tasks tracked now (for tests and stats). */
  get size(): number {
    return this.#tasks.size;
  }
}

/** A task's latest published progress, or undefined when it has none (not running, or never reported). */
export async function readTaskProgress(client: ZkClient, id: string): Promise<ProgressRecord | undefined> {
  try {
    const { data } = await client.getData(progressPath(id));
    return JSON.parse(data.toString('utf8')) as ProgressRecord;
  } catch (err) {
    if (isZkError(err, 'NO_NODE') || err instanceof SyntaxError) return undefined;
    throw err;
  }
}
