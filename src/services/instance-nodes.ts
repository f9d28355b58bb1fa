/**
 * The two ephemeral nodes of a service instance a worker runs (runner.ts): its fence
 * /services/<name>/running/<n>, taken before the program starts and held while it runs, and its
 * endpoint /services/<name>/endpoints/<n>, there while the instance is healthy (written in one multi with
 * the fence's record: writeRun). A node is only ever removed by the session that holds it, or by this
 * worker for one of its own earlier sessions.
 */
import { describeError } from '../errors.js';
import { CreateMode } from '../zk/client.js';
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

/**
 * Write the run record of an instance `session` fences (running/<n>'s data), and in the same multi
 * publish its endpoint (`ep`) or withdraw it (null; undefined leaves it as it is). One multi, so that
 * a reader never sees the record say healthy while the endpoint is missing, nor an endpoint beside a
 * record that says unhealthy. Publishing replaces an endpoint of another session (we hold the fence:
 * it is stale); withdrawing removes only this session's. A record that cannot be written (the fence is
 * gone, the session lost) is logged: the runner stops the instance when it loses its fence.
 */
export async function writeRun(
  session: Session,
  p: Placement,
  record: Buffer,
  ep: Endpoint | null | undefined,
  log: Logger,
): Promise<void> {
  if (!session.alive) return;
  const c = session.client;
  const run = runningPath(p.service, p.instance);
  const path = endpointPath(p.service, p.instance);
  try {
    for (let attempt = 0; ; attempt++) {
      const tx = c.transaction().setData(run, record);
      if (ep !== undefined) {
        const st = await c.exists(path);
        if (st && (ep !== null || st.ephemeralOwner === session.id)) tx.remove(path, st.version);
        if (ep !== null) tx.create(path, encodeJson(ep), CreateMode.EPHEMERAL);
      }
      try {
        await tx.commit();
        return;
      } catch (err) {
        // The endpoint changed between the look and the multi (its old session ended): look again.
        const onEndpoint = isZkError(err) && err.path === path;
        if (!onEndpoint || attempt >= 2) throw err;
      }
    }
  } catch (err) {
    if (session.alive) log.warn({ err, path: run }, `could not record instance state: ${describeError(err)}`);
  }
}

/**
 * Give up the endpoint and the fence of a stopped instance, where `session` holds them: in one multi,
 * so that no reader sees the fence's record (healthy) without the endpoint.
 */
export async function releaseNodes(session: Session, p: Placement): Promise<void> {
  if (!session.alive) return;
  const c = session.client;
  const paths = [endpointPath(p.service, p.instance), runningPath(p.service, p.instance)];
  const stats = await Promise.all(paths.map((path) => c.exists(path).catch(() => null)));
  const ours = paths.filter((_, i) => stats[i] && stats[i]!.ephemeralOwner === session.id);
  if (ours.length === 0) return;
  const tx = c.transaction();
  for (const path of ours) tx.remove(path);
  // One gone meanwhile (its session ended): remove the rest one by one.
  await tx.commit().catch(() => Promise.all(ours.map((path) => c.removeIfExists(path, -1).catch(() => {}))));
}
