/**
 * The multi-host scenario's tables (scenarios/multi-host.ts): the measured figures of one and of two
 * runtime processes side by side, the model's validation on this machine, and the model's prediction
 * for N hosts on 3 and 5 members (capacity-model.ts), from the costs this run measured.
 */
import { cpus } from 'node:os';
import {
  costsOf,
  countsOf,
  type Machines,
  type Prediction,
  predict,
  predictOneMachine,
  type TaskCosts,
} from '../capacity-model.js';
import type { BenchContext } from '../context.js';
import { cell, num, sig, spread } from '../stats.js';
import type { MultiHostResult, ScenarioReport, Spread, Table } from '../types.js';
import { farmProblems } from './throughput.js';

/** The hosts of the model's table, and its machines: hosts and members like this one, 1 Gbit/s links. */
const MODEL_HOSTS = [1, 2, 4, 8, 16];
const MODEL_MEMBERS = [3, 5];
const LINK_BYTES_PER_SECOND = 125_000_000;

const steady = (r: MultiHostResult) => r.passes.at(-1)!;
const whole = (n: number) => num(n);
const pct = (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)}%` : '–');

/** A figure of one measurement, as the table shows it. */
interface Figure {
  key: string;
  label: string;
  value(r: MultiHostResult, cores: number): number;
  format(n: number): string;
}

const costs = (r: MultiHostResult) => costsOf(steady(r), r.tasks, r.leaderHost);
const counts = (r: MultiHostResult, cores: number) => countsOf(steady(r), r.tasks, cores);

const FIGURES: Figure[] = [
  {
    key: 'coldTasksPerSecond',
    label: 'tasks/s, cold',
    value: (r) => r.passes[0]!.tasksPerSecond,
    format: whole,
  },
  {
    key: 'tasksPerSecond',
    label: 'tasks/s, steady state',
    value: (r) => steady(r).tasksPerSecond,
    format: whole,
  },
  {
    key: 'farmUs',
    label: 'runtime processes, CPU µs per task',
    value: (r) => costs(r).farmUs,
    format: whole,
  },
  {
    key: 'leaderThreadUs',
    label: '  of which the leading master (its host less its workers’ tasks at the other host’s rate)',
    value: (r) => costs(r).leaderThreadUs,
    format: whole,
  },
  {
    key: 'submitterUs',
    label: 'submitter and harness process, CPU µs per task',
    value: (r) => costs(r).submitterUs,
    format: whole,
  },
  {
    key: 'zkLeaderUs',
    label: 'ZooKeeper leader, CPU µs per task',
    value: (r) => costs(r).zkLeaderUs,
    format: whole,
  },
  {
    key: 'zkFollowerUs',
    label: 'ZooKeeper follower (mean of the followers), CPU µs per task',
    value: (r) => costs(r).zkFollowerUs,
    format: whole,
  },
  {
    key: 'requestsPerTask',
    label: 'ZooKeeper requests per task (farm and submitter)',
    value: (r, c) => counts(r, c).requestsPerTask,
    format: sig,
  },
  {
    key: 'notificationsPerTask',
    label: 'watch notifications per task',
    value: (r, c) => counts(r, c).notificationsPerTask,
    format: sig,
  },
  {
    key: 'txnsPerTask',
    label: 'write transactions per task (the leader’s proposals)',
    value: (r, c) => counts(r, c).txnsPerTask,
    format: sig,
  },
  {
    key: 'bytesInPerTask',
    label: 'bytes clients sent to ZooKeeper per task',
    value: (r) => costs(r).bytesInPerTask,
    format: whole,
  },
  {
    key: 'bytesOutPerTask',
    label: 'bytes ZooKeeper sent to clients per task',
    value: (r) => costs(r).bytesOutPerTask,
    format: whole,
  },
  {
    key: 'dataBytesPerTask',
    label: 'bytes of data left in ZooKeeper per task',
    value: (r, c) => counts(r, c).dataBytesPerTask,
    format: whole,
  },
  {
    key: 'leaderHostShare',
    label: 'tasks run by the leading master’s host',
    value: (r) => (steady(r).tasksByHost[r.leaderHost] ?? Number.NaN) / r.tasks,
    format: pct,
  },
  {
    key: 'busyShare',
    label: 'CPU of the measured processes ÷ (cores × window)',
    value: (r, c) => counts(r, c).busyShare,
    format: pct,
  },
  {
    key: 'startMs',
    label: 'start → every host ready and registered, ms',
    value: (r) => r.startMs,
    format: whole,
  },
];

/** The median of every field of the costs of `runs` (NaNs left out). */
function medianCosts(runs: MultiHostResult[]): TaskCosts {
  const all = runs.map(costs);
  const m = (f: (c: TaskCosts) => number) => spread(all.map(f)).median;
  return {
    farmUs: m((c) => c.farmUs),
    leaderThreadUs: m((c) => c.leaderThreadUs),
    submitterUs: m((c) => c.submitterUs),
    zkLeaderUs: m((c) => c.zkLeaderUs),
    zkFollowerUs: m((c) => c.zkFollowerUs),
    members: all[0]!.members,
    bytesInPerTask: m((c) => c.bytesInPerTask),
    bytesOutPerTask: m((c) => c.bytesOutPerTask),
  };
}

interface Config {
  hosts: number;
  runs: MultiHostResult[];
  figures: Record<string, Spread>;
  costs: TaskCosts;
}

function configsOf(runs: MultiHostResult[], cores: number): Config[] {
  return [1, 2]
    .map((hosts) => runs.filter((r) => r.hosts === hosts))
    .filter((rs) => rs.length > 0)
    .map((rs) => {
      const figures: Record<string, Spread> = {};
      for (const f of FIGURES) figures[f.key] = spread(rs.map((r) => f.value(r, cores)));
      return { hosts: rs[0]!.hosts, runs: rs, figures, costs: medianCosts(rs) };
    });
}

/** Measured steady tasks/s against the model on this machine, from its own costs and from the other's. */
function validationTable(configs: Config[], cores: number): Table {
  return {
    title: `multi-host: the model on this machine (${cores} cores shared by every process): cores ÷ all the CPU a task costs, steady state, medians`,
    columns: [
      'runtime processes',
      'measured tasks/s',
      'model, own costs',
      'model, the other’s costs',
      'measured ÷ model',
    ],
    rows: configs.map((c) => {
      const other = configs.find((o) => o !== c);
      const own = predictOneMachine(c.costs, cores);
      const measured = c.figures['tasksPerSecond']!.median;
      return [
        String(c.hosts),
        num(measured),
        num(own),
        other ? num(predictOneMachine(other.costs, cores)) : '–',
        `${sig(measured / own)}x`,
      ];
    }),
    notes: [
      'All the CPU a task costs: the runtime processes, the submitter’s process, the ZooKeeper leader and each follower (the costs in the table above). Measured below the model by the share of the cores the measured processes did not get (other work on the machine, and waits: fsyncs, round trips).',
    ],
  };
}

function modelTable(c: TaskCosts, from: string, machines: Machines, predictions: Prediction[]): Table {
  const at = (hosts: number, members: number) =>
    predictions.find((p) => p.hosts === hosts && p.members === members)!;
  return {
    title: `multi-host: the model's prediction for N hosts, from the steady-state costs of ${from} (medians)`,
    columns: [
      'hosts',
      'the farm hosts’ own bound, tasks/s',
      ...MODEL_MEMBERS.flatMap((m) => [`${m} members, tasks/s`, `${m} members, binds first`]),
    ],
    rows: MODEL_HOSTS.map((h) => [
      String(h),
      num(at(h, MODEL_MEMBERS[0]!).bounds.find((b) => b.resource === 'farm hosts’ CPU')?.tasksPerSecond),
      ...MODEL_MEMBERS.flatMap((m) => [num(at(h, m).tasksPerSecond), at(h, m).binding]),
    ]),
    notes: [
      `Each host and each member with ${machines.hostCores} cores (this machine's), links of ${num(machines.memberBytesPerSecond / 1e6)} MB/s. Per task: farm ${num(c.farmUs)} µs over its hosts (the leading master ${num(c.leaderThreadUs)} µs of it, on one thread), ZooKeeper leader ${num(c.zkLeaderUs)} µs and follower ${num(c.zkFollowerUs)} µs on ${c.members} members, ${num(c.bytesInPerTask)} bytes in and ${num(c.bytesOutPerTask)} out. The leader's CPU above a follower's is taken as all per-follower work (an upper estimate of its growth: the 5-member figures are floors); see benchmarks/README.md, "Capacity model: beyond one machine".`,
    ],
  };
}

