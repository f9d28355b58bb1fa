/**
 * The benchmark harness: `runBench(options)` starts a real ZooKeeper server (and redis-server for the
 * BullMQ peer), runs the selected scenarios — every measurement in a fresh process (child.ts) — prints
 * each scenario's table, and writes `<scenario>-<timestamp>.json`, `latest.json`, `latest.md` and the
 * SVG charts into the results directory. Everything it starts is stopped on every exit path, SIGINT
 * included (a second SIGINT kills at once).
 *
 * One scenario per file in scenarios/, each with its orchestrator side (what to run, the tables) and its
 * measurement side (what runs in the fresh process). See benchmarks/README.md for what each measures.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeError } from '../../src/errors.js';
import { startZkServer, type ZkServer } from '../../src/zk/index.js';
import { warmUpServer } from '../../src/zk/warm-up.js';
import { killChildren, runChild } from './child.js';
import { type BenchContext, type CeilingFigures, someOrThrow, tolerant } from './context.js';
import { openSession, stopSession } from './farm-fixture.js';
import { machineInfo, packageVersion, repoRoot, versions } from './machine.js';
import { type BenchOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { loadAverage } from './proc.js';
import { summarizeProfiles } from './profile-summary.js';
import { Progress } from './progress.js';
import { type RedisServer, redisUnavailable, startRedis } from './redis.js';
import { type RunRecord, writeReport } from './report.js';
import { ceilingFigures, ceilingRepeat, runCeiling } from './scenarios/ceiling.js';
import { runFailover } from './scenarios/failover.js';
import { runFresh } from './scenarios/fresh.js';
import { runLatency } from './scenarios/latency.js';
import { runMultiHost } from './scenarios/multi-host.js';
import { measureBullOnce, peerReport } from './scenarios/peer.js';
import { runScale } from './scenarios/scale.js';
import { runScaling } from './scenarios/scaling.js';
import { runServices } from './scenarios/services.js';
import { measureFarmOnce, throughputReport } from './scenarios/throughput.js';
import { renderText, spread } from './stats.js';
import {
  type BullmqResult,
  DEFAULT_SCENARIOS,
  type FarmResult,
  type FarmShape,
  type ScenarioName,
  type ScenarioReport,
} from './types.js';

export type { BenchOptions } from './options.js';
export { PRESETS, parseScenarios } from './options.js';
export type { RunRecord } from './report.js';
export { writeReport } from './report.js';
export { DEFAULT_SCENARIOS, SCENARIOS, type ScenarioName, type ScenarioReport, type Size } from './types.js';

export interface BenchResult {
  /** Every scenario completed and every check passed. */
  ok: boolean;
  /** Stopped by a signal or `options.signal`. */
  interrupted: boolean;
  dir: string;
  files: string[];
  reports: ScenarioReport[];
}

type Body = Omit<ScenarioReport, 'startedAt' | 'durationMs'>;

const TITLES: Record<ScenarioName, string> = {
  ceiling: 'Raw ZooKeeper write ceiling',
  throughput: 'Farm throughput',
  latency: 'Submit-to-status latency',
  scaling: 'Scaling and memory',
  failover: 'Failover during a steady stream',
  peer: 'zkfarm vs BullMQ on Redis',
  services: 'Services: SIGKILL of a host',
  scale: 'A million tasks queued and drained',
  fresh: 'A new runtime against a new BullMQ',
  'multi-host': 'One and two hosts on a 3-member ensemble, and the capacity model',
};

function emptyReport(scenario: ScenarioName, fields: Partial<ScenarioReport>): Body {
  return {
    scenario,
    title: TITLES[scenario],
    params: {},
    summary: {},
    runs: [],
    tables: [],
    invariants: { ok: true, problems: [] },
    notes: [],
    ...fields,
  };
}

/**
 * Load ZooKeeper for a few seconds before the first measurement, so no measurement meets a cold JVM
 * (src/zk/warm-up.ts: creates, then the farm's mix, in a throwaway root removed afterwards). Returns the
 * sentence the report prints.
 */
async function warmUp(connectString: string, signal: AbortSignal): Promise<string> {
  const { client, sup } = await openSession(connectString);
  try {
    const w = await warmUpServer(client, { root: '/zkfarm-bench-warmup', signal });
    const n = (x: number) => x.toLocaleString('en-US');
    return (
      `It was warmed up before the first measurement with ${n(w.creates)} creates (${(w.createsMs / 1000).toFixed(1)} s, ` +
      `single and 100 to a multi), then ${(w.mixMs / 1000).toFixed(1)} s of the farm's mix: ` +
      `${n(w.moved)} nodes moved the way tasks move, 50 at a time (a multi of sequential ` +
      'creates, getChildren, multiRead, a multi of creates and deletes to an assignment dir, multiRead, a ' +
      `multi to a status dir), under a persistent recursive watch that heard ${n(w.notifications)} changes; ` +
      'all in a throwaway root, removed afterwards.'
    );
  } finally {
    await stopSession(sup);
  }
}

