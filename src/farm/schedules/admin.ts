/**
 * ScheduleAdmin: create, list, pause, resume and remove schedules (for the CLI, the dashboard and
 * programs). The leading master makes the ticks (scheduler.ts).
 *
 * Znodes: creates, reads, changes and deletes /schedules/<name>; `list` lists /schedules.
 *
 * Changes are read, change, setData(version): a change made meanwhile by the scheduler (a tick) or
 * another admin is read again and ours applied on top (up to MAX_TRIES), so the farm's state (`next`,
 * `ticks`) is never overwritten with an older one.
 */
import { ErrorCodes, ZkfarmError } from '../../errors.js';
import type { ZkClient } from '../../zk/client.js';
import { isZkError } from '../../zk/errors.js';
import { encode } from '../protocol.js';
import {
  isScheduleName,
  newRecord,
  nextTick,
  parseRecord,
  SCHEDULE_NAME_EXPECTED,
  SCHEDULES_PATH,
  type ScheduleRecord,
  type ScheduleSpec,
  schedulePath,
} from './model.js';

/** A schedule as `list` and `get` show it. */
export interface ScheduleInfo {
  name: string;
  /** The record, or undefined when the node is not a valid one (`problem` says why). */
  record?: ScheduleRecord;
  problem?: string;
}

const MAX_TRIES = 20;

function checkName(name: string): void {
  if (!isScheduleName(name))
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `schedule name ${JSON.stringify(name)}: expected ${SCHEDULE_NAME_EXPECTED}`,
    );
}

export class ScheduleAdmin {
  readonly #client: ZkClient;

  constructor(client: ZkClient) {
    this.#client = client;
  }

  /**
   * Create a schedule (ZKFARM_SCHEDULE_CONFLICT when the name is taken, unless `replace`: then its spec
   * is replaced and its next tick computed again from now; its counts are kept).
   */
  async create(
    name: string,
    spec: ScheduleSpec,
    options: { replace?: boolean } = {},
  ): Promise<ScheduleRecord> {
    checkName(name);
    const fresh = newRecord(spec, Date.now());
    await this.#client.ensurePath(SCHEDULES_PATH);
    try {
      await this.#client.create(schedulePath(name), encode(fresh));
      return fresh;
    } catch (err) {
      if (!isZkError(err, 'NODE_EXISTS')) throw err;
      if (!options.replace)
        throw new ZkfarmError(
          ErrorCodes.SCHEDULE_CONFLICT,
          `schedule ${name} exists already: remove it first or replace it (--replace)`,
        );
    }
    return this.#change(name, (old) => ({
      ...fresh,
      ticks: old?.ticks,
      lastTick: old?.lastTick,
      missed: old?.missed,
      createdAt: old?.createdAt ?? fresh.createdAt,
    }));
  }

  async get(name: string): Promise<ScheduleInfo> {
    checkName(name);
    try {
      const { data } = await this.#client.getData(schedulePath(name));
      return { name, ...parseRecord(data) };
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) throw notFound(name);
      throw err;
    }
  }

  async list(): Promise<ScheduleInfo[]> {
    const names = await this.#client.getChildren(SCHEDULES_PATH).catch((err: unknown) => {
      if (isZkError(err, 'NO_NODE')) return [] as string[];
      throw err;
    });
    const reads = await this.#client.getDataMany(names.sort().map(schedulePath));
    return names.flatMap((name, i) => {
      const r = reads[i]!;
      return r instanceof Error ? [] : [{ name, ...parseRecord(r.data) }];
    });
  }

  /** Pause: no ticks until resumed. */
  pause(name: string): Promise<ScheduleRecord> {
    return this.#change(name, (rec) => ({ ...rec!, paused: true }), true);
  }

  /** Resume: the next tick is the first one after now (ticks while paused are not made up). */
  resume(name: string): Promise<ScheduleRecord> {
    return this.#change(name, (rec) => ({ ...rec!, paused: false, next: nextTick(rec!, Date.now()) }), true);
  }

  /** Remove; false when there was none. */
  async remove(name: string): Promise<boolean> {
    checkName(name);
    try {
      await this.#client.remove(schedulePath(name));
      return true;
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return false;
      throw err;
    }
  }

  async #change(
    name: string,
    edit: (old: ScheduleRecord | undefined) => ScheduleRecord,
    mustBeValid = false,
  ): Promise<ScheduleRecord> {
    checkName(name);
    const path = schedulePath(name);
    for (let i = 0; i < MAX_TRIES; i++) {
      const current = await this.#client.getData(path).catch((err: unknown) => {
        if (isZkError(err, 'NO_NODE')) throw notFound(name);
        throw err;
      });
      const { record, problem } = parseRecord(current.data);
      if (mustBeValid && !record)
        throw new ZkfarmError(
          ErrorCodes.INVALID_SCHEDULE,
          `schedule ${name} is not valid (${problem}): replace it (create --replace) or remove it`,
        );
      const next = edit(record);
      try {
        await this.#client.setData(path, encode(next), current.stat.version);
        return next;
      } catch (err) {
        if (!isZkError(err, 'BAD_VERSION')) throw err;
      }
    }
    throw new ZkfarmError(
      ErrorCodes.SCHEDULE_CONFLICT,
      `schedule ${name} kept changing under us (${MAX_TRIES} tries); try again`,
    );
  }
}

function notFound(name: string): ZkfarmError {
  return new ZkfarmError(
    ErrorCodes.SCHEDULE_NOT_FOUND,
    `no schedule named ${name} (see runtime schedule ls)`,
  );
}
