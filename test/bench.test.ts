/**
 * The benchmark harness on a tiny size, as a child process the way a user runs it: every scenario runs
 * (peer is skipped with a reason when redis-server is missing), and the JSON, Markdown and SVG files
 * have the expected structure (throughput and peer with both passes, cold and steady state), and every
 * farm run passed the invariant check over the tasks of both passes. No speed or ratio is asserted.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { redisUnavailable } from '../benchmarks/harness/redis.js';
import type { RunRecord } from '../benchmarks/harness/report.js';
import { DEFAULT_SCENARIOS, type ScenarioReport, type Spread } from '../benchmarks/harness/types.js';

const out = mkdtempSync(join(tmpdir(), 'zkfarm-bench-test-'));
after(() => rmSync(out, { recursive: true, force: true }));

function run(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'benchmarks/harness/main.ts', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`bench did not finish within ${timeoutMs} ms\n${stderr.slice(-3000)}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const isPositive = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n > 0;

const isSpread = (x: unknown): x is Spread =>
  typeof x === 'object' &&
  x !== null &&
  ['min', 'median', 'max', 'n'].every((k) => typeof (x as Record<string, unknown>)[k] === 'number');

test('a tiny run of every scenario writes JSON, Markdown and SVG, and every check passes', {
  timeout: 150_000,
}, async () => {
  const res = await run(['--size', 'tiny', '--out', out, '--progress', 'lines'], 140_000);
  const detail = `exit ${res.code}\nstderr:\n${res.stderr.slice(-4000)}\nstdout:\n${res.stdout.slice(-4000)}`;
  assert.equal(res.code, 0, detail);
  // Quiet progress lines (not a TTY), and a table per scenario on stdout.
  assert.match(res.stderr, /bench: \[1\/\d+\] ceiling/);
  assert.match(res.stdout, /throughput: 2 masters, 4 workers × capacity 4, 200 no-op tasks/);

  const files = readdirSync(out);
  const latest = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as RunRecord;
  assert.equal(latest.format, 1);
  assert.equal(latest.size, 'tiny');
  assert.equal(latest.ok, true, detail);
  assert.ok(latest.machine.cores >= 1 && latest.machine.cpuModel.length > 0);
  assert.match(latest.versions.node, /^v\d+/);
  assert.match(latest.versions.zookeeper, /^3\./);
  assert.equal(latest.zookeeper.settings['clientPortAddress'], '127.0.0.1');

  for (const name of DEFAULT_SCENARIOS) {
    const report = latest.scenarios[name] as ScenarioReport | undefined;
    assert.ok(report, `latest.json has ${name}`);
    const file = latest.files[name];
    assert.ok(file && files.includes(file), `${name} has its own JSON file`);
    assert.match(file!, new RegExp(`^${name}-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\dZ\\.json$`));
    const own = JSON.parse(readFileSync(join(out, file!), 'utf8')) as ScenarioReport & {
      run: { machine: unknown };
    };
    assert.equal(own.scenario, name);
    assert.ok(own.run.machine, 'each file says where it ran');
    if ((name === 'peer' || name === 'fresh') && redisUnavailable()) {
      assert.match(report.skipped ?? '', /redis-server/);
      continue;
    }
    assert.equal(report.error, undefined, `${name}: ${report.error}`);
    assert.equal(report.skipped, undefined);
    assert.deepEqual(report.invariants, { ok: true, problems: [] }, `${name} invariants`);
    assert.ok(report.tables.length >= 1, `${name} has a table`);
    for (const t of report.tables) {
      assert.ok(t.rows.length >= 1, `${name}: ${t.title} has rows`);
      for (const row of t.rows)
        assert.equal(row.length, t.columns.length, `${name}: ${t.title} rows fit the columns`);
    }
  }

  const s = latest.scenarios;
  assert.ok(isSpread(s.throughput!.summary['tasksPerSecond']));
  assert.ok(isSpread(s.throughput!.summary['requestsPerTask']));
  assert.ok(isSpread(s.throughput!.summary['ratioToSingleCeiling']), 'farm ÷ ceiling, from the same run');
  // Both passes of throughput: the cold one in the summary's own fields, the steady state under `warm`.
  const warmSummary = s.throughput!.summary['warm'] as Record<string, unknown> | undefined;
  assert.ok(warmSummary, 'throughput has a steady-state pass');
  for (const [pass, summary] of [
    ['cold', s.throughput!.summary],
    ['warm', warmSummary],
  ] as const) {
    for (const key of ['tasksPerSecond', 'requestsPerTask', 'hostCpuMsPer1000', 'workersCpuMsPer1000'])
      assert.ok(isSpread(summary[key]), `throughput ${pass} ${key}`);
    assert.ok(isSpread(summary['ratioToSingleCeiling']), `${pass} farm ÷ ceiling, from the same run`);
    assert.ok(isPositive((summary['tasksPerSecond'] as Spread).median), `${pass} tasks/s`);
  }
  interface FarmPassJson {
    tasksPerSecond: number;
    zkRequests: { perTask: number };
    cpu: { processMs: number; mainThreadMs: number; mastersMs: number; workersMs: number };
  }
  const farmRun = (
    s.throughput!.runs as Array<
      FarmPassJson & { check: { ok: boolean; statuses: number }; tasks: number; warm?: FarmPassJson }
    >
  )[0]!;
  assert.equal(farmRun.check.ok, true);
  assert.ok(farmRun.warm, 'the farm ran a second pass');
  assert.equal(farmRun.check.statuses, 2 * farmRun.tasks, 'every task of both passes has its status');
  for (const [pass, figures] of [
    ['cold', farmRun],
    ['warm', farmRun.warm],
  ] as const) {
    assert.ok(isPositive(figures.tasksPerSecond), `${pass} pass tasks/s: ${figures.tasksPerSecond}`);
    assert.ok(Number.isFinite(figures.zkRequests.perTask), `${pass} pass requests per task`);
    // The CPU by kind of thread: the worker threads ran every task, and no share exceeds the whole.
    const cpu = figures.cpu;
    assert.ok(cpu.workersMs > 0, `${pass} pass worker threads' CPU: ${cpu.workersMs}`);
    assert.ok(
      cpu.mastersMs >= 0 && cpu.mainThreadMs >= 0,
      `${pass} pass masters ${cpu.mastersMs}, main ${cpu.mainThreadMs}`,
    );
    assert.ok(cpu.mastersMs + cpu.workersMs + cpu.mainThreadMs <= cpu.processMs + 100, JSON.stringify(cpu));
  }
  assert.match(res.stdout, /tasks\/s, cold \(first 200 after start\)/);
  assert.match(res.stdout, /tasks\/s, steady state \(second 200 after start\)/);
  // Scaling runs one pass per worker count (the cold figure).
  const scalingRuns = (s.scaling!.runs as { throughput: Array<{ warm?: unknown }> }).throughput;
  assert.ok(scalingRuns.length > 0 && scalingRuns.every((r) => r.warm === undefined));
  if (!redisUnavailable()) {
    const peerWarm = s.peer!.summary['warm'] as Record<string, unknown> | undefined;
    assert.ok(peerWarm, 'peer has a steady-state pass');
    for (const [pass, summary] of [
      ['cold', s.peer!.summary],
      ['warm', peerWarm],
    ] as const) {
      assert.ok(isSpread(summary['ratioPerPair']), `${pass} farm ÷ BullMQ, from the same run`);
      assert.equal(typeof summary['ratioOfMedians'], 'number');
      for (const key of ['farmTasksPerSecond', 'bullmqJobsPerSecond'])
        assert.ok(isPositive((summary[key] as Spread).median), `peer ${pass} ${key}`);
    }
    interface BullPassJson {
      jobsPerSecond: number;
      completed: number;
      processed: number;
    }
    const bullRun = (
      s.peer!.runs as {
        bullmq: Array<
          BullPassJson & {
            jobs: number;
            warm?: BullPassJson;
            check: { ok: boolean; completed: number; processed: number };
          }
        >;
      }
    ).bullmq[0]!;
    assert.ok(bullRun.warm, 'BullMQ ran a second pass');
    assert.equal(bullRun.check.ok, true);
    assert.equal(bullRun.check.completed, 2 * bullRun.jobs, 'every job of both passes completed');
    for (const [pass, figures] of [
      ['cold', bullRun],
      ['warm', bullRun.warm],
    ] as const) {
      assert.ok(isPositive(figures.jobsPerSecond), `${pass} pass jobs/s: ${figures.jobsPerSecond}`);
      assert.equal(figures.completed, bullRun.jobs, `${pass} pass: every job completed once`);
      assert.equal(figures.processed, bullRun.jobs, `${pass} pass: every job ran once`);
    }
  }
  const failover = s.failover!.summary['faults'] as Array<{
    fault: string;
    gapMs: Spread;
    recoverMs: Spread;
  }>;
  assert.deepEqual(
    failover.map((f) => f.fault),
    ['leader-stop', 'worker-crash'],
  );
  for (const f of failover) assert.ok(isSpread(f.gapMs) && isSpread(f.recoverMs));
  const latency = s.latency!.summary as {
    idle: { p50: Spread; roundTrip: Spread };
    rates: Array<{ p99: Spread }>;
    warmRates: Array<{ p99: Spread; toStartP99: Spread }>;
  };
  assert.ok(isSpread(latency.idle.p50) && latency.rates.length === 1 && isSpread(latency.rates[0]!.p99));
  // The load series runs again on the warmed farm, reported second.
  assert.ok(latency.warmRates.length === 1 && isSpread(latency.warmRates[0]!.p99), 'warm series');
  assert.ok(isSpread(latency.warmRates[0]!.toStartP99) && latency.warmRates[0]!.toStartP99.min >= 0);
  // The idle round trip is timed, not left out: a positive figure the idle table shows.
  assert.ok(isSpread(latency.idle.roundTrip) && latency.idle.roundTrip.min > 0, 'idle round trip measured');
  // BullMQ's same series is the reference, in the same run, when Redis is here.
  const bull = (s.latency!.summary as { bullmq?: typeof latency }).bullmq;
  if (redisUnavailable()) assert.equal(bull, undefined);
  else {
    assert.ok(bull && isSpread(bull.idle.p50) && bull.idle.p50.min > 0, 'BullMQ idle latency measured');
    assert.ok(isSpread(bull.idle.roundTrip) && bull.idle.roundTrip.min > 0, 'Redis round trip measured');
    assert.ok(bull.rates.length === 1 && isSpread(bull.rates[0]!.p99) && bull.rates[0]!.p99.min > 0);
    assert.ok(bull.warmRates.length === 1 && isSpread(bull.warmRates[0]!.p99), 'BullMQ warm series');
  }

  const md = readFileSync(join(out, 'latest.md'), 'utf8');
  for (const heading of [
    '# zkfarm benchmark results',
    '## Machine and versions',
    '## ZooKeeper settings',
    ...DEFAULT_SCENARIOS.map((n) => `## ${n}: `),
  ]) {
    assert.ok(md.includes(heading), `latest.md has "${heading}"`);
  }
  assert.match(md, /\| zkfarm tasks\/s/);
  if (!redisUnavailable()) {
    // The headline has both ratios, each labelled, the steady state first.
    // The headline leads with the fresh ratio (what a new user meets), then the steady state, then cold.
    const fresh = md.indexOf(
      '| zkfarm ÷ BullMQ, fresh (each side started anew, the first 300 after ready) |',
    );
    const steady = md.indexOf('| zkfarm ÷ BullMQ, steady state (second 200 after start) |');
    const cold = md.indexOf('| zkfarm ÷ BullMQ, cold (first 200 after start) |');
    assert.ok(
      fresh >= 0 && steady > fresh && cold > steady,
      'latest.md has the three ratio rows, fresh first',
    );
    // Each fresh pair: both sides' tasks/s and where their CPU went (the app's process and the server).
    const pairs = s.fresh!.runs as Array<
      Record<'farm' | 'bull', { perSecond: number; cpu: { appMs: number; serverMs: number } }>
    >;
    assert.equal(pairs.length, 1);
    for (const side of [pairs[0]!.farm, pairs[0]!.bull]) {
      assert.ok(isPositive(side.perSecond), `fresh tasks/s: ${side.perSecond}`);
      assert.ok(side.cpu.appMs > 0 && side.cpu.serverMs > 0, `fresh CPU: ${JSON.stringify(side.cpu)}`);
    }
  }
  assert.match(md, /ZooKeeper[^\n]*warmed up[^\n]*persistent recursive watch/);
  assert.match(md, /!\[scaling chart\]\(scaling\.svg\)/);
  assert.match(md, /!\[latency chart\]\(latency\.svg\)/);
  assert.match(md, /\| one ZooKeeper round trip after the same idle gap, p50 \| [0-9]/);
  assert.match(
    md,
    /latency p99 at 50% of capacity, farm just started[^\n]*\n(?:[^\n]*BullMQ[^\n]*\n)?[^\n]*latency p99 at 50% of capacity, warm/,
  );
  assert.match(md, /### the same rates again, on the same farm warmed by the series above/);
  if (!redisUnavailable()) {
    assert.match(md, /### the same series on BullMQ, at the same offered rates/);
    assert.match(md, /\| idle, one at a time \|[^\n]*\| [0-9.]+x \|/);
    assert.match(
      md,
      /\| the first task, after 1 s idle since the start \|\s*\| [0-9]+ \| [0-9]+ \|\s*\|\s*\| [0-9.]+x \|\s*\|/,
    );
    assert.match(md, /\| BullMQ latency p50 on an idle queue, same run, ms \| [0-9]/);
  }

  for (const svg of ['scaling.svg', 'latency.svg']) {
    assert.ok(existsSync(join(out, svg)), `${svg} written`);
    const text = readFileSync(join(out, svg), 'utf8');
    assert.match(
      text,
      /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/,
    );
    assert.ok(text.trimEnd().endsWith('</svg>'));
    assert.ok(!/NaN|undefined/.test(text), `${svg} has no NaN or undefined`);
    assert.match(text, /<polyline points="[\d., -]+"/);
    // Every element that opens also closes (a rough well-formedness check without an XML parser).
    const opens = (text.match(/<(svg|text|circle)\b[^>]*[^/]>/g) ?? []).length;
    const closes = (text.match(/<\/(svg|text|circle)>/g) ?? []).length;
    assert.equal(opens, closes, `${svg} is well formed`);
  }
});

test('bad options are refused with a message that names what is expected', async () => {
  const res = await run(['--scenario', 'throughput,nope', '--out', out], 30_000);
  assert.notEqual(res.code, 0);
  assert.match(
    res.stderr,
    /unknown scenario "nope"; expected one or more of ceiling, throughput, latency, scaling, failover, peer/,
  );
});
