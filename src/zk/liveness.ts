/**
 * A session's liveness, as ZooKeeper's Java client keeps it (ClientCnxn.SendThread), on one timer and a
 * monotonic clock. With T the negotiated session timeout:
 *
 * - connected, nothing sent for T/3 (half the read timeout): send a ping;
 * - connected, nothing received for 2T/3 (the read timeout): drop the connection, so that the next
 *   server is tried while the session can still be resumed;
 * - nothing received from any server for 4T/3, connected or not: the session must be taken as gone
 *   (ZooKeeper 3.9's client does the same, ZOOKEEPER-4508): the servers expire a session T after they
 *   last heard from it, give or take a tick, so by then it has expired.
 *
 * The timer is armed for the earliest of these. When it finds a limit passed it looks once more after
 * the pending I/O has been read (timers run before I/O in Node's loop: after a long pause of the thread,
 * answers may be waiting in the socket), so a busy thread is not taken for a silent server.
 */

export interface LivenessHost {
  now(): number;
  /** True while a socket is connected and its session established. */
  connected(): boolean;
  ping(): void;
  /** The read timeout passed: drop the connection. */
  drop(): void;
  /** No answer for 4/3 of the session timeout: the session is gone. */
  expire(why: string): void;
}

export class Liveness {
  /** When the last bytes were received from, and sent to, a server (host clock, ms). */
  lastRecv = 0;
  lastSend = 0;
  readonly #host: LivenessHost;
  #timeout = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(host: LivenessHost) {
    this.#host = host;
  }

  /** A session was established with timeout `t`: both clocks start now. */
  start(t: number): void {
    this.#timeout = t;
    this.lastRecv = this.lastSend = this.#host.now();
    this.arm();
  }

  /** Arm the timer for the next due check (call after a state change; a no-op before any session). */
  arm(): void {
    clearTimeout(this.#timer);
    const t = this.#timeout;
    if (t <= 0) return;
    let due = this.lastRecv + (t * 4) / 3;
    if (this.#host.connected()) due = Math.min(due, this.lastRecv + (t * 2) / 3, this.lastSend + t / 3);
    this.#timer = setTimeout(() => this.#check(false), Math.max(1, Math.ceil(due - this.#host.now())));
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timeout = 0;
  }

  #check(afterIo: boolean): void {
    const t = this.#timeout;
    if (t <= 0) return;
    const host = this.#host;
    const idleRecv = host.now() - this.lastRecv;
    const connected = host.connected();
    const expired = idleRecv >= (t * 4) / 3;
    const silent = connected && idleRecv >= (t * 2) / 3;
    if ((expired || silent) && !afterIo) {
      setImmediate(() => this.#check(true));
      return;
    }
    if (expired) {
      host.expire(
        `no answer from any ZooKeeper server for ${Math.round(idleRecv)} ms, 4/3 of the ${t} ms session ` +
          'timeout: the servers have expired the session by now',
      );
      return;
    }
    if (silent) host.drop();
    else if (connected && host.now() - this.lastSend >= t / 3) {
      host.ping();
      this.lastSend = host.now();
    }
    this.arm();
  }
}
