/**
 * Scenario `multi-host` (run it by name: `runtime bench --scenario multi-host`): the per-task costs a
 * farm of several hosts puts on a ZooKeeper ensemble, the inputs of the capacity model
 * (capacity-model.ts, benchmarks/README.md "Capacity model: beyond one machine").
 *
 * The harness starts a 3-member ensemble on 127.0.0.1 (src/zk/ensemble.ts, as the tests do) and warms
 * it up as it warms the run's standalone server. Each measurement, in a fresh process, splits the
 * default farm's roles (2 masters, 8 workers × 4) over `hosts` runtime processes, each started as a user
 * starts one on a machine of its own: `runtime --zk <members>/<chroot> --masters M --workers W
 * --name-prefix hN` (1 host: 2 + 8; 2 hosts: 1 + 4 each), so the farm's roles stay the same and only the
 * processes change. Once every host is ready and registered, two passes as in `throughput`: N no-op tasks
 * submitted by a Submitter in the measurement process, then N more on the same farm (cold, then steady
 * state), each timed and counted on its own:
 *   tasks/s        N ÷ (first submit sent → the pass's last status created, its znode's ctime)
 *   CPU            each runtime process, the measurement process, each member's java (/proc, proc.ts)
 *   ZooKeeper      each member's `mntr` counters (ensemble-counters.ts): requests, notifications,
 *                  bytes in and out, the leader's write transactions, the data left in the tree
 * and after both passes every task is checked to have exactly one status (invariants.ts). Measurements
 * alternate 1 and 2 hosts, in the order 1, 2 then 2, 1, so both meet the machine's drift alike.
 *
 * On one machine the hosts and the members share its cores: the scenario checks the per-task costs
 * the model is made of, not how a farm scales over machines.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PATHS } from '../../../src/farm/protocol.js';
import { Submitter } from '../../../src/farm/submitter.js';
import { startZkEnsemble } from '../../../src/zk/index.js';
import { type BenchContext, someOrThrow, tolerant } from '../context.js';
import { endWindow, readMembers, startWindow } from '../ensemble-counters.js';
import {
  type BenchIo,
  makeChroot,
  openSession,
  removeChroot,
  sleep,
  stopSession,
  waitForStatusCount,
  waitUntil,
} from '../farm-fixture.js';
import { checkFarm, type StatusRecord, summaryOf } from '../invariants.js';
import { ownCpuMs, processCpuMs } from '../proc.js';
import { type Proc, runtimeArgs, startNode } from '../processes.js';
import { num, sig } from '../stats.js';
import type { FarmShape, MultiHostJob, MultiHostPass, MultiHostResult, ScenarioReport } from '../types.js';
import { multiHostReport } from './multi-host-report.js';
import { farmWaitMs } from './throughput.js';

export const MEMBERS = 3;
const READY_MS = 120_000;

export async function runMultiHost(
  ctx: BenchContext,
): Promise<Omit<ScenarioReport, 'startedAt' | 'durationMs'>> {
  const p = ctx.opts.preset.multiHost;
  ctx.progress.log(`multi-host: starting a ${MEMBERS}-member ZooKeeper ensemble on 127.0.0.1`);
  const ensemble = await startZkEnsemble({ size: MEMBERS });
  try {
    const warmUp = await ctx.warmUp(ensemble.connectString);
    const members = ensemble.members.map((m) => ({ id: m.id, host: m.host, port: m.port, pid: m.pid ?? 0 }));
    const runs: MultiHostResult[] = [];
    const failures: string[] = [];
    let chroots = 0;
    for (let r = 0; r < p.repeats; r++) {
      for (const hosts of r % 2 === 0 ? [1, 2] : [2, 1]) {
        const job: MultiHostJob = {
          kind: 'multi-host',
          connect: `${ensemble.connectString}/zkfarm-bench/multi-host-${process.pid}-${++chroots}`,
          members,
          hosts,
          shape: ctx.defaultShape,
          tasks: p.tasks,
          passes: 2,
          timeoutMs: farmWaitMs(p.tasks),
        };
        const label = `multi-host, ${hosts} host${hosts > 1 ? 's' : ''} #${r + 1}/${p.repeats}`;
        const run = await tolerant(ctx.signal, failures, label, () =>
          ctx.measure<MultiHostResult>(job, label, READY_MS + 2 * job.timeoutMs + 120_000, describe),
        );
        if (run) runs.push(run);
      }
    }
    someOrThrow(runs, failures);
    const settings = ensemble.members[0]!.config.settings;
    return multiHostReport(ctx, runs, failures, [
      `The ensemble: ${MEMBERS} members on 127.0.0.1 (QuorumPeerMain, tickTime ${settings['tickTime'] ?? '?'} ms, ZooKeeper's defaults otherwise: every member fsyncs every write). ${warmUp}`,
    ]);
  } finally {
    await ensemble.stop();
  }
}

function describe(r: MultiHostResult): string {
  const [cold, steady] = r.passes;
  const requests = steady
    ? steady.members.reduce((n, m) => n + m.packetsReceived, -steady.adminRequests) / r.tasks
    : Number.NaN;
  return (
    `${num(cold?.tasksPerSecond)} tasks/s cold, ${num(steady?.tasksPerSecond)} steady state, ` +
    `${sig(requests)} ZK req/task${r.check.ok ? '' : `, INVARIANTS BROKEN: ${r.check.problems.join('; ')}`}`
  );
}

// ---------------------------------------------------------------------------------------------------
// In the measurement process
// ---------------------------------------------------------------------------------------------------

/** The roles of each of `hosts` processes: the farm's, split as evenly as they go. */
export function splitShape(shape: FarmShape, hosts: number): Array<{ masters: number; workers: number }> {
  const share = (total: number, i: number) => Math.floor(total / hosts) + (i < total % hosts ? 1 : 0);
  return Array.from({ length: hosts }, (_, i) => ({
    masters: share(shape.masters, i),
    workers: share(shape.workers, i),
  }));
}

