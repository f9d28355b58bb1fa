/**
 * Scenario `ceiling`: raw ZooKeeper write capacity with the farm's own client (ZkClient), the physical
 * limit the farm is measured against.
 *
 * Variants, for 1 and several clients (each client its own session):
 *   single  pipelined creates: `window` requests in flight per client, each one persistent sequential
 *           create of a task-sized payload ({"handler":"noop"}).
 *   multi   the same creates batched `batch` to a multi, `multiWindow` multis in flight per client.
 * Figure: creates/s = creates acknowledged ÷ (first request sent → last answer received), and the
 * ZooKeeper server's CPU per 1000 creates. Each repeat is a fresh process that runs every variant in
 * turn (the order rotates between repeats); each variant writes under its own node, deleted after it
 * (untimed), so every variant starts on the same tree.
 */
import { encode } from '../../../src/farm/protocol.js';
import { CreateMode, type ZkClient } from '../../../src/zk/index.js';
import { type BenchContext, type CeilingFigures, someOrThrow, tolerant } from '../context.js';
import {
  type BenchIo,
  makeChroot,
  openSession,
  removeChroot,
  removeTree,
  stopSession,
  throwIfAborted,
} from '../farm-fixture.js';
import { processCpuMs } from '../proc.js';
import { num, spread, spreadCells } from '../stats.js';
import type { CeilingJob, CeilingResult, CeilingVariant, ScenarioReport, Table } from '../types.js';

export function ceilingVariants(ctx: BenchContext): CeilingVariant[] {
  const c = ctx.opts.preset.ceiling;
  const out: CeilingVariant[] = [];
  for (const clients of c.clients) {
    out.push({
      name: `single creates, ${clients} client${clients > 1 ? 's' : ''}`,
      mode: 'create',
      clients,
      creates: c.singles,
      batch: 1,
      window: c.window,
    });
  }
  for (const clients of c.clients) {
    out.push({
      name: `multi of ${c.batch} creates, ${clients} client${clients > 1 ? 's' : ''}`,
      mode: 'multi',
      clients,
      creates: c.multis,
      batch: c.batch,
      window: c.multiWindow,
    });
  }
  return out;
}

/** One repeat: every variant in a fresh process, in an order rotated by `rotation`. */
export async function ceilingRepeat(
  ctx: BenchContext,
  rotation: number,
  label: string,
): Promise<CeilingResult[]> {
  const variants = ceilingVariants(ctx);
  const k = rotation % variants.length;
  const ordered = [...variants.slice(k), ...variants.slice(0, k)];
  const job: CeilingJob = {
    kind: 'ceiling',
    zk: ctx.target('ceiling'),
    variants: ordered,
    maxMsPerVariant: ctx.opts.preset.ceiling.maxMsPerVariant,
  };
  const timeout = 30_000 + ordered.length * (ctx.opts.preset.ceiling.maxMsPerVariant + 15_000);
  const results = await ctx.measure<CeilingResult[]>(job, label, timeout, (rs) =>
    rs.map((r) => `${r.variant.mode}×${r.variant.clients} ${num(r.perSecond)}/s`).join(', '),
  );
  // Report in the canonical order whatever order they ran in.
  return variants.map((v) => results.find((r) => r.variant.name === v.name)!).filter(Boolean);
}

/** The best single-create and multi medians over the repeats. */
export function ceilingFigures(repeats: CeilingResult[][]): CeilingFigures {
  const best = (mode: 'create' | 'multi') => {
    let top = { variant: '–', perSecond: Number.NaN };
    const names = new Set(
      repeats
        .flat()
        .filter((r) => r.variant.mode === mode)
        .map((r) => r.variant.name),
    );
    for (const name of names) {
      const m = spread(
        repeats
          .flat()
          .filter((r) => r.variant.name === name)
          .map((r) => r.perSecond),
      ).median;
      if (Number.isFinite(m) && !(m <= top.perSecond)) top = { variant: name, perSecond: m };
    }
    return top;
  };
  return { single: best('create'), multi: best('multi') };
}

