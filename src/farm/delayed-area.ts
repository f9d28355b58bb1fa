/**
 * The leader's due-time area: tasks due later than `thresholdMs` wait in /delayed/<slot>/<task-id>
 * (due-time.ts) instead of /tasks, so that neither the inbox's listings nor the leader's memory carry
 * them; each goes back to /tasks shortly before it is due, where the queue's own wait for
 * `_zkfarm.notBefore` starts it on time.
 *
 *   delay     the inbox read a task due beyond the threshold: `delayMoves` makes its slot and builds
 *             the move (moves.ts `delay`: one multi), which the leader writes with the inbox's others
 *   pass      on the PassLoop recipe: each slot whose hour begins within the threshold is listed once
 *             (its tasks' due times read, in reads of 100); the tasks due within the threshold go back
 *             (moves.ts `undelay`, one multi each, written together through the leader's batcher);
 *             a slot whose hour has passed and that holds nothing is removed. It wakes for the next
 *             task due, or the next slot's hour, less the threshold.
 *
 * The leader's memory: one count per slot (one per hour that has delayed tasks: ~8,800 for a year)
 * and the due times of the open slots' tasks only (the current hour's, and the hours already passed).
 * Far-future tasks cost nothing until their hour comes.
 *
 * Znodes: lists /delayed and its open slots, stats each slot once per term (its count), reads the
 * open slots' tasks, makes /delayed/<slot> before the first delay into it, removes empty past slots.
 * Only the leading master writes /delayed.
 *
 * Leader change: a new leader's first pass lists /delayed and moves back every task due by then, so a
 * task due while no master led starts as soon as one leads. A crash between moves leaves every task in
 * exactly one place (each move is one multi).
 * SUSPENDED: a pass's requests fail; the loop retries after a backoff. LOST: the term's signal aborts.
 */
import type { MultiBatcher } from '../recipes/multi-batcher.js';
import { PassLoop } from '../recipes/pass-loop.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError, type ZkError } from '../zk/errors.js';
import { DELAYED_ROOT, delayedSlotPath, SLOT_MS, slotOf, slotOfName, slotStart } from './due-time.js';
import { delay, type Move, undelay } from './moves.js';
import { parseTask, type Task } from './protocol.js';
import { writeMoves } from './status-store.js';

/** A task read from /tasks that is due beyond the threshold. */
export interface DueLater {
  id: string;
  task: Task;
  due: number;
  ctime: number;
  version: number;
}

export interface DelayedAreaOptions {
  /** A task due further ahead than this waits in /delayed. */
  thresholdMs: number;
  signal: AbortSignal;
  log: Logger;
}

/** Reads of an open slot's tasks per round trip. */
const READS = 100;
/** A task ZooKeeper refused to move back is tried again this much later. */
const RETRY_REFUSED_MS = 60_000;

export class DelayedArea {
  readonly thresholdMs: number;
  readonly #client: ZkClient;
  readonly #batcher: MultiBatcher;
  readonly #log: Logger;
  readonly #loop: PassLoop;
  /** Every slot known to exist, with how many tasks it holds. */
  readonly #slots = new Map<number, number>();
  /** The open slots (listed): their tasks' due times. */
  readonly #open = new Map<number, Map<string, number>>();
  #rootListed = false;

