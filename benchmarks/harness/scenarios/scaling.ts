/**
 * Scenario `scaling`: how throughput grows with workers, and what a role thread costs in memory.
 *
 * Throughput: the throughput measurement (2 masters, capacity 4, no-op tasks) with 1, 2, 4, 8, 16 and
 * 32 workers, each a fresh process, drawn against the raw ZooKeeper ceiling of the same run. One pass
 * only (the cold figure: the first N tasks after start), so six worker counts stay cheap; the warm-up
 * each extra role thread (V8 isolate) adds is part of what this table shows.
 * Memory: a fresh process makes an empty host (no thread yet) and reads its RSS (all threads: RSS is
 * per process), starts R roles (2 masters and R − 2 workers, each a thread with its own ZooKeeper
 * session), waits until all are registered and idle for a moment, and reads RSS again; (after − before)
 * ÷ R is the cost of one role thread. benchmarks/harness/role-memory.ts runs this measurement alone.
 * From source (tsx) every role thread also loads tsx's loader, so the figure is higher than from the
 * compiled JS; the report says which mode ran.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PATHS } from '../../../src/farm/protocol.js';
import { createLogger, Host } from '../../../src/host/index.js';
import { sourceThreads } from '../../../src/testing/index.js';
import { FROM_SOURCE } from '../child.js';
import { type BenchContext, someOrThrow, tolerant } from '../context.js';
import {
  type BenchIo,
  makeChroot,
  openSession,
  removeChroot,
  roleSpecs,
  sleep,
  stopSession,
  waitUntil,
} from '../farm-fixture.js';
import { rssMb } from '../proc.js';
import { num, sig, spread, spreadCells } from '../stats.js';
import type { FarmResult, FarmShape, RssJob, RssResult, ScenarioReport, Table } from '../types.js';
import { farmProblems, measureFarmOnce } from './throughput.js';

export interface ScalingPoint {
  workers: number;
  tasksPerSecond: { min: number; median: number; max: number; n: number };
}

export async function runScaling(
  ctx: BenchContext,
): Promise<Omit<ScenarioReport, 'startedAt' | 'durationMs'>> {
  const p = ctx.opts.preset.scaling;
  const repeats = ctx.opts.preset.repeats.scaling;
  const ceiling = await ctx.ceiling();
  const runs: FarmResult[] = [];
  const failures: string[] = [];
  for (const workers of p.workers) {
    for (let r = 0; r < repeats; r++) {
      const shape = { ...ctx.defaultShape, workers };
      const label = `scaling ${workers} workers #${r + 1}/${repeats}`;
      const run = await tolerant(ctx.signal, failures, label, () =>
        measureFarmOnce(ctx, shape, p.tasks, label, 'scaling', 1),
      );
      if (run) runs.push(run);
    }
  }
  const rss: RssResult[] = [];
  for (const roles of p.rssRoles) {
    const shape = rssShape(ctx.defaultShape, roles);
    const job: RssJob = { kind: 'rss', zk: ctx.target('rss'), shape, settleMs: 2000 };
    const label = `memory with ${roles} roles`;
    const run = await tolerant(ctx.signal, failures, label, () =>
      ctx.measure<RssResult>(
        job,
        label,
        120_000 + roles * 5000,
        (r) => `${sig(r.perRoleMb)} MB RSS per role thread`,
      ),
    );
    if (run) rss.push(run);
  }
  someOrThrow([...runs, ...rss], failures);
  const points: ScalingPoint[] = p.workers.map((workers) => ({
    workers,
    tasksPerSecond: spread(runs.filter((r) => r.shape.workers === workers).map((r) => r.tasksPerSecond)),
  }));
  const scalingTable: Table = {
    title: `scaling: tasks/s by workers, cold (${ctx.defaultShape.masters} masters, capacity ${ctx.defaultShape.capacity}, the first ${num(p.tasks)} no-op tasks after start)`,
    columns: [
      'workers',
      'slots',
      'min',
      'median',
      'max',
      '÷ single-create ceiling',
      'ZK req/task',
      'host CPU ms/1000',
      'host start ms',
    ],
    rows: p.workers.map((w, i) => {
      const rs = runs.filter((r) => r.shape.workers === w);
      const s = points[i]!.tasksPerSecond;
      return [
        w,
        w * ctx.defaultShape.capacity,
        ...spreadCells(s, (n) => num(n)),
        `${sig(s.median / ceiling.single.perSecond)}x`,
        sig(spread(rs.map((r) => r.zkRequests.perTask)).median),
        num(spread(rs.map((r) => (r.cpu.processMs / r.tasks) * 1000)).median),
        num(spread(rs.map((r) => r.hostStartMs)).median),
      ];
    }),
    notes: [
      `One pass per process: the first ${num(p.tasks)} tasks after the farm started (cold; throughput also has the steady state).`,
      `Ceiling of this run: ${ceiling.single.variant} ${num(ceiling.single.perSecond)}/s; ${ceiling.multi.variant} ${num(ceiling.multi.perSecond)}/s.`,
    ],
  };
  const rssTable: Table = {
    title: `memory: host RSS per role thread (${FROM_SOURCE ? 'from source under tsx: each thread also carries tsx' : 'compiled JS'})`,
    columns: ['roles', 'RSS before MB', 'RSS after MB', 'MB per role', 'host start ms'],
    rows: rss.map((r) => [r.roles, num(r.beforeMb), num(r.afterMb), sig(r.perRoleMb), num(r.hostStartMs)]),
  };
  const problems = [...failures, ...farmProblems(runs)];
  return {
    scenario: 'scaling',
    title: 'Scaling and memory',
    params: {
      workers: p.workers,
      tasks: p.tasks,
      passes: 1,
      repeats,
      rssRoles: p.rssRoles,
      mode: FROM_SOURCE ? 'source (tsx)' : 'compiled',
    },
    summary: { points, ceiling, rss: rss.map((r) => ({ roles: r.roles, perRoleMb: r.perRoleMb })) },
    runs: { throughput: runs, rss },
    tables: [scalingTable, rssTable],
    invariants: { ok: problems.length === 0, problems },
    notes: [],
  };
}

/** `roles` roles as a memory measurement runs them: 2 masters (1 when `roles` is 2) and the rest workers. */
export function rssShape(base: FarmShape, roles: number): FarmShape {
  const masters = Math.min(2, roles - 1);
  return { ...base, masters, workers: roles - masters };
}