/** What a measurement has running: its runtime processes, the harness's session, the submitter. */
interface Live {
  job: MultiHostJob;
  procs: Proc[];
  admin: Awaited<ReturnType<typeof openSession>>;
  submitter: Submitter;
  io: BenchIo;
}

/** One pass before its statuses are read: its ids, its start, and its counters. */
interface PassRun {
  ids: string[];
  t0: number;
  counted: Omit<MultiHostPass, 'elapsedMs' | 'tasksPerSecond' | 'tasksByHost'>;
}

/** Start every host at once; resolves when each said ready and a leader and every worker registered. */
async function startHosts(job: MultiHostJob, dir: string, io: BenchIo): Promise<Proc[]> {
  // As the throughput scenario's farm: no result is swept away before the check reads them all.
  const config = join(dir, 'farm.json');
  writeFileSync(config, JSON.stringify({ retention: { maxCount: 1_000_000, intervalMs: 86_400_000 } }));
  const env = { XDG_RUNTIME_DIR: dir, ZKFARM_ZK: '' };
  const procs = splitShape(job.shape, job.hosts).map((roles, i) =>
    startNode(
      [...runtimeArgs(), '--zk', job.connect, '--config', config, '--name-prefix', `h${i + 1}`].concat(
        ['--masters', String(roles.masters), '--workers', String(roles.workers)],
        ['--capacity', String(job.shape.capacity), '--session-timeout', String(job.shape.sessionTimeout)],
        ['--workdir', join(dir, 'work'), '--log-level', 'warn'],
      ),
      env,
    ),
  );
  try {
    await Promise.all(
      procs.map((p, i) => p.waitFor(/runtime: ready/, READY_MS, `host h${i + 1}`, io.signal)),
    );
  } catch (err) {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    throw err;
  }
  return procs;
}

