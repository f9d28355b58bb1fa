/**
 * The capacity model of benchmarks/README.md ("Capacity model: beyond one machine"): from the per-task
 * costs the multi-host scenario measures, the tasks/s of a farm of N hosts on an ensemble of m members,
 * and the resource that binds first. Pure arithmetic (test/unit/capacity-model.test.ts).
 *
 * Why it has this shape:
 * - The farm's work spreads over its hosts: the leader hands tasks to workers by free slots, and each
 *   worker runs, records and acknowledges its own. N hosts of C cores: N·C ÷ farm CPU per task. The
 *   leading master is one thread on one host: 1 ÷ its CPU per task, however many hosts there are.
 * - Every write goes to ZooKeeper's leader, which proposes it to every follower; every member logs
 *   (fsync) and applies every write; reads and watch notifications are served by the member a session is
 *   connected to, and sessions spread over the members. So a follower's CPU per task does not grow with
 *   N or m, and the leader's grows with its followers. Measured on 3 members, the leader's CPU per task
 *   above a follower's is all taken as per-follower work: zL(m) = zF + (zL − zF)·(m − 1)/2. Part of that
 *   difference is the leader's own per-write work, the same for any m, so this overstates the growth:
 *   the figure for 5 members is a floor.
 * - The leader sends each write to each follower: the client bytes in per task (writes carry the data;
 *   a read is little more than its path) × (m − 1), plus its share of responses and notifications.
 */
import type { MultiHostPass } from './types.js';

/** What one task costs, measured on an ensemble of `members`. CPU in µs per task. */
export interface TaskCosts {
  /** All farm host processes together: role threads and their processes' helper threads. */
  farmUs: number;
  /** The leading master's own share of farmUs (NaN when unknown: then it bounds nothing). */
  leaderThreadUs: number;
  /** The submitting client (and the harness counting results): on a machine of its own in a real farm. */
  submitterUs: number;
  /** The ensemble's leader. */
  zkLeaderUs: number;
  /** A follower (the followers' mean). */
  zkFollowerUs: number;
  members: number;
  /** Bytes clients sent to the ensemble, all members together. */
  bytesInPerTask: number;
  /** Bytes the ensemble sent to clients (responses, notifications), all members together. */
  bytesOutPerTask: number;
}

/** The machines the prediction is for. */
export interface Machines {
  hostCores: number;
  memberCores: number;
  /** What a member's network link sends per second (1 Gbit/s: 125,000,000). */
  memberBytesPerSecond: number;
}

export type Resource =
  | 'farm hosts’ CPU'
  | 'leading master thread'
  | 'ZooKeeper leader’s CPU'
  | 'ZooKeeper followers’ CPU'
  | 'ZooKeeper leader’s network';

export interface Prediction {
  hosts: number;
  members: number;
  tasksPerSecond: number;
  /** The resource with the lowest bound. */
  binding: Resource;
  bounds: Array<{ resource: Resource; tasksPerSecond: number }>;
}

/** The leader's CPU per task on `members` (see the header: the growth over 3 members is an upper estimate). */
export function zkLeaderUsAt(c: TaskCosts, members: number): number {
  const perFollower = Math.max(0, c.zkLeaderUs - c.zkFollowerUs) / Math.max(1, c.members - 1);
  return c.zkFollowerUs + perFollower * (members - 1);
}

/** Bytes the leader sends per task on `members`: each write to every follower, and its clients' share. */
export function leaderBytesOutAt(c: TaskCosts, members: number): number {
  return c.bytesInPerTask * (members - 1) + c.bytesOutPerTask / members;
}

