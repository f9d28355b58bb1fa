/**
 * The dashboard's schedule controls (POST, controls on only):
 *   POST /api/schedules/<name>/pause    no ticks until resumed
 *   POST /api/schedules/<name>/resume   ticks again from the first one after now
 *   POST /api/schedules/<name>/remove   the schedule is deleted (tasks it made stay)
 * Each is one ScheduleAdmin call: a version-checked write (or delete) of /schedules/<name>.
 */
import { ErrorCodes, hasCode } from '../errors.js';
import { ScheduleAdmin } from '../farm/schedules/admin.js';
import { isScheduleName } from '../farm/schedules/model.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { HttpError, WebErrorCodes } from './http.js';

export interface ScheduleAnswer {
  status: number;
  body: Record<string, unknown>;
}

const ACTIONS = ['pause', 'resume', 'remove'] as const;
type Action = (typeof ACTIONS)[number];

export async function scheduleControl(
  client: ZkClient,
  log: Logger,
  name: string,
  action: string,
): Promise<ScheduleAnswer> {
  if (!isScheduleName(name))
    throw new HttpError(
      400,
      WebErrorCodes.BAD_REQUEST,
      `not a schedule name: ${JSON.stringify(String(name).slice(0, 70))}`,
    );
  if (!ACTIONS.includes(action as Action))
    throw new HttpError(
      404,
      WebErrorCodes.NOT_FOUND,
      `unknown action ${JSON.stringify(action)}: use ${ACTIONS.join(', ')}`,
    );
  const admin = new ScheduleAdmin(client);
  try {
    if (action === 'remove') {
      if (!(await admin.remove(name))) throw notFound(name);
      log.info({ schedule: name }, `dashboard: schedule ${name} removed`);
      return { status: 200, body: { ok: true, schedule: name, message: `schedule ${name} removed` } };
    }
    const record = action === 'pause' ? await admin.pause(name) : await admin.resume(name);
    log.info({ schedule: name, action }, `dashboard: schedule ${name} ${action}d`);
    return {
      status: 200,
      body: { ok: true, schedule: name, record, message: `schedule ${name} ${action}d` },
    };
  } catch (err) {
    if (hasCode(err, ErrorCodes.SCHEDULE_NOT_FOUND)) throw notFound(name);
    throw err;
  }
}

function notFound(name: string): HttpError {
  return new HttpError(404, WebErrorCodes.NOT_FOUND, `no schedule named ${name}`);
}
