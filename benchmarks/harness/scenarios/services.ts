/**
 * Scenario `services` (run it by name: `runtime bench --scenario services`): a service of 3 instances of
 * a small HTTP server (test/fixtures/service-http.mjs, one port per instance, an HTTP health check every
 * 200 ms) across two `runtime` host processes, each with one master and one worker that runs shell
 * commands. Once all 3 are healthy, the host running two of them is SIGKILLed; its instances die with
 * it (their guard), its worker's session expires after the session timeout T, and the leader (the
 * surviving master, after its own term if the killed host led) places them on the other host. Runs
 * alternate: the killed host leads (`killLeader`), or the other one does.
 *
 * Per run (client clock from the SIGKILL):
 *   healthy again   until /services/web/endpoints lists 3 healthy instances, all on the surviving host;
 *   answering again until all 3 ports answer HTTP again;
 *   copies gone     until the killed host's instances are gone from /proc (the guard kills them);
 * and, probed every 25 ms from the service's creation to the end, the most copies of the server alive
 * at once (/proc: the truth about what runs) and the most instances answering at once (HTTP). On one
 * machine two copies of an instance cannot share its port, so the /proc count is the one that would
 * show a fourth copy. Stopping the surviving host (SIGTERM) must leave no copy behind.
 *
 * test/services-failover.test.ts runs `measureServices` itself and asserts on what it returns.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MasterInfo, PATHS } from '../../../src/farm/protocol.js';
import { createService, serviceState } from '../../../src/services/index.js';
import { type BenchContext, someOrThrow, tolerant } from '../context.js';
import {
  type BenchIo,
  makeChroot,
  openSession,
  removeChroot,
  sleep,
  stopSession,
  waitUntil,
} from '../farm-fixture.js';
import { repoRoot } from '../machine.js';
import { runtimeArgs } from '../processes.js';
import { cell, num, spread } from '../stats.js';
import type { ScenarioReport, ServicesJob, ServicesResult, Table } from '../types.js';

const INSTANCES = 3;
const PROBE_MS = 25;

export async function runServices(
  ctx: BenchContext,
): Promise<Omit<ScenarioReport, 'startedAt' | 'durationMs'>> {
  const p = ctx.opts.preset.services;
  const runs: ServicesResult[] = [];
  const failures: string[] = [];
  for (let r = 0; r < p.repeats; r++) {
    const job: ServicesJob = {
      kind: 'services',
      zk: ctx.target('services'),
      sessionTimeout: p.sessionTimeout,
      stopGraceMs: p.stopGraceMs,
      killLeader: r % 2 === 0,
      timeoutMs: 180_000,
    };
    const label = `services #${r + 1}/${p.repeats}`;
    const run = await tolerant(ctx.signal, failures, label, () =>
      ctx.measure<ServicesResult>(
        job,
        label,
        job.timeoutMs + 60_000,
        (x) => `3 healthy again ${num(x.healthyAgainMs)} ms after SIGKILL; at most ${x.mostCopies} copies`,
      ),
    );
    if (run) runs.push(run);
  }
  someOrThrow(runs, failures);
  const problems = [...failures, ...runs.flatMap(servicesProblems)];
  const figures = (rs: ServicesResult[]) => ({
    runs: rs.length,
    healthyAgainMs: spread(rs.map((x) => x.healthyAgainMs)),
    answeringAgainMs: spread(rs.map((x) => x.answeringAgainMs)),
    copiesGoneMs: spread(rs.map((x) => x.copiesGoneMs)),
    mostCopies: Math.max(...rs.map((x) => x.mostCopies)),
    mostAnswering: Math.max(...rs.map((x) => x.mostAnswering)),
  });
  const cases = [
    { label: 'the leader’s host', runs: runs.filter((x) => x.leaderKilled) },
    { label: 'the other host', runs: runs.filter((x) => !x.leaderKilled) },
  ].filter((c) => c.runs.length > 0);
  const summary = {
    ...figures(runs),
    byKilledHost: cases.map((c) => ({ killed: c.label, ...figures(c.runs) })),
  };
  const table: Table = {
    title: `services: ${INSTANCES} instances of an HTTP server on two runtime hosts, the host with two SIGKILLed; session timeout ${num(p.sessionTimeout)} ms, stop grace ${num(p.stopGraceMs)} ms — median (min–max)`,
    columns: [
      'host killed',
      'runs',
      'SIGKILL → 3 healthy on the other host ms',
      'SIGKILL → 3 answer HTTP ms',
      'SIGKILL → its copies gone ms',
      'most copies alive',
      'most answering',
    ],
    rows: summary.byKilledHost.map((c) => [
      c.killed,
      String(c.runs),
      cell(c.healthyAgainMs),
      cell(c.answeringAgainMs),
      cell(c.copiesGoneMs),
      String(c.mostCopies),
      String(c.mostAnswering),
    ]),
    notes: [
      `${runs.length} run(s), each in a fresh process with two fresh runtime hosts, started one after the other so that the first leads; the runs alternate between killing the leader's host (its worker's and its master's sessions expire together) and the other one. Copies alive: /proc, probed every ${PROBE_MS} ms from the service's creation to the end; answering: HTTP on the instances' ports. ZooKeeper expires sessions once a tick (its tickTime is in the run's settings), so a session ends between T and T + tick after the SIGKILL.`,
      problems.length
        ? `PROBLEMS: ${problems.join('; ')}`
        : `Checks: never more than ${INSTANCES} copies alive, 3 healthy again on the surviving host, nothing left after it stopped.`,
    ],
  };
  return {
    scenario: 'services',
    title: 'Services: SIGKILL of a host',
    params: {
      instances: INSTANCES,
      sessionTimeout: p.sessionTimeout,
      stopGraceMs: p.stopGraceMs,
      repeats: p.repeats,
    },
    summary,
    runs,
    tables: [table],
    invariants: { ok: problems.length === 0, problems },
    notes: [],
  };
}

/** What a run shows that it must not: a fourth copy, an instance not back, a copy left behind. */
export function servicesProblems(r: ServicesResult): string[] {
  const out: string[] = [];
  if (r.mostCopies > INSTANCES) out.push(`${r.mostCopies} copies alive at once`);
  if (r.mostAnswering > INSTANCES) out.push(`${r.mostAnswering} instances answered at once`);
  if (r.leftAfterStop > 0) out.push(`${r.leftAfterStop} copies left after the surviving host stopped`);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// In the measurement process
// ---------------------------------------------------------------------------------------------------

const FIXTURE = join(repoRoot(), 'test', 'fixtures', 'service-http.mjs');

/** Live (not zombie) processes whose command line holds `tag` as a word of its own. */
export function liveCopies(tag: string): { pid: number; argv: string[] }[] {
  const found: { pid: number; argv: string[] }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (!argv.includes(tag)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat[stat.lastIndexOf(')') + 2] !== 'Z') found.push({ pid: Number(entry), argv });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** A base port with `count` free loopback ports after it. */
export async function freePorts(count: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await free(base + i);
    if (ok) return base;
  }
  throw new Error('no free ports found');
}

interface Host {
  prefix: string;
  child: ChildProcess;
  output(): string;
  gone: Promise<void>;
}

/** A `runtime` host (1 master, 1 worker with shell) on `connect`, ready when its roles run. */
async function startHost(job: ServicesJob, dir: string, prefix: string, io: BenchIo): Promise<Host> {
  const args = [
    ...runtimeArgs(),
    ...['--zk', job.zk.connect, '--masters', '1', '--workers', '1', '--name-prefix', prefix],
    ...['--allow-shell', '--session-timeout', String(job.sessionTimeout), '--workdir', join(dir, prefix)],
  ];
  const child = spawn(process.execPath, args, {
    cwd: repoRoot(),
    env: { ...process.env, XDG_RUNTIME_DIR: dir, NO_COLOR: '1', ZKFARM_ZK: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString('utf8')).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const gone = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const host = { prefix, child, output: () => out, gone };
  await waitUntil(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`runtime host ${prefix} exited while starting: ${out.slice(-2000)}`);
      return /runtime: ready/.test(out);
    },
    90_000,
    `runtime host ${prefix} ready`,
    io.signal,
  );
  return host;
}

async function stopHost(h: Host, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (h.child.exitCode !== null || h.child.signalCode !== null) return;
  h.child.kill(signal);
  const t = setTimeout(() => h.child.kill('SIGKILL'), timeoutMs);
  await h.gone;
  clearTimeout(t);
}

/** HTTP answers of the instances' ports now (instance number per answering port). */
async function answering(base: number): Promise<number> {
  const asks = Array.from({ length: INSTANCES }, (_, n) =>
    fetch(`http://127.0.0.1:${base + n}/`, { signal: AbortSignal.timeout(500) }).then(
      (r) => r.ok,
      () => false,
    ),
  );
  return (await Promise.all(asks)).filter(Boolean).length;
}

export async function measureServices(job: ServicesJob, io: BenchIo): Promise<ServicesResult> {
  await makeChroot(job.zk.connect);
  const dir = mkdtempSync(join(tmpdir(), 'zkfarm-bench-services-'));
  const hosts: Host[] = [];
  const tag = `zkfarm-bench-services-${process.pid}-${Date.now()}`;
  const { client, sup } = await openSession(job.zk.connect);
  let probing = true;
  let mostCopies = 0;
  let mostAnswering = 0;
  let probe: Promise<void> = Promise.resolve();
  try {
    io.progress(0, 4, 'starting two runtime hosts');
    // The instances go 2 to alpha, 1 to beta (placement breaks ties by worker name); the host started
    // first leads, so the order decides whether the SIGKILL takes the leader too.
    for (const prefix of job.killLeader ? ['alpha', 'beta'] : ['beta', 'alpha']) {
      hosts.push(await startHost(job, dir, prefix, io));
      if (hosts.length === 1)
        await waitUntil(() => client.exists(PATHS.master).then(Boolean), 30_000, 'a leader', io.signal);
    }
    const base = await freePorts(INSTANCES);
    const createdAt = Date.now();
    await createService(client, {
      name: 'web',
      cmd: `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(FIXTURE)} ${tag} "$ZKFARM_INSTANCE"`,
      instances: INSTANCES,
      ports: { http: base },
      health: { type: 'http', url: 'http://127.0.0.1:{port}/health', intervalMs: 200, startPeriodMs: 5000 },
      stopGraceMs: job.stopGraceMs,
    });
    probe = (async () => {
      while (probing) {
        mostCopies = Math.max(mostCopies, liveCopies(tag).length);
        mostAnswering = Math.max(mostAnswering, await answering(base));
        await sleep(PROBE_MS);
      }
    })();
    io.progress(1, 4, 'waiting for 3 healthy instances');
    const healthy = async (ok: (worker: string) => boolean) => {
      const s = await serviceState(client, 'web');
      const ready = s.instances.filter((i) => i.run?.state === 'healthy' && i.endpoint && ok(i.run.worker));
      return ready.length === INSTANCES;
    };
    await waitUntil(() => healthy(() => true), 60_000, '3 healthy instances', io.signal, 50);
    const startMs = Date.now() - createdAt;
    const perWorker = new Map<string, number>();
    for (const i of (await serviceState(client, 'web')).instances)
      perWorker.set(i.run!.worker, (perWorker.get(i.run!.worker) ?? 0) + 1);
    const busiest = [...perWorker].sort((a, b) => b[1] - a[1])[0]![0];
    const victim = hosts.find((h) => busiest.startsWith(`${h.prefix}-`))!;
    const leader = await client.getData(PATHS.master).then(
      (r) => JSON.parse(r.data?.toString('utf8') ?? '{}') as Partial<MasterInfo>,
      () => ({}) as Partial<MasterInfo>,
    );

    io.progress(2, 4, 'SIGKILL of the host with two instances');
    const killedAt = Date.now();
    const victimCopies = perWorker.get(busiest)!;
    await stopHost(victim, 'SIGKILL', 5000);
    let copiesGoneMs = Number.NaN;
    let answeringAgainMs = Number.NaN;
    let healthyAgainMs = Number.NaN;
    await waitUntil(
      async () => {
        const now = Date.now() - killedAt;
        if (Number.isNaN(copiesGoneMs) && liveCopies(tag).length <= INSTANCES - victimCopies)
          copiesGoneMs = now;
        if (Number.isNaN(answeringAgainMs) && (await answering(base)) === INSTANCES) answeringAgainMs = now;
        if (Number.isNaN(healthyAgainMs) && (await healthy((w) => w !== busiest))) healthyAgainMs = now;
        return !Number.isNaN(copiesGoneMs + answeringAgainMs + healthyAgainMs);
      },
      job.sessionTimeout * 3 + 60_000,
      '3 healthy instances on the surviving host',
      io.signal,
      20,
    );
    probing = false;
    await probe;

    io.progress(3, 4, 'stopping the surviving host');
    const survivor = hosts.find((h) => h !== victim)!;
    await stopHost(survivor, 'SIGTERM', 30_000);
    await waitUntil(async () => liveCopies(tag).length === 0, 10_000, 'no copy left', io.signal).catch(
      () => {},
    );
    io.progress(4, 4, 'done');
    return {
      sessionTimeout: job.sessionTimeout,
      stopGraceMs: job.stopGraceMs,
      startMs,
      healthyAgainMs,
      answeringAgainMs,
      copiesGoneMs,
      mostCopies,
      mostAnswering,
      leaderKilled: leader.pid === victim.child.pid,
      onVictim: victimCopies,
      leftAfterStop: liveCopies(tag).length,
    };
  } finally {
    probing = false;
    await probe;
    await Promise.all(hosts.map((h) => stopHost(h, 'SIGKILL', 5000)));
    for (const c of liveCopies(tag)) process.kill(c.pid, 'SIGKILL');
    await stopSession(sup);
    await removeChroot(job.zk.connect).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
