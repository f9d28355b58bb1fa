/**
 * The latency scenario's BullMQ reference, in the orchestrator: its job (measured in a fresh process by
 * latency-bullmq.ts, which says what is measured), and the table that puts the farm's figures next to
 * BullMQ's, pair by pair.
 */
import type { BenchContext } from '../context.js';
import type { RedisServer } from '../redis.js';
import { cell, num, ratio, sig, spread } from '../stats.js';
import type {
  BullLatencyJob,
  BullLatencyResult,
  LatencyJob,
  LatencyResult,
  Percentiles,
  Table,
} from '../types.js';

/** BullMQ's series for the farm's latency job `farm`, on `redis`. */
export function measureBullLatencyOnce(
  ctx: BenchContext,
  redis: RedisServer,
  farm: LatencyJob,
  label: string,
  timeoutMs: number,
): Promise<BullLatencyResult> {
  const job: BullLatencyJob = {
    kind: 'bullmq-latency',
    redis: { port: redis.port, pid: redis.pid },
    workers: farm.shape.workers,
    concurrency: farm.shape.capacity,
    idleTasks: farm.idleTasks,
    idleGapMs: farm.idleGapMs,
    rates: farm.rates,
    durationMs: farm.durationMs,
    timeoutMs: farm.timeoutMs,
  };
  return ctx.measure<BullLatencyResult>(
    job,
    label,
    timeoutMs,
    (r) =>
      `BullMQ idle p50 ${num(r.idle.p50)} ms; ${r.rates.map((x) => `${x.rate}/s p99 ${num(x.latency.p99)} ms`).join(', ')}` +
      (r.check.ok ? '' : `, CHECK FAILED: ${r.check.problems.join('; ')}`),
  );
}

type Pair = [LatencyResult, BullLatencyResult];

/** One row: the farm's and BullMQ's p50 and p99 of one series, medians over the pairs, and their ratios per pair. */
function row(
  label: string,
  offered: string,
  pairs: Pair[],
  pick: (r: LatencyResult | BullLatencyResult) => Pick<Percentiles, 'p50' | 'p99'> | undefined,
) {
  const got = pairs.flatMap(([f, b]) => {
    const fp = pick(f);
    const bp = pick(b);
    return fp && bp ? [{ fp, bp }] : [];
  });
  const ms = (n: number) => num(n);
  const x = (n: number) => `${sig(n)}x`;
  // A single figure (the first task) has no p99: its cells stay empty.
  const of = (k: 'p50' | 'p99', f: (g: (typeof got)[number]) => number, format: (n: number) => string) =>
    got.some((g) => Number.isNaN(g.fp[k])) ? '' : cell(spread(got.map(f)), format);
  return [
    label,
    offered,
    of('p50', (g) => g.fp.p50, ms),
    of('p50', (g) => g.bp.p50, ms),
    of('p99', (g) => g.fp.p99, ms),
    of('p99', (g) => g.bp.p99, ms),
    of('p50', (g) => ratio(g.fp.p50, g.bp.p50), x),
    of('p99', (g) => ratio(g.fp.p99, g.bp.p99), x),
  ];
}

/** The farm's latency next to BullMQ's, pair by pair; and BullMQ's own figures for the summary. */
export function bullLatencyReport(
  pairs: Pair[],
  rates: readonly number[],
  fractions: readonly number[],
  redis: RedisServer,
): { table: Table; summary: Record<string, unknown> } {
  const first = (r: LatencyResult | BullLatencyResult) => ({ p50: r.firstTaskMs, p99: Number.NaN });
  const rows: string[][] = [
    row('the first task, after 1 s idle since the start', '', pairs, first),
    row('idle, one at a time', '', pairs, (r) => r.idle),
  ];
  for (const [series, key] of [
    ['', 'rates'],
    [', warm', 'warmRates'],
  ] as const)
    rates.forEach((rate, i) => {
      const label = `${Math.round(fractions[i]! * 100)}%${series}`;
      rows.push(row(label, num(rate), pairs, (r) => r[key]?.[i]?.latency));
    });
  const bull = pairs.map((p) => p[1]);
  const perRate = (key: 'rates' | 'warmRates') =>
    rates.map((rate, i) => ({
      rate,
      fraction: fractions[i]!,
      p50: spread(bull.map((b) => b[key][i]?.latency.p50 ?? Number.NaN)),
      p99: spread(bull.map((b) => b[key][i]?.latency.p99 ?? Number.NaN)),
      toStartP99: spread(bull.map((b) => b[key][i]?.toStart.p99 ?? Number.NaN)),
    }));
  const problems = bull.flatMap((b, i) => b.check.problems.map((p) => `BullMQ repeat ${i + 1}: ${p}`));
  const table: Table = {
    title: `the same series on BullMQ, at the same offered rates (ms; median (min–max) over ${pairs.length} alternating pair(s))`,
    columns: [
      'load',
      'offered/s',
      'zkfarm p50',
      'BullMQ p50',
      'zkfarm p99',
      'BullMQ p99',
      'zkfarm ÷ BullMQ, p50',
      'zkfarm ÷ BullMQ, p99',
    ],
    rows,
    notes: [
      `BullMQ: as many Workers × concurrency as the farm has workers × capacity, in one fresh process, on redis-server ${redis.version} (${redis.persistence}), alternating with the farm's repeats. Its latency = the Redis clock of the job's \`completed\` event (the id of its entry in the queue's event stream) − the client's send time; the farm's = the status znode's ctime − the send time.`,
      `One round trip after the same idle gap: Redis PING p50 ${cell(spread(bull.map((b) => b.idleRoundTrip.p50)), sig)} ms. Ratios are per pair (lower is faster for the farm). The first task is one figure per repeat, shown in the p50 columns.`,
      problems.length
        ? `CHECK FAILED: ${problems.join('; ')}`
        : 'Every BullMQ job of every repeat completed exactly once.',
    ],
  };
  return {
    table,
    summary: {
      idle: {
        p50: spread(bull.map((b) => b.idle.p50)),
        roundTrip: spread(bull.map((b) => b.idleRoundTrip.p50)),
      },
      rates: perRate('rates'),
      warmRates: perRate('warmRates'),
      problems,
    },
  };
}
