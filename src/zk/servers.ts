/**
 * The servers of a connect string, and the order and pace in which a connection tries them (the Java
 * client's StaticHostProvider, with the project's one backoff policy between rounds).
 *
 * - The list is shuffled once, so that the clients of one connect string spread over the ensemble.
 * - `next()` gives the next server and how long to wait before trying it: nothing within a round (a
 *   failed server is left for the next one at once), and, once every server of a round was tried, a
 *   delay from src/backoff.ts: exponential from `spinDelay`, with equal jitter, capped at 2 s or a
 *   third of the session timeout (so a server is tried several times before a session could expire).
 * - `connected()` (a handshake succeeded) starts the next round and the backoff afresh.
 */
import { Backoff } from '../backoff.js';
import { ErrorCodes, ZkfarmError } from '../errors.js';

export interface ServerAddress {
  host: string;
  port: number;
}

const MAX_PORT = 65535;

/** Throw ZKFARM_INVALID_ARGUMENT unless `s` is a host and a port from 1 to 65535. */
export function checkServer(s: ServerAddress): void {
  const ok =
    typeof s?.host === 'string' &&
    s.host !== '' &&
    Number.isInteger(s.port) &&
    s.port >= 1 &&
    s.port <= MAX_PORT;
  if (!ok)
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `ZooKeeper server ${JSON.stringify(s)}: expected a host and a port from 1 to ${MAX_PORT}`,
    );
}

export class ServerList {
  readonly #servers: ServerAddress[];
  readonly #backoff: Backoff;
  #index = 0;
  #triedThisRound = 0;

  constructor(servers: readonly ServerAddress[], spinDelay: number, sessionTimeout: number) {
    if (servers.length === 0)
      throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, 'a ZooKeeper connection needs at least one server');
    for (const s of servers) checkServer(s);
    this.#servers = shuffle(servers);
    this.#backoff = new Backoff({
      initialMs: spinDelay,
      maxMs: Math.max(spinDelay, Math.min(2000, sessionTimeout / 3)),
      jitter: 'equal',
    });
  }

  get size(): number {
    return this.#servers.length;
  }

  /**
   * One deadline for an attempt's TCP connect and handshake: the session timeout shared among the
   * servers, but at most a third of it (at least 1 s), so even a single server is tried again well
   * before the session would expire.
   */
  attemptDeadline(sessionTimeout: number): number {
    const t = sessionTimeout;
    return Math.min(Math.floor(t / this.#servers.length), Math.max(1000, Math.floor(t / 3)));
  }

  /** The server to try next, and the pause before trying it (0 within a round). */
  next(): { server: ServerAddress; delayMs: number } {
    let delayMs = 0;
    if (this.#triedThisRound >= this.#servers.length) {
      this.#triedThisRound = 0;
      delayMs = Math.round(this.#backoff.next());
    }
    this.#triedThisRound++;
    const server = this.#servers[this.#index++ % this.#servers.length]!;
    return { server, delayMs };
  }

  /** A handshake succeeded: the next failure starts a new round, with no delay and a fresh backoff. */
  connected(): void {
    this.#triedThisRound = 0;
    this.#backoff.reset();
  }
}

function shuffle<T>(list: readonly T[]): T[] {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
