/**
 * A session's liveness, as ZooKeeper's Java client keeps it (ClientCnxn.SendThread), on one timer and a
 * monotonic clock. With T the negotiated session timeout:
 *
 * - connected, nothing sent for T/3 (half the read timeout): send a ping;
 * - connected, no answer for 2T/3 (the read timeout): drop the connection, so that the next server is
 *   tried while the session can still be resumed;
 * - no answer from any server for 4T/3, connected or not: the session must be taken as gone
 *   (ZooKeeper 3.9's client does the same, ZOOKEEPER-4508): the servers expire a session T after they
 *   last heard from it, give or take a tick, so by then it has expired.
 *
 * An answer is the handshake's or a reply to a request or ping; a watch notification is not one. The
 * Java client counts any frame it reads, and so stays on a connection whose session the server has
 * already ended: a session closed from another connection (as `killSession` does) just after its owner
 * resumed it leaves the owner's new connection open, its requests and pings dropped unanswered while
 * the notifications of its watches still arrive (ZooKeeper 3.8's FinalRequestProcessor closes only the
 * closing connection). Counting answers only, the owner drops that connection at the read timeout and
 * hears on the next that its session expired.
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
  /** When the last answer was received from, and the last bytes were sent to, a server (host clock, ms). */
  lastAnswer = 0;
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
    this.lastAnswer = this.lastSend = this.#host.now();
    this.arm();
  }

  /** Arm the timer for the next due check (call after a state change; a no-op before any session). */
  arm(): void {
    clearTimeout(this.#timer);
    const t = this.#timeout;
    if (t <= 0) return;
    let due = this.lastAnswer + (t * 4) / 3;
    if (this.#host.connected()) due = Math.min(due, this.lastAnswer + (t * 2) / 3, this.lastSend + t / 3);
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
    const silence = host.now() - this.lastAnswer;
    const connected = host.connected();
    const expired = silence >= (t * 4) / 3;
    const silent = connected && silence >= (t * 2) / 3;
    if ((expired || silent) && !afterIo) {
      setImmediate(() => this.#check(true));
      return;
    }
    if (expired) {
      host.expire(
        `no answer from any ZooKeeper server for ${Math.round(silence)} ms, 4/3 of the ${t} ms session ` +
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