/** One pass: submit N tasks, wait until /status holds `before` + N; CPU and counters over that window. */
async function runPass(live: Live, before: number, label: string): Promise<PassRun> {
  const { job, io, procs, admin, submitter } = live;
  const tasks = Array.from({ length: job.tasks }, () => ({ handler: 'noop' }));
  await sleep(300, io.signal);
  const start = await startWindow(job.members);
  const hosts0 = procs.map((p) => processCpuMs(p.child.pid!));
  const own0 = ownCpuMs();
  const admin0 = admin.sup.requests;
  const sub0 = submitter.supervisor.requests;
  // The wait stops as soon as submitting fails, so the failure is reported at once.
  const failed = new AbortController();
  const t0 = Date.now();
  let submitMs = 0;
  const submitting = submitter.submitMany(tasks).then(
    (ids) => {
      submitMs = Date.now() - t0;
      return ids;
    },
    (err) => {
      failed.abort();
      throw err;
    },
  );
  const signal = AbortSignal.any([io.signal, failed.signal]);
  const [ids] = await Promise.all([
    submitting,
    waitForStatusCount(admin.client, before + job.tasks, job.timeoutMs, { ...io, signal }, label),
  ]);
  const windowMs = Date.now() - t0;
  const hostsCpuMs = procs.map((p, i) => Math.round(processCpuMs(p.child.pid!) - hosts0[i]!));
  const measurerCpuMs = Math.round(ownCpuMs() - own0);
  const adminRequests = admin.sup.requests - admin0;
  const submitterRequests = submitter.supervisor.requests - sub0;
  const end = endWindow(start, await readMembers(job.members));
  return {
    ids,
    t0,
    counted: { windowMs, submitMs, hostsCpuMs, measurerCpuMs, adminRequests, submitterRequests, ...end },
  };
}

/** A pass's end (its last status's ctime) and which host ran each task (worker names are `h<N>-worker-<i>`). */
function passFigures(run: PassRun, records: Map<string, StatusRecord>, hosts: number): MultiHostPass {
  let last = 0;
  const tasksByHost = new Array<number>(hosts).fill(0);
  for (const id of run.ids) {
    const r = records.get(id);
    if (!r) continue;
    last = Math.max(last, r.ctime);
    const host = Number(/^h(\d+)-/.exec(r.status.worker ?? '')?.[1]) - 1;
    if (host >= 0 && host < hosts) tasksByHost[host]!++;
  }
  const elapsedMs = Math.max(1, last - run.t0);
  return { elapsedMs, tasksPerSecond: (run.ids.length / elapsedMs) * 1000, ...run.counted, tasksByHost };
}

/** The host whose master holds /master (-1 if none of them). */
async function leaderHost(live: Live): Promise<number> {
  const { data } = await live.admin.client.getData(PATHS.master);
  const pid = (JSON.parse(data.toString('utf8')) as { pid?: number }).pid;
  return live.procs.findIndex((p) => p.child.pid === pid);
}

export async function measureMultiHost(job: MultiHostJob, io: BenchIo): Promise<MultiHostResult> {
  await makeChroot(job.connect);
  const dir = mkdtempSync(join(tmpdir(), 'zkfarm-bench-multi-host-'));
  let procs: Proc[] = [];
  let admin: Live['admin'] | undefined;
  let submitter: Submitter | undefined;
  try {
    io.progress(0, job.passes * job.tasks, `starting ${job.hosts} runtime host(s)`);
    const t0 = Date.now();
    procs = await startHosts(job, dir, io);
    admin = await openSession(job.connect);
    const client = admin.client;
    await waitUntil(
      async () => {
        const [master, workers] = await Promise.all([
          client.exists(PATHS.master),
          client.exists(PATHS.workers),
        ]);
        return master !== null && (workers?.numChildren ?? 0) >= job.shape.workers;
      },
      30_000,
      'a leader and every worker registered',
      io.signal,
    );
    const startMs = Date.now() - t0;
    submitter = await Submitter.open({ connect: job.connect, sessionTimeout: 10_000 });
    const live: Live = { job, procs, admin, submitter, io };
    const runs: PassRun[] = [];
    for (let p = 0; p < job.passes; p++)
      runs.push(await runPass(live, p * job.tasks, `tasks done (pass ${p + 1} of ${job.passes})`));
    const check = await checkFarm(
      client,
      runs.flatMap((r) => r.ids),
      { workdir: join(dir, 'work') },
    );
    return {
      hosts: job.hosts,
      perHost: splitShape(job.shape, job.hosts),
      capacity: job.shape.capacity,
      tasks: job.tasks,
      startMs,
      leaderHost: await leaderHost(live),
      passes: runs.map((r) => passFigures(r, check.records, job.hosts)),
      check: summaryOf(check),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop('SIGTERM', 20_000)));
    if (submitter) await stopSession(submitter.supervisor);
    if (admin) await stopSession(admin.sup);
    await removeChroot(job.connect).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}