function stampOf(d: Date): string {
  return d
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
}

function planCount(opts: ResolvedOptions): number {
  const p = opts.preset;
  const has = (s: ScenarioName) => opts.scenarios.includes(s);
  let n = 0;
  if (has('ceiling')) n += p.repeats.ceiling;
  if (has('throughput') || has('peer')) n += p.repeats.throughput;
  if (has('peer') && !redisUnavailable()) n += p.repeats.throughput;
  else if (has('peer') && !has('throughput')) n -= p.repeats.throughput;
  // The latency scenario alternates the farm's series with BullMQ's when Redis is here.
  if (has('latency')) n += p.repeats.latency * (redisUnavailable() ? 1 : 2);
  if (has('scaling')) n += p.scaling.workers.length * p.repeats.scaling + p.scaling.rssRoles.length;
  if (has('failover')) n += p.repeats.failover * (p.failover.together ? 1 : p.failover.faults.length);
  if (has('services')) n += p.services.repeats;
  if (has('fresh')) n += 2 * p.fresh.repeats;
  if (has('multi-host')) n += 2 * p.multiHost.repeats;
  return n;
}

export async function runBench(options: BenchOptions = {}): Promise<BenchResult> {
  const opts = resolveOptions(options, join(repoRoot(), 'benchmarks', 'results'));
  mkdirSync(opts.out, { recursive: true });
  const cpuProfDir = opts.cpuProf ? join(opts.out, 'profiles') : undefined;
  if (cpuProfDir) {
    mkdirSync(cpuProfDir, { recursive: true });
    // Profiles are large and belong to one machine: never committed.
    writeFileSync(join(cpuProfDir, '.gitignore'), '*\n');
    // Profiles of an earlier run would be summed with this one's.
    for (const f of readdirSync(cpuProfDir))
      if (/\.cpuprofile$|^window-\d+\.json$/.test(f)) rmSync(join(cpuProfDir, f));
  }
  const progress = new Progress(opts.progress, opts.stderr);
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      progress.log(`${sig}: stopping the running measurement and every server (again to kill at once)`);
      abort.abort();
    } else {
      killChildren();
      // The ZooKeeper launcher and redis.ts kill their servers on exit.
      process.exit(130);
    }
  };
  if (opts.handleSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  const started = new Date();
  const stamp = stampOf(started);
  const machine = machineInfo();
  const reports: Partial<Record<ScenarioName, ScenarioReport>> = {};
  const files: Partial<Record<ScenarioName, string>> = {};
  const written: string[] = [];
  let zk: ZkServer | undefined;
  let redis: Promise<RedisServer | { unavailable: string }> | undefined;
  const print = (text: string) => progress.write(opts.stdout, `\n${text}\n\n`);
  try {
    progress.log(`${opts.size} run of ${opts.scenarios.join(', ')}; results in ${opts.out}`);
    zk = await startZkServer({});
    const server = zk;
    const vers = await versions(server);
    const warm = await warmUp(server.connectString, abort.signal);
    progress.plan(planCount(opts));
    let chroots = 0;
    const defaultShape: FarmShape = {
      masters: opts.preset.throughput.masters,
      workers: opts.preset.throughput.workers,
      capacity: opts.preset.throughput.capacity,
      sessionTimeout: opts.preset.sessionTimeout,
    };
    let capacity: Promise<number> | undefined;
    let ceiling: Promise<CeilingFigures> | undefined;
    const ctx: BenchContext = {
      opts,
      zk: { connectString: server.connectString, pid: server.pid ?? 0 },
      progress,
      signal: abort.signal,
      reports,
      defaultShape,
      shared: {},
      target: (name) => ({
        connect: `${server.connectString}/zkfarm-bench/${name}-${process.pid}-${++chroots}`,
        pid: server.pid ?? 0,
      }),
      async measure<T>(
        job: Parameters<BenchContext['measure']>[0],
        label: string,
        timeoutMs: number,
        describe: (r: T) => string,
      ): Promise<T> {
        if (abort.signal.aborted) throw new Error('interrupted');
        progress.begin(label);
        try {
          const r = await runChild<T>(job, {
            timeoutMs,
            signal: abort.signal,
            onProgress: (d, t, l) => progress.update(d, t, l),
            cpuProfDir,
          });
          progress.end(describe(r));
          return r;
        } catch (err) {
          progress.end(`FAILED: ${describeError(err).split('\n')[0]}`);
          throw err;
        }
      },
      redis() {
        redis ??= (async () => {
          const why = redisUnavailable();
          if (why) return { unavailable: why };
          try {
            return await startRedis(opts.redisPersistence);
          } catch (err) {
            return { unavailable: `redis-server could not be started: ${describeError(err)}` };
          }
        })();
        return redis;
      },
      capacity() {
        capacity ??= (async () => {
          // The cold figure (and one pass below): latency and failover each load a farm that has just started.
          if (ctx.shared.farmRuns?.length)
            return spread(ctx.shared.farmRuns.map((r) => r.tasksPerSecond)).median;
          progress.plan(1);
          const r = await measureFarmOnce(
            ctx,
            defaultShape,
            opts.preset.throughput.tasks,
            'capacity (throughput was not selected)',
            'capacity',
            1,
          );
          ctx.shared.farmRuns = [r];
          return r.tasksPerSecond;
        })();
        return capacity;
      },
      ceiling() {
        ceiling ??= (async () => {
          if (ctx.shared.ceiling) return ctx.shared.ceiling;
          progress.plan(1);
          const run = await ceilingRepeat(ctx, 0, 'ceiling (the ceiling scenario was not selected)');
          ctx.shared.ceiling = ceilingFigures([run]);
          return ctx.shared.ceiling;
        })();
        return ceiling;
      },
      warmUp: (connectString) => warmUp(connectString, abort.signal),
    };

    const finish = (body: Body, t0: number) => {
      const report: ScenarioReport = {
        ...body,
        startedAt: new Date(t0).toISOString(),
        durationMs: Date.now() - t0,
      };
      reports[report.scenario] = report;
      const file = `${report.scenario}-${stamp}.json`;
      const context = {
        size: opts.size,
        machine,
        versions: vers,
        zookeeper: { settings: server.config.settings, javaOpts: server.config.javaOpts },
      };
      writeFileSync(join(opts.out, file), `${JSON.stringify({ ...report, run: context }, null, 2)}\n`);
      files[report.scenario] = file;
      written.push(join(opts.out, file));
      const head = report.skipped
        ? `${report.scenario}: skipped — ${report.skipped}`
        : report.error
          ? `${report.scenario}: FAILED — ${report.error}`
          : '';
      print([head, ...report.tables.map(renderText)].filter(Boolean).join('\n\n'));
    };
    const attempt = async (scenario: ScenarioName, run: () => Promise<Body>) => {
      if (abort.signal.aborted) return;
      const t0 = Date.now();
      try {
        finish(await run(), t0);
      } catch (err) {
        // An interrupted run writes nothing.
        if (abort.signal.aborted) return;
        finish(
          emptyReport(scenario, {
            error: describeError(err),
            invariants: { ok: false, problems: [] },
          }),
          t0,
        );
      }
    };

    const has = (s: ScenarioName) => opts.scenarios.includes(s);
    if (has('ceiling')) await attempt('ceiling', () => runCeiling(ctx));
    if ((has('throughput') || has('peer')) && !abort.signal.aborted) {
      // Alternate farm and BullMQ runs, so both meet the same machine load.
      const t0 = Date.now();
      // The headline divides by the ceiling of this run: measure it first if `ceiling` was not selected.
      if (has('throughput')) await ctx.ceiling().catch(() => undefined);
      const peer = has('peer') ? await ctx.redis() : undefined;
      const rs = peer && 'port' in peer ? peer : undefined;
      const farmRuns: FarmResult[] = [];
      const bullRuns: BullmqResult[] = [];
      const pairs: Array<[FarmResult, BullmqResult]> = [];
      const farmFailures: string[] = [];
      const bullFailures: string[] = [];
      const reps = opts.preset.repeats.throughput;
      try {
        // Without redis and without `throughput` selected, farm runs would serve nothing.
        for (let r = 0; r < reps && (rs || has('throughput')); r++) {
          const label = `throughput #${r + 1}/${reps}`;
          const farm = await tolerant(abort.signal, farmFailures, label, () =>
            measureFarmOnce(ctx, defaultShape, opts.preset.throughput.tasks, label),
          );
          if (farm) farmRuns.push(farm);
          if (!rs) continue;
          const bullLabel = `peer (BullMQ) #${r + 1}/${reps}`;
          const bull = await tolerant(abort.signal, bullFailures, bullLabel, () =>
            measureBullOnce(ctx, rs, bullLabel),
          );
          if (bull) bullRuns.push(bull);
          if (farm && bull) pairs.push([farm, bull]);
        }
      } catch {
        // interrupted: nothing is written
      }
      if (farmRuns.length) ctx.shared.farmRuns = farmRuns;
      if (has('throughput')) {
        await attempt('throughput', async () =>
          throughputReport(ctx, someOrThrow(farmRuns, farmFailures), farmFailures),
        );
      }
      if (has('peer') && !abort.signal.aborted) {
        const bullmq = packageVersion('bullmq') ?? '?';
        if (peer && 'unavailable' in peer) {
          progress.log(`peer skipped: ${peer.unavailable}`);
          finish(emptyReport('peer', { skipped: peer.unavailable }), t0);
        } else {
          const failures = [...farmFailures, ...bullFailures];
          await attempt('peer', async () => {
            someOrThrow(pairs, failures);
            return peerReport(ctx, pairs, rs!, bullmq, failures);
          });
        }
      }
    }
    if (has('latency')) await attempt('latency', () => runLatency(ctx));
    if (has('scaling')) await attempt('scaling', () => runScaling(ctx));
    if (has('failover')) await attempt('failover', () => runFailover(ctx));
    if (has('services')) await attempt('services', () => runServices(ctx));
    if (has('scale')) await attempt('scale', () => runScale(ctx));
    if (has('fresh')) {
      const why = redisUnavailable();
      if (why) {
        progress.log(`fresh skipped: ${why}`);
        finish(emptyReport('fresh', { skipped: why }), Date.now());
      } else await attempt('fresh', () => runFresh(ctx));
    }
    if (has('multi-host')) await attempt('multi-host', () => runMultiHost(ctx));

    const all = Object.values(reports);
    const redisInfo = redis ? await redis : undefined;
    machine.loadAverageAfter = loadAverage();
    const record: RunRecord = {
      format: 1,
      generatedAt: started.toISOString(),
      command: commandLine(opts, options),
      size: opts.size,
      durationMs: Date.now() - started.getTime(),
      machine,
      versions: { ...vers, ...(redisInfo && 'version' in redisInfo ? { redis: redisInfo.version } : {}) },
      zookeeper: { settings: server.config.settings, javaOpts: server.config.javaOpts, warmUp: warm },
      ...(redisInfo
        ? {
            redis:
              'version' in redisInfo
                ? { version: redisInfo.version, persistence: redisInfo.persistence, args: redisInfo.args }
                : redisInfo,
          }
        : {}),
      scenarios: reports,
      files,
      ok: all.length > 0 && all.every((r) => !r.error && r.invariants.ok),
    };
    if (cpuProfDir && !abort.signal.aborted) {
      const summary = join(cpuProfDir, 'summary.md');
      writeFileSync(summary, summarizeProfiles(cpuProfDir));
      written.push(summary);
      progress.log(`CPU profiles: ${cpuProfDir} (summary: ${summary})`);
    }
    if (!abort.signal.aborted) {
      writeFileSync(join(opts.out, 'latest.json'), `${JSON.stringify(record, null, 2)}\n`);
      written.push(join(opts.out, 'latest.json'), ...writeReport(record, opts.out));
      progress.log(`report: ${join(opts.out, 'latest.md')}`);
    }
    return {
      ok: record.ok && !abort.signal.aborted,
      interrupted: abort.signal.aborted,
      dir: opts.out,
      files: written,
      reports: all,
    };
  } finally {
    const r = redis ? await redis.catch(() => undefined) : undefined;
    if (r && 'stop' in r) await r.stop().catch(() => {});
    await zk?.stop().catch(() => {});
    progress.close();
    opts.signal?.removeEventListener('abort', onOuterAbort);
    if (opts.handleSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}

function commandLine(opts: ResolvedOptions, options: BenchOptions): string {
  const parts = ['runtime bench'];
  if (opts.size !== 'full') parts.push(opts.size === 'quick' ? '--quick' : `--size ${opts.size}`);
  const defaults =
    opts.scenarios.length === DEFAULT_SCENARIOS.length &&
    DEFAULT_SCENARIOS.every((s) => opts.scenarios.includes(s));
  if (!defaults) parts.push(`--scenario ${opts.scenarios.join(',')}`);
  if (options.repeats !== undefined) parts.push(`--repeats ${options.repeats}`);
  if (options.tasks !== undefined) parts.push(`--tasks ${options.tasks}`);
  if (opts.redisPersistence !== 'everysec') parts.push(`--redis-persistence ${opts.redisPersistence}`);
  return parts.join(' ');
}
