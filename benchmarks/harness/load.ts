/**
 * An open-loop task generator at a fixed rate: task i is due at t0 + i/rate; whatever is due is sent
 * in one submitMany() (one multi, at most 200 tasks), with up to 16 submits in flight, so a slow answer
 * does not hold back the schedule. When the generator still falls behind, the largest lag between a
 * task's due time and its send is recorded (`maxLagMs`), so a reader can tell.
 *
 * A task's send time is the client clock just before its submit request was issued.
 *
 * What sends is a `SendMany`: the farm's submitMany of no-op tasks (`noopTasks`), or BullMQ's addBulk
 * of no-op jobs in the latency scenario's reference, so both meet the same schedule.
 */
import type { Submitter } from '../../src/farm/submitter.js';
import { sleep } from './farm-fixture.js';

/** Send `count` no-op tasks (or jobs) in one request; resolves with their ids. */
export type SendMany = (count: number) => Promise<string[]>;

/** The farm's sender: `count` no-op tasks in one submitMany (one multi). */
export function noopTasks(submitter: Submitter): SendMany {
  return (count) => submitter.submitMany(Array.from({ length: count }, () => ({ handler: 'noop' })));
}

export interface Sent {
  id: string;
  sentAt: number;
}

export interface StreamLimits {
  /** Send at most this many tasks. */
  total: number;
  /** Stop sending after this long (ms). */
  maxMs: number;
  signal: AbortSignal;
}

export class RateStream {
  readonly rate: number;
  readonly sent: Sent[] = [];
  maxLagMs = 0;
  startedAt = 0;
  /** When the last submit was issued. */
  lastSendAt = 0;
  #stopped = false;
  #error: unknown;
  readonly #send: SendMany;

  constructor(send: SendMany, rate: number) {
    if (!(rate > 0)) throw new Error(`rate: expected a positive number of tasks per second, got ${rate}`);
    this.#send = send;
    this.rate = rate;
  }

  /** Ask a running stream to stop sending (in-flight submits still complete). */
  stop(): void {
    this.#stopped = true;
  }

  /** Send until `total` were sent, `maxMs` passed, stop() or the signal; resolves when every submit answered. */
  async run(limits: StreamLimits): Promise<void> {
    const t0 = Date.now();
    this.startedAt = t0;
    const perMs = this.rate / 1000;
    let scheduled = 0;
    const inflight = new Set<Promise<void>>();
    while (
      !this.#stopped &&
      !limits.signal.aborted &&
      scheduled < limits.total &&
      Date.now() - t0 < limits.maxMs
    ) {
      const now = Date.now();
      const due = Math.min(limits.total, Math.floor((now - t0) * perMs) + 1);
      if (due > scheduled && inflight.size < 16) {
        const k = Math.min(due - scheduled, 200);
        this.maxLagMs = Math.max(this.maxLagMs, now - (t0 + scheduled / perMs));
        const sentAt = Date.now();
        this.lastSendAt = sentAt;
        const p: Promise<void> = this.#send(k)
          .then(
            (ids) => {
              for (const id of ids) this.sent.push({ id, sentAt });
            },
            (err) => {
              this.#error ??= err;
              this.#stopped = true;
            },
          )
          .finally(() => inflight.delete(p));
        inflight.add(p);
        scheduled += k;
        continue;
      }
      const nextDue = t0 + scheduled / perMs;
      await sleep(Math.max(1, Math.min(20, nextDue - Date.now())), limits.signal);
    }
    await Promise.all(inflight);
    if (this.#error) throw this.#error;
  }

  /** Tasks per second actually sent. */
  get achievedRate(): number {
    // n tasks at an even rate take (n − 1)/rate from first send to last, so add one interval.
    const span = this.lastSendAt - this.startedAt + 1000 / this.rate;
    return this.sent.length ? (this.sent.length / span) * 1000 : Number.NaN;
  }
}