  constructor(client: ZkClient, batcher: MultiBatcher, options: DelayedAreaOptions) {
    this.#client = client;
    this.#batcher = batcher;
    this.#log = options.log;
    this.thresholdMs = options.thresholdMs;
    this.#loop = new PassLoop(() => this.#pass(), {
      what: 'moving due tasks out of /delayed',
      signal: options.signal,
      log: options.log,
    });
  }

  /** Passes run to the end this term. */
  get passes(): number {
    return this.#loop.passes;
  }

  /** Tasks in the area, as counted. */
  count(): number {
    let n = 0;
    for (const c of this.#slots.values()) n += c;
    return n;
  }

  start(): void {
    this.#loop.kick();
  }

  /** The moves of tasks due beyond the threshold, their slots made first. */
  async delayMoves(tasks: readonly DueLater[]): Promise<Move[]> {
    const missing = new Set<number>();
    for (const t of tasks) if (!this.#slots.has(slotOf(t.due))) missing.add(slotOf(t.due));
    await Promise.all([...missing].map((s) => this.#client.ensurePath(delayedSlotPath(s))));
    for (const s of missing) if (!this.#slots.has(s)) this.#slots.set(s, 0);
    return tasks.map((t) => delay(t.id, t.task, t.due, t.ctime, t.version));
  }

  /** A delay move was written (the leader's commit): count it, and follow it if its slot is open. */
  written(m: Move): void {
    const due = m.due;
    if (m.kind !== 'delay' || due === undefined) return;
    const slot = slotOf(due);
    this.#slots.set(slot, (this.#slots.get(slot) ?? 0) + 1);
    const open = this.#open.get(slot);
    open?.set(m.id, due);
    // An open slot's task wakes the pass for itself; a slot not open yet, for its hour.
    this.#loop.wakeAt((open ? due : slotStart(slot)) - this.thresholdMs);
  }

  /** A delay move ZooKeeper refused for its slot's sake: the slot is made again next time. */
  refused(m: Move, error: ZkError): void {
    if (m.kind === 'delay' && m.due !== undefined && error.code === 'NO_NODE' && error.path === m.to)
      this.#forget(slotOf(m.due));
  }

  async #pass(): Promise<void> {
    if (!this.#rootListed) await this.#listRoot();
    const horizon = Date.now() + this.thresholdMs;
    for (const slot of [...this.#slots.keys()].sort((a, b) => a - b)) {
      if (slotStart(slot) > horizon) break;
      if (!this.#open.has(slot)) await this.#openSlot(slot);
      await this.#moveDue(slot, horizon);
      await this.#removeIfDone(slot, horizon);
    }
    const next = this.#nextWake();
    if (next !== undefined) this.#loop.wakeAt(next - this.thresholdMs);
  }

  /** Every slot and its count, from a listing and a stat per slot (once per term). */
  async #listRoot(): Promise<void> {
    const names = await this.#client.getChildren(DELAYED_ROOT).catch((err: unknown) => {
      if (isZkError(err, 'NO_NODE')) return [];
      throw err;
    });
    const slots = names.flatMap((n) => {
      const s = slotOfName(n);
      return s === undefined ? [] : [s];
    });
    const stats = await Promise.all(slots.map((s) => this.#client.exists(delayedSlotPath(s))));
    slots.forEach((s, i) => {
      const st = stats[i];
      if (st) this.#slots.set(s, st.numChildren);
    });
    this.#rootListed = true;
  }

  /** List a slot whose hour has come and learn its tasks' due times. */
  async #openSlot(slot: number): Promise<void> {
    const path = delayedSlotPath(slot);
    // Open before listing: a delay written meanwhile (`written`) lands in the map whether or not the
    // listing shows it, so none is left behind.
    const dues = new Map<string, number>();
    this.#open.set(slot, dues);
    try {
      await this.#learn(path, dues);
    } catch (err) {
      this.#open.delete(slot);
      throw err;
    }
    this.#slots.set(slot, dues.size);
  }

  async #learn(path: string, dues: Map<string, number>): Promise<void> {
    const ids = await this.#client.getChildren(path).catch((err: unknown) => {
      if (isZkError(err, 'NO_NODE')) return [];
      throw err;
    });
    for (let i = 0; i < ids.length; i += READS) {
      const part = ids.slice(i, i + READS);
      const reads = await this.#client.getDataMany(part.map((id) => `${path}/${id}`));
      reads.forEach((r, j) => {
        // Data that is not a task goes back at once: the queue's admission gives it a failed status.
        if (!(r instanceof Error)) dues.set(part[j]!, dueInData(r.data));
        else if (!isZkError(r, 'NO_NODE')) throw r;
      });
    }
  }

  /** Move the open slot's tasks due by `horizon` back into /tasks. */
  async #moveDue(slot: number, horizon: number): Promise<void> {
    const dues = this.#open.get(slot)!;
    const ids = [...dues].filter(([, due]) => due <= horizon).map(([id]) => id);
    const path = delayedSlotPath(slot);
    for (let i = 0; i < ids.length; i += READS) {
      const part = ids.slice(i, i + READS);
      const reads = await this.#client.getDataMany(part.map((id) => `${path}/${id}`));
      const moves: Move[] = [];
      reads.forEach((r, j) => {
        const id = part[j]!;
        if (!(r instanceof Error)) moves.push(undelay(id, `${path}/${id}`, r.data, r.stat.version));
        else if (isZkError(r, 'NO_NODE')) this.#left(slot, id);
        else throw r;
      });
      await this.#write(slot, moves);
    }
  }

  async #write(slot: number, moves: Move[]): Promise<void> {
    const r = await writeMoves(this.#batcher, this.#client, moves, (written) => {
      for (const m of written) this.#left(slot, m.id);
    });
    for (const { item, error } of r.refused) {
      if (error.code === 'NO_NODE' && error.path === item.from) this.#left(slot, item.id);
      else if (error.code === 'BAD_VERSION')
        continue; // changed since read: the next pass reads it again
      else {
        // Tried again a minute on (not at once: the next pass would only be refused again).
        this.#open.get(slot)?.set(item.id, Date.now() + RETRY_REFUSED_MS);
        this.#log.warn(
          { task: item.id, code: error.code, path: error.path },
          `task ${item.id} is due but cannot go back to /tasks (${error.code} on ${error.path}); it stays in ${item.from} and is tried again in a minute`,
        );
      }
    }
    if (r.stoppedBy !== undefined) throw r.stoppedBy;
  }

  #left(slot: number, id: string): void {
    if (this.#open.get(slot)?.delete(id))
      this.#slots.set(slot, Math.max(0, (this.#slots.get(slot) ?? 1) - 1));
  }

  /**
   * Remove a slot that holds nothing once its whole hour is within the threshold: no task can be
   * delayed into it any more (a delay is for a task due beyond the threshold).
   */
  async #removeIfDone(slot: number, horizon: number): Promise<void> {
    if (slotStart(slot) + SLOT_MS > horizon || (this.#open.get(slot)?.size ?? 0) > 0) return;
    this.#forget(slot);
    try {
      await this.#client.remove(delayedSlotPath(slot));
    } catch (err) {
      // NOT_EMPTY: someone put a task there after all; the next term's listing finds it.
      if (!isZkError(err, 'NO_NODE') && !isZkError(err, 'NOT_EMPTY')) throw err;
    }
  }

  #forget(slot: number): void {
    this.#slots.delete(slot);
    this.#open.delete(slot);
  }

  /** The next due time among the open slots, or the next slot's hour. */
  #nextWake(): number | undefined {
    let next = Number.POSITIVE_INFINITY;
    for (const [slot, dues] of this.#open) {
      for (const due of dues.values()) if (due < next) next = due;
      if (dues.size === 0 && slotStart(slot) + SLOT_MS < next) next = slotStart(slot) + SLOT_MS;
    }
    for (const slot of this.#slots.keys())
      if (!this.#open.has(slot) && slotStart(slot) < next) next = slotStart(slot);
    return Number.isFinite(next) ? next : undefined;
  }
}

/** The due time a node of the area holds (`_zkfarm.notBefore`); 0 (due) when it holds none. */
function dueInData(data: Buffer): number {
  const parsed = parseTask(data);
  const due = parsed.ok ? parsed.task._zkfarm?.notBefore : undefined;
  return typeof due === 'number' ? due : 0;
}
