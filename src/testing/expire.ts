/**
 * Session expiry on demand, the way Kazoo's test harness does it: a second connection on the same
 * session id and password, closed. The server hands the session to the newcomer (dropping the owner's
 * connection), and the newcomer's close ends the session on the server, ephemeral nodes and all. When
 * the owner reconnects, the server tells it the session expired, as it would after a real timeout.
 *
 * The owner reconnects at once, and may take its session back before the newcomer's close arrives; so
 * the newcomer tries again until the server itself answers a resumption with "expired", which is the
 * proof that the session is over. No timing is involved, only the server's word.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { splitConnectString } from '../zk/connect-string.js';
import { createConnection } from '../zk/open-client.js';
import type { Supervisor } from '../zk/supervisor.js';
import { prepareTls, type ZkTlsOptions } from '../zk/transport.js';

export interface KillSessionOptions {
  /** Give up (ZKFARM_WAIT_TIMEOUT) after this long. @defaultValue 30000 */
  timeoutMs?: number;
  /** TLS, for servers that speak only TLS (the session's own). @defaultValue plain TCP */
  tls?: ZkTlsOptions;
}

/** How many times the newcomer may lose the session back to its owner before giving up. */
const MAX_ROUNDS = 50;

/**
 * End the session `sessionId` (16 hex digits) with `password` on the servers of `connect` (a chroot is
 * ignored). Resolves once a server refuses to resume it: the session is gone.
 */
export async function killSession(
  connect: string,
  sessionId: string,
  password: Buffer,
  options: KillSessionOptions = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const { hosts } = splitConnectString(connect);
  const tls = options.tls ? prepareTls(options.tls) : undefined;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const connection = createConnection(hosts.join(','), {
      sessionTimeout: 30_000,
      spinDelay: 100,
      requestTimeout: Math.max(1000, left),
      session: { id: sessionId, password },
      tls,
    });
    const outcome = await new Promise<'connected' | 'expired' | 'timeout'>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), left);
      connection.once('connected', () => {
        clearTimeout(timer);
        resolve('connected');
      });
      connection.once('expired', () => {
        clearTimeout(timer);
        resolve('expired');
      });
      connection.connect();
    });
    if (outcome === 'expired') return;
    if (outcome === 'timeout') {
      connection.close();
      break;
    }
    // We hold the session now: close it (the close request goes out with the handshake's answer).
    await new Promise<void>((resolve) => {
      connection.once('disconnected', () => resolve());
      connection.close();
    });
  }
  throw new ZkfarmError(
    ErrorCodes.WAIT_TIMEOUT,
    `session ${sessionId} could not be ended within ${options.timeoutMs ?? 30_000} ms: check that ZooKeeper at ${connect} runs`,
  );
}

/**
 * Make the server expire the live session of `supervisor` (a role's is `role.sessionSupervisor`), and
 * wait until the supervisor is connected on a new session (its action may still be running there: the
 * supervisor checks a new session before it runs the action). Rejects with ZKFARM_INVALID_ARGUMENT when it has no
 * live session, ZKFARM_WAIT_TIMEOUT when no new session came within `timeoutMs`.
 */
export async function expireSession(supervisor: Supervisor, options: KillSessionOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const session = supervisor.session;
  if (!session) {
    throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, 'expireSession: the supervisor has no live session');
  }
  const before = supervisor.sessionCount;
  const { connection } = session.client;
  await killSession(supervisor.options.connect, connection.sessionId, connection.sessionPassword, {
    timeoutMs,
    tls: supervisor.options.tls,
  });
  await waitForNewSession(supervisor, before, timeoutMs);
}

/**
 * Resolve once `supervisor` is on a live session newer than its `before`-th (`sessionCount` read
 * earlier). A new session whose connection already dropped and came back ('reconnected') is as live as
 * one just connected: waiting for 'connected' alone would wait for a state that session never enters
 * again. Rejects with ZKFARM_STOPPED when the supervisor stops, ZKFARM_WAIT_TIMEOUT after `timeoutMs`.
 */
export async function waitForNewSession(
  supervisor: Supervisor,
  before: number,
  timeoutMs: number,
): Promise<void> {
  const live = () => supervisor.state === 'connected' || supervisor.state === 'reconnected';
  const renewed = () => supervisor.sessionCount > before && live() && supervisor.session !== undefined;
  if (renewed()) return;
  const seen: string[] = [supervisor.state];
  await new Promise<void>((resolve, reject) => {
    const onState = (state: string) => {
      seen.push(state);
      const closed = state === 'closed';
      if (!renewed() && !closed) return;
      clearTimeout(timer);
      supervisor.off('state', onState);
      if (closed)
        reject(new ZkfarmError(ErrorCodes.STOPPED, 'the supervisor stopped while its session expired'));
      else resolve();
    };
    const timer = setTimeout(() => {
      supervisor.off('state', onState);
      reject(
        new ZkfarmError(
          ErrorCodes.WAIT_TIMEOUT,
          `the session expired, but no new session came within ${timeoutMs} ms (sessions ${before} before, ` +
            `${supervisor.sessionCount} now; states seen: ${seen.join(' > ')})`,
        ),
      );
    }, timeoutMs);
    supervisor.on('state', onState);
  });
}
