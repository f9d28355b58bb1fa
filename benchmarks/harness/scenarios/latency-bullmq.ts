/**
 * The latency scenario's reference: BullMQ on the run's redis-server, measured the way the farm is, in
 * the same run, alternating with the farm's repeats, at the same offered rates (the farm's fractions of
 * the farm's capacity), with as many Workers × concurrency as the farm has workers × capacity, all in
 * one fresh process as the farm's roles are.
 *
 * What is measured, matching the farm's figures:
 *   sent      the producer's clock just before `add` / `addBulk` is issued;
 *   recorded  the id of the job's `completed` event in the queue's event stream: Redis's clock when the
 *             script that records the completion ran (the farm's is the status znode's ctime, ZooKeeper's
 *             clock when it took in the completion);
 *   to start  the id of the job's `active` event: when Redis handed the job to a Worker (the farm's is
 *             the worker's clock when the handler started, a little later on its path).
 * The event stream is BullMQ's own record (QueueEvents reads it). Its length is raised from BullMQ's
 * default of ~10,000 events so that every job's events are still there when the series is read; trimming
 * costs the same either way. Redis runs as the peer scenario's (AOF, `--redis-persistence`).
 */
import type { BenchIo } from '../farm-fixture.js';
import { sleep, throwIfAborted } from '../farm-fixture.js';
import { RateStream, type SendMany } from '../load.js';
import { percentiles } from '../stats.js';
import type { BullLatencyJob, BullLatencyResult, RateLatency } from '../types.js';
import { idleRoundTrips } from './latency.js';
import { tearDownBull } from './peer.js';

/** When each job was handed to a Worker and completed, by Redis's clock (ms), from the event stream. */
export interface JobEvents {
  active: Map<string, number>;
  completed: Map<string, number>;
}

type StreamEntry = [id: string, fields: string[]];

/** Take the `active` and `completed` events of a page of XRANGE entries into `into`. */
export function takeEvents(entries: readonly StreamEntry[], into: JobEvents): void {
  for (const [id, fields] of entries) {
    let event: string | undefined;
    let jobId: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] === 'event') event = fields[i + 1];
      else if (fields[i] === 'jobId') jobId = fields[i + 1];
    }
    if (jobId === undefined) continue;
    const at = Number(id.slice(0, id.indexOf('-')));
    if (event === 'completed') into.completed.set(jobId, at);
    else if (event === 'active' && !into.active.has(jobId)) into.active.set(jobId, at);
  }
}

interface StreamReader {
  xrange(key: string, start: string, end: string, count: 'COUNT', n: number): Promise<StreamEntry[]>;
}

/** Every event of the stream, read in pages. */
async function readEvents(client: StreamReader, key: string): Promise<JobEvents> {
  const events: JobEvents = { active: new Map(), completed: new Map() };
  let start = '-';
  for (;;) {
    const page = await client.xrange(key, start, '+', 'COUNT', 10_000);
    takeEvents(page, events);
    if (page.length < 10_000) return events;
    start = `(${page.at(-1)![0]}`;
  }
}

interface Sent {
  id: string;
  sentAt: number;
}

/** Latency and time to start of each sent job that has both events; the others are counted as missing. */
export function latencyOf(sent: readonly Sent[], events: JobEvents): { lat: number[]; toStart: number[] } {
  const lat: number[] = [];
  const toStart: number[] = [];
  for (const s of sent) {
    const done = events.completed.get(s.id);
    if (done === undefined) continue;
    lat.push(done - s.sentAt);
    const active = events.active.get(s.id);
    if (active !== undefined) toStart.push(active - s.sentAt);
  }
  return { lat, toStart };
}

interface Tally {
  completed: Set<string>;
  failed: number;
  duplicates: number;
  waiters: Map<string, () => void>;
}