export async function runCeiling(
  ctx: BenchContext,
): Promise<Omit<ScenarioReport, 'startedAt' | 'durationMs'>> {
  const repeats = ctx.opts.preset.repeats.ceiling;
  const runs: CeilingResult[][] = [];
  const failures: string[] = [];
  for (let r = 0; r < repeats; r++) {
    const label = `ceiling #${r + 1}/${repeats}`;
    const run = await tolerant(ctx.signal, failures, label, () => ceilingRepeat(ctx, r, label));
    if (run) runs.push(run);
  }
  someOrThrow(runs, failures);
  ctx.shared.ceilingRuns = runs;
  ctx.shared.ceiling = ceilingFigures(runs);
  const variants = ceilingVariants(ctx);
  const table: Table = {
    title: "ceiling: raw ZooKeeper creates/s (the farm's own client; fsync on)",
    columns: ['variant', 'in flight/client', 'min', 'median', 'max', 'ZK CPU ms/1000 creates'],
    rows: variants.map((v) => {
      const rs = runs.flat().filter((r) => r.variant.name === v.name);
      const s = spread(rs.map((r) => r.perSecond));
      const cpu = spread(rs.map((r) => (r.serverCpuMs / Math.max(1, r.done)) * 1000)).median;
      return [
        v.name,
        v.mode === 'multi' ? `${v.window} multis` : `${v.window}`,
        ...spreadCells(s, (n) => num(n)),
        num(cpu),
      ];
    }),
    notes: [
      `${repeats} repeat(s), each a fresh process; ${num(variants[0]!.creates)} single creates and ${num(variants.at(-1)!.creates)} batched creates per variant.`,
    ],
  };
  const summary: Record<string, unknown> = {};
  for (const v of variants) {
    summary[v.name] = spread(
      runs
        .flat()
        .filter((r) => r.variant.name === v.name)
        .map((r) => r.perSecond),
    );
  }
  summary['best'] = ctx.shared.ceiling;
  return {
    scenario: 'ceiling',
    title: 'Raw ZooKeeper write ceiling',
    params: { variants, repeats },
    summary,
    runs,
    tables: [table],
    invariants: { ok: failures.length === 0, problems: failures },
    notes: [],
  };
}

// ---------------------------------------------------------------------------------------------------
// In the measurement process
// ---------------------------------------------------------------------------------------------------

/**
 * Keep up to `window` calls of `issue` in flight until `total` units were issued or the deadline passed.
 * Resolves with the units acknowledged and the time of the last answer.
 */
function pump(
  issue: () => Promise<void>,
  unit: number,
  total: number,
  window: number,
  deadline: number,
): Promise<{ done: number; last: number }> {
  return new Promise((resolve, reject) => {
    let issued = 0;
    let done = 0;
    let inflight = 0;
    let last = Date.now();
    let failed = false;
    const next = () => {
      while (!failed && inflight < window && issued < total && Date.now() < deadline) {
        issued += unit;
        inflight++;
        issue().then(
          () => {
            inflight--;
            done += unit;
            last = Date.now();
            next();
          },
          (err) => {
            failed = true;
            reject(err);
          },
        );
      }
      if (inflight === 0 && !failed) resolve({ done, last });
    };
    next();
  });
}

async function runVariant(job: CeilingJob, v: CeilingVariant): Promise<CeilingResult> {
  const sessions = await Promise.all(Array.from({ length: v.clients }, () => openSession(job.zk.connect)));
  const dir = `/${v.mode}-${v.clients}`;
  try {
    const clients: ZkClient[] = sessions.map((s) => s.client);
    await clients[0]!.ensurePath(dir);
    const payload = encode({ handler: 'noop' });
    const perClient = Math.ceil(v.creates / v.clients / v.batch) * v.batch;
    const cpu0 = processCpuMs(job.zk.pid);
    const t0 = Date.now();
    const deadline = t0 + job.maxMsPerVariant;
    const outcomes = await Promise.all(
      clients.map((c) =>
        v.mode === 'create'
          ? pump(
              () => c.createSequential(`${dir}/n-`, payload).then(() => {}),
              1,
              perClient,
              v.window,
              deadline,
            )
          : pump(
              () => {
                const tx = c.transaction();
                for (let i = 0; i < v.batch; i++)
                  tx.create(`${dir}/n-`, payload, CreateMode.PERSISTENT_SEQUENTIAL);
                return tx.commit().then(() => {});
              },
              v.batch,
              perClient,
              v.window,
              deadline,
            ),
      ),
    );
    const last = Math.max(...outcomes.map((o) => o.last));
    const serverCpuMs = Math.round(processCpuMs(job.zk.pid) - cpu0);
    const done = outcomes.reduce((n, o) => n + o.done, 0);
    const elapsedMs = Math.max(1, last - t0);
    const result = { variant: v, done, elapsedMs, perSecond: (done / elapsedMs) * 1000, serverCpuMs };
    // Untimed: the next variant starts on the same (empty) tree.
    await removeTree(clients[0]!, dir);
    return result;
  } finally {
    await Promise.all(sessions.map((s) => stopSession(s.sup)));
  }
}

export async function measureCeiling(job: CeilingJob, io: BenchIo): Promise<CeilingResult[]> {
  const results: CeilingResult[] = [];
  await makeChroot(job.zk.connect);
  try {
    for (const [i, v] of job.variants.entries()) {
      throwIfAborted(io.signal);
      io.progress(i, job.variants.length, 'variants');
      results.push(await runVariant(job, v));
    }
  } finally {
    await removeChroot(job.zk.connect).catch(() => {});
  }
  return results;
}