// ---------------------------------------------------------------------------------------------------
// In the measurement process
// ---------------------------------------------------------------------------------------------------

export async function measureRss(job: RssJob, io: BenchIo): Promise<RssResult> {
  await makeChroot(job.zk.connect);
  const admin = await openSession(job.zk.connect);
  const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-bench-rss-'));
  let host: Host | undefined;
  try {
    // The baseline is an empty host (its modules loaded, no thread yet), so the difference is the roles'.
    host = Host.create(
      { connect: job.zk.connect, sessionTimeout: job.shape.sessionTimeout, workdir },
      {
        logger: createLogger({ level: 'warn', pretty: false }),
        spawn: sourceThreads,
        roleResourceLimits: job.roleResourceLimits,
      },
    );
    await sleep(500, io.signal);
    const before = rssMb();
    const t0 = Date.now();
    await host.startRoles(roleSpecs(job.shape));
    await waitUntil(
      async () =>
        ((await admin.client.exists(PATHS.workers))?.numChildren ?? 0) >= job.shape.workers &&
        (await admin.client.exists(PATHS.master)) !== null,
      60_000,
      'every role registered',
      io.signal,
    );
    const hostStartMs = Date.now() - t0;
    await sleep(job.settleMs, io.signal);
    const after = rssMb();
    const roles = job.shape.masters + job.shape.workers;
    return {
      roles,
      shape: job.shape,
      beforeMb: before,
      afterMb: after,
      perRoleMb: (after - before) / roles,
      hostStartMs,
    };
  } finally {
    if (host) await Promise.race([host.stop({ drain: false, deadlineMs: 1000 }), sleep(10_000)]);
    await removeChroot(job.zk.connect).catch(() => {});
    await stopSession(admin.sup);
    rmSync(workdir, { recursive: true, force: true });
  }
}