/** Resolves once job `id` completed (it may have already). */
function completion(tally: Tally, id: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  if (tally.completed.has(id)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    // Each way out undoes the others, so waiting for many jobs leaves no listener behind.
    const done = (err?: unknown) => {
      clearTimeout(timer);
      tally.waiters.delete(id);
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onAbort = () => done(signal.reason);
    const timer = setTimeout(
      () => done(new Error(`BullMQ job ${id} did not complete within ${timeoutMs} ms`)),
      timeoutMs,
    );
    tally.waiters.set(id, () => done());
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

async function untilCompleted(tally: Tally, count: number, job: BullLatencyJob, io: BenchIo, label: string) {
  const deadline = Date.now() + job.timeoutMs;
  while (tally.completed.size + tally.failed < count) {
    throwIfAborted(io.signal);
    if (Date.now() > deadline)
      throw new Error(`only ${tally.completed.size} of ${count} BullMQ jobs completed (${label})`);
    await sleep(10, io.signal);
  }
}

export async function measureBullLatency(job: BullLatencyJob, io: BenchIo): Promise<BullLatencyResult> {
  const { Queue, Worker } = await import('bullmq');
  const connection = { host: '127.0.0.1', port: job.redis.port, maxRetriesPerRequest: null };
  const loadJobs = job.rates.reduce((n, r) => n + Math.round((r * job.durationMs) / 1000), 0);
  // Each job writes about five events (added, waiting, active, completed, and some drained).
  const maxLen = 10 * (2 * loadJobs + job.idleTasks + 1) + 10_000;
  const queue = new Queue(`latency-${process.pid}-${Date.now()}`, {
    connection,
    streams: { events: { maxLen } },
  });
  const tally: Tally = { completed: new Set(), failed: 0, duplicates: 0, waiters: new Map() };
  const workers: Array<{ close(force?: boolean): Promise<void>; waitUntilReady(): Promise<unknown> }> = [];
  try {
    await queue.waitUntilReady();
    for (let i = 0; i < job.workers; i++) {
      const w = new Worker<unknown, null>(queue.name, async () => null, {
        connection,
        concurrency: job.concurrency,
      });
      w.on('completed', (j) => {
        const id = j.id ?? '';
        if (tally.completed.has(id)) tally.duplicates++;
        tally.completed.add(id);
        tally.waiters.get(id)?.();
        tally.waiters.delete(id);
      });
      w.on('failed', () => tally.failed++);
      w.on('error', () => {});
      workers.push(w);
    }
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    const client = (await queue.client) as unknown as StreamReader & { ping(): Promise<string> };
    const oneJob = async (): Promise<Sent> => {
      const sentAt = Date.now();
      const added = await queue.add('noop', {});
      await completion(tally, added.id!, 30_000, io.signal);
      return { id: added.id!, sentAt };
    };
    await sleep(1000, io.signal);
    const first = await oneJob();
    const idle: Sent[] = [];
    for (let i = 0; i < job.idleTasks; i++) {
      await sleep(job.idleGapMs, io.signal);
      idle.push(await oneJob());
      io.progress(i + 1, job.idleTasks, 'idle BullMQ jobs');
    }
    const idleRoundTrip = await idleRoundTrips(() => client.ping(), job, io);
    const send: SendMany = async (count) =>
      (await queue.addBulk(Array.from({ length: count }, () => ({ name: 'noop', data: {} })))).map(
        (j) => j.id!,
      );
    // The series twice, as the farm's: first as a queue just started meets it, then warm.
    const runs: RateRun[] = [];
    for (const _series of [0, 1])
      for (const rate of job.rates) runs.push(await bullRate(send, rate, job, io, tally));
    const events = await readEvents(client, queue.keys.events!);
    const added = 1 + idle.length + runs.reduce((n, r) => n + r.sent.length, 0);
    const rates = runs.map((r) => rateOf(r, events));
    return {
      firstTaskMs: latencyOf([first], events).lat[0] ?? Number.NaN,
      idle: percentiles(latencyOf(idle, events).lat),
      idleRoundTrip,
      rates: rates.slice(0, job.rates.length),
      warmRates: rates.slice(job.rates.length),
      check: await checkQueue(queue, tally, added, events),
    };
  } finally {
    await tearDownBull(queue, workers, job.redis.port);
  }
}

/** What one rate sent: each job with its send time, and the generator's own figures. */
interface RateRun {
  rate: number;
  sent: Sent[];
  achievedRate: number;
  maxLagMs: number;
}

/** One rate held `durationMs`, waited for to its last completion. */
async function bullRate(
  send: SendMany,
  rate: number,
  job: BullLatencyJob,
  io: BenchIo,
  tally: Tally,
): Promise<RateRun> {
  await sleep(500, io.signal);
  const before = tally.completed.size + tally.failed;
  const stream = new RateStream(send, rate);
  const total = Math.max(1, Math.round((rate * job.durationMs) / 1000));
  await stream.run({ total, maxMs: job.durationMs * 3, signal: io.signal });
  await untilCompleted(tally, before + stream.sent.length, job, io, `at ${rate}/s`);
  return { rate, sent: stream.sent, achievedRate: stream.achievedRate, maxLagMs: stream.maxLagMs };
}

function rateOf(run: RateRun, events: JobEvents): RateLatency {
  const { lat, toStart } = latencyOf(run.sent, events);
  return {
    rate: run.rate,
    achievedRate: run.achievedRate,
    tasks: run.sent.length,
    latency: percentiles(lat),
    toStart: percentiles(toStart),
    maxSubmitLagMs: run.maxLagMs,
  };
}

async function checkQueue(
  queue: { getJobCounts(...types: string[]): Promise<Record<string, number>> },
  tally: Tally,
  added: number,
  events: JobEvents,
): Promise<BullLatencyResult['check']> {
  const problems: string[] = [];
  if (tally.completed.size !== added)
    problems.push(`${tally.completed.size} jobs completed of ${added} added`);
  if (tally.failed) problems.push(`${tally.failed} jobs failed`);
  if (tally.duplicates) problems.push(`${tally.duplicates} jobs completed twice`);
  if (events.completed.size !== added)
    problems.push(`the event stream holds ${events.completed.size} completed events for ${added} jobs`);
  const counts = await queue.getJobCounts('completed', 'waiting', 'active', 'delayed');
  if (counts['completed'] !== added)
    problems.push(`the queue counts ${counts['completed']} completed jobs for ${added}`);
  const left = (counts['waiting'] ?? 0) + (counts['active'] ?? 0) + (counts['delayed'] ?? 0);
  if (left) problems.push(`${left} jobs still waiting, active or delayed`);
  return { ok: problems.length === 0, problems, completed: tally.completed.size };
}