export function multiHostReport(
  ctx: BenchContext,
  runs: MultiHostResult[],
  failures: string[],
  notes: string[],
): Omit<ScenarioReport, 'startedAt' | 'durationMs'> {
  const cores = cpus().length;
  const p = ctx.opts.preset.multiHost;
  const configs = configsOf(runs, cores);
  const base = configs.find((c) => c.hosts === 2) ?? configs[0]!;
  const machines: Machines = {
    hostCores: cores,
    memberCores: cores,
    memberBytesPerSecond: LINK_BYTES_PER_SECOND,
  };
  const predictions = MODEL_HOSTS.flatMap((h) =>
    MODEL_MEMBERS.map((m) => predict(base.costs, machines, h, m)),
  );
  const problems = [...failures, ...farmProblems(runs)];
  const shape = ctx.defaultShape;
  const roles = (r: MultiHostResult) => r.perHost.map((x) => `${x.masters} + ${x.workers}`).join(' and ');
  const measured: Table = {
    title: `multi-host: ${shape.masters} masters and ${shape.workers} workers × ${shape.capacity} in one runtime process or split over two, on a 3-member ensemble, ${num(p.tasks)} no-op tasks a pass — median (min–max)`,
    columns: [
      'figure',
      ...configs.map((c) => `${c.hosts} runtime process${c.hosts > 1 ? 'es' : ''} (${roles(c.runs[0]!)})`),
    ],
    rows: FIGURES.map((f) => [f.label, ...configs.map((c) => cell(c.figures[f.key]!, f.format))]),
    notes: [
      `${runs.length} measurement(s), each a fresh process with fresh runtime processes, alternating 1, 2 then 2, 1. Per-task figures are the steady state's (the second ${num(p.tasks)} on the same farm). Re-executions: ${runs.reduce((n, r) => n + r.check.reruns, 0)}. ` +
        (problems.length
          ? `PROBLEMS: ${problems.join('; ')}`
          : 'Invariants: every task of every pass has exactly one status.'),
      'Requests: client packets every member received less the harness’s own session’s; notifications: packets sent less packets received (each request has one response); bytes: zk_bytes_received_count and zk_response_bytes; write transactions: the leader’s zk_proposal_count; data: zk_approximate_data_size. One mntr question’s own counts are taken out of each window.',
      ...notes,
    ],
  };
  return {
    scenario: 'multi-host',
    title: 'One and two hosts on a 3-member ensemble, and the capacity model',
    params: { members: 3, shape, tasks: p.tasks, passes: 2, repeats: p.repeats, cores, machines },
    summary: {
      configs: configs.map((c) => ({
        hosts: c.hosts,
        ...c.figures,
        costs: c.costs,
        predictedHere: predictOneMachine(c.costs, cores),
      })),
      model: { costsFrom: `${base.hosts} host(s)`, costs: base.costs, machines, predictions },
    },
    runs,
    tables: [
      measured,
      validationTable(configs, cores),
      modelTable(base.costs, `${base.hosts} runtime process(es)`, machines, predictions),
    ],
    invariants: { ok: problems.length === 0, problems },
    notes: [],
  };
}