/** Tasks/s of `hosts` farm hosts on an ensemble of `members`, each bound, and which binds. */
export function predict(c: TaskCosts, m: Machines, hosts: number, members: number): Prediction {
  const perSecond = (cores: number, us: number) => (us > 0 ? (cores * 1e6) / us : Number.POSITIVE_INFINITY);
  const bounds: Prediction['bounds'] = [
    { resource: 'farm hosts’ CPU', tasksPerSecond: perSecond(hosts * m.hostCores, c.farmUs) },
    {
      resource: 'leading master thread',
      tasksPerSecond: Number.isFinite(c.leaderThreadUs)
        ? perSecond(1, c.leaderThreadUs)
        : Number.POSITIVE_INFINITY,
    },
    {
      resource: 'ZooKeeper leader’s CPU',
      tasksPerSecond: perSecond(m.memberCores, zkLeaderUsAt(c, members)),
    },
    { resource: 'ZooKeeper followers’ CPU', tasksPerSecond: perSecond(m.memberCores, c.zkFollowerUs) },
    {
      resource: 'ZooKeeper leader’s network',
      tasksPerSecond: perSecond(m.memberBytesPerSecond / 1e6, leaderBytesOutAt(c, members)),
    },
  ];
  const first = bounds.reduce((a, b) => (b.tasksPerSecond < a.tasksPerSecond ? b : a));
  return { hosts, members, tasksPerSecond: first.tasksPerSecond, binding: first.resource, bounds };
}

/** CPU µs per task of everything that runs when farm, submitter and ensemble share one machine. */
export function oneMachineUs(c: TaskCosts): number {
  return c.farmUs + c.submitterUs + c.zkLeaderUs + (c.members - 1) * c.zkFollowerUs;
}

/** Tasks/s when everything shares `cores` (this machine): its cores ÷ all the CPU a task costs. */
export function predictOneMachine(c: TaskCosts, cores: number): number {
  return (cores * 1e6) / oneMachineUs(c);
}

/**
 * The costs of one pass of `hosts` runtime processes. The leading master's share comes from a pass with
 * two hosts or more: its host's CPU less what the tasks its workers ran cost on the other hosts.
 */
export function costsOf(pass: MultiHostPass, tasks: number, leaderHost: number): TaskCosts {
  const us = (ms: number) => (ms * 1000) / tasks;
  const leader = pass.members.filter((m) => m.leader);
  const followers = pass.members.filter((m) => !m.leader);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  let leaderThreadUs = Number.NaN;
  const others = pass.hostsCpuMs.map((_, i) => i).filter((i) => i !== leaderHost);
  const otherTasks = sum(others.map((i) => pass.tasksByHost[i] ?? 0));
  if (leaderHost >= 0 && others.length > 0 && otherTasks > 0) {
    const perTaskRun = sum(others.map((i) => pass.hostsCpuMs[i]!)) / otherTasks;
    const own = pass.hostsCpuMs[leaderHost]! - perTaskRun * (pass.tasksByHost[leaderHost] ?? 0);
    leaderThreadUs = Math.max(0, us(own));
  }
  return {
    farmUs: us(sum(pass.hostsCpuMs)),
    leaderThreadUs,
    submitterUs: us(pass.measurerCpuMs),
    zkLeaderUs: us(mean(leader.map((m) => m.cpuMs))),
    zkFollowerUs: us(mean(followers.map((m) => m.cpuMs))),
    members: pass.members.length,
    bytesInPerTask: sum(pass.members.map((m) => m.bytesReceived)) / tasks,
    bytesOutPerTask: sum(pass.members.map((m) => m.bytesSent)) / tasks,
  };
}

/** The counts of one pass, per task, that the model does not need but the report shows. */
export function countsOf(pass: MultiHostPass, tasks: number, cores: number) {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const received = sum(pass.members.map((m) => m.packetsReceived));
  const sent = sum(pass.members.map((m) => m.packetsSent));
  const cpu = sum(pass.hostsCpuMs) + pass.measurerCpuMs + sum(pass.members.map((m) => m.cpuMs));
  return {
    /** Requests of the farm and the submitter: every client packet but the harness's own session's. */
    requestsPerTask: (received - pass.adminRequests) / tasks,
    /** Each request has one response; what the members sent beyond that is watch notifications. */
    notificationsPerTask: (sent - received) / tasks,
    txnsPerTask: pass.txns / tasks,
    dataBytesPerTask: pass.dataBytes / tasks,
    /** The measured processes' CPU over the window ÷ what the machine's cores could give in it. */
    busyShare: cpu / (cores * pass.windowMs),
  };
}
