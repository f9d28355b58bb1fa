/**
 * The two ephemeral nodes of a service instance a worker runs (runner.ts): its fence
 * /services/<name>/running/<n>, taken before the program starts and held while it runs, and its
 * endpoint /services/<name>/endpoints/<n>, there while the instance is healthy. A node is only ever
 * removed by the session that holds it, or by this worker for one of its own earlier sessions.
 */
import { describeError } from '../errors.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import {
  type Endpoint,
  encodeJson,
  endpointPath,
  type Placement,
  type RunRecord,
  runningPath,
} from './model.js';

const FENCE_WAIT_POLL_MS = 500;

/**
 * Take running/<n> for `session`. Held by this session: ours already. Held by one of `pastSessions`
 * (an earlier session of this worker, whose runner has stopped): remove it. Held by another worker:
 * wait until it goes (that worker stops the instance and removes it, or its session expires), or until
 * `cancel` or the session's end.
 */
export async function claimFence(
  session: Session,
  p: Placement,
  record: RunRecord,
  pastSessions: ReadonlySet<string>,
  cancel: AbortSignal,
  log: Logger,
): Promise<void> {
  const c = session.client;
  const path = runningPath(p.service, p.instance);
  let waited = false;
  // One watcher function for the whole wait: the client registers a function once per path.
  let wake = () => {};
  const onChange = () => wake();
  while (!cancel.aborted && session.alive) {
    try {
      await c.createEphemeral(path, encodeJson(record));
      return;
    } catch (err) {
      if (!isZkError(err, 'NODE_EXISTS')) throw err;
    }
    const st = await c.exists(path);
    if (!st) continue;
    if (st.ephemeralOwner === session.id) return;
    if (pastSessions.has(st.ephemeralOwner)) {
      await c.removeIfExists(path, st.version);
      continue;
    }
    if (!waited)
      log.info(
        { path, owner: st.ephemeralOwner },
        `instance ${p.service}.${p.instance} still runs elsewhere; waiting for it to stop`,
      );
    waited = true;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, FENCE_WAIT_POLL_MS);
      const done = () => {
        clearTimeout(t);
        cancel.removeEventListener('abort', done);
        resolve();
      };
      wake = done;
      cancel.addEventListener('abort', done, { once: true });
      c.exists(path, onChange).then(
        (x) => {
          if (!x) done();
        },
        () => done(),
      );
    });
  }
}

/** Publish `ep` (healthy) or withdraw the endpoint (undefined) of an instance `session` fences. */
export async function setEndpoint(
  session: Session,
  p: Placement,
  ep: Endpoint | undefined,
  log: Logger,
): Promise<void> {
  if (!session.alive) return;
  const c = session.client;
  const path = endpointPath(p.service, p.instance);
  try {
    if (!ep) {
      const st = await c.exists(path);
      if (st && st.ephemeralOwner === session.id) await c.removeIfExists(path);
      return;
    }
    // We hold the fence of this instance: any other endpoint of it is stale (its session is gone or going).
    for (;;) {
      try {
        await c.createEphemeral(path, encodeJson(ep));
        return;
      } catch (err) {
        if (!isZkError(err, 'NODE_EXISTS')) throw err;
        await c.removeIfExists(path);
      }
    }
  } catch (err) {
    if (session.alive) log.warn({ err, path }, `could not update the endpoint: ${describeError(err)}`);
  }
}

/** Give up the endpoint and the fence of a stopped instance, where `session` holds them. */
export async function releaseNodes(session: Session, p: Placement): Promise<void> {
  if (!session.alive) return;
  const c = session.client;
  for (const path of [endpointPath(p.service, p.instance), runningPath(p.service, p.instance)]) {
    const st = await c.exists(path).catch(() => null);
    if (st && st.ephemeralOwner === session.id) await c.removeIfExists(path, -1).catch(() => {});
  }
}
