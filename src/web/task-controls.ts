/**
 * The dashboard's task control (POST, controls on only):
 *   POST /api/tasks/<id>/cancel   {"reason"?: string, "by"?: string} cancels the task (farm/cancel-client.ts):
 *                                 200 cancelled, 202 asked (no final status within 5 s: the request
 *                                 stands), 409 it finished first (its result stands), 404 no such task
 * One create of /cancel/<id>, then a short wait for the task's final status.
 */
import { isSafeName } from '../exec/names.js';
import { cancelTasks, pollingWaitFor } from '../farm/cancel-client.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { HttpError, WebErrorCodes } from './http.js';

export interface TaskAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** How long the page's request waits for the final status. */
const WAIT_MS = 5000;

export async function taskControl(
  client: ZkClient,
  log: Logger,
  id: string,
  action: string,
  body: unknown,
): Promise<TaskAnswer> {
  if (!isSafeName(id))
    throw new HttpError(
      400,
      WebErrorCodes.BAD_REQUEST,
      `not a task id: ${JSON.stringify(String(id).slice(0, 40))}`,
    );
  if (action !== 'cancel')
    throw new HttpError(404, WebErrorCodes.NOT_FOUND, `unknown action ${JSON.stringify(action)}: use cancel`);
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  for (const k of ['by', 'reason'])
    if (b[k] !== undefined && typeof b[k] !== 'string')
      throw new HttpError(400, WebErrorCodes.BAD_REQUEST, `${k}: expected a string, got ${typeof b[k]}`);
  const by = (b['by'] as string | undefined) ?? 'dashboard';
  const reason = b['reason'] as string | undefined;
  const ports = { client: () => client, waitFor: pollingWaitFor(() => client) };
  const [r] = await cancelTasks(ports, [id], { by, reason, waitMs: WAIT_MS });
  log.info({ task: id, outcome: r!.outcome }, `dashboard: cancel ${id}: ${r!.outcome}`);
  switch (r!.outcome) {
    case 'cancelled':
      return { status: 200, body: { ok: true, id, outcome: r!.outcome, message: `${id} cancelled` } };
    case 'pending':
      return {
        status: 202,
        body: {
          ok: true,
          id,
          outcome: r!.outcome,
          message: `${id}: cancel asked; the farm answers it shortly`,
        },
      };
    case 'finished-first':
      throw new HttpError(
        409,
        WebErrorCodes.BAD_REQUEST,
        `${id} finished first (${r!.status?.state}): its result stands`,
      );
    default:
      throw new HttpError(
        404,
        WebErrorCodes.NOT_FOUND,
        `no task ${id}: never submitted, or its result was removed`,
      );
  }
}
