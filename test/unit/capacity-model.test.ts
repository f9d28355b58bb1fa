/**
 * The capacity model (benchmarks/harness/capacity-model.ts): its arithmetic on made-up costs, and the
 * costs it derives from one pass of the multi-host scenario.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  costsOf,
  countsOf,
  leaderBytesOutAt,
  type Machines,
  predict,
  predictOneMachine,
  type TaskCosts,
  zkLeaderUsAt,
} from '../../benchmarks/harness/capacity-model.js';
import type { MemberPass, MultiHostPass } from '../../benchmarks/harness/types.js';

const COSTS: TaskCosts = {
  farmUs: 60,
  leaderThreadUs: 10,
  submitterUs: 5,
  zkLeaderUs: 80,
  zkFollowerUs: 50,
  members: 3,
  bytesInPerTask: 900,
  bytesOutPerTask: 500,
};
const MACHINES: Machines = { hostCores: 2, memberCores: 2, memberBytesPerSecond: 125_000_000 };

test('the leader’s CPU per task grows by its per-follower share; a follower’s does not', () => {
  assert.equal(zkLeaderUsAt(COSTS, 3), 80);
  // (80 − 50) ÷ 2 followers = 15 µs per follower: 50 + 15 × 4.
  assert.equal(zkLeaderUsAt(COSTS, 5), 110);
  // A leader measured cheaper than its followers (sessions happened to sit elsewhere) does not shrink.
  assert.equal(zkLeaderUsAt({ ...COSTS, zkLeaderUs: 40 }, 5), 50);
});

test('the leader sends each write to every follower, and its share of responses', () => {
  assert.equal(leaderBytesOutAt(COSTS, 3), 900 * 2 + 500 / 3);
  assert.equal(leaderBytesOutAt(COSTS, 5), 900 * 4 + 100);
});

test('the farm scales with hosts until the ensemble’s leader binds', () => {
  const one = predict(COSTS, MACHINES, 1, 3);
  // 2 cores ÷ 60 µs = 33,333 tasks/s of farm; the leader's 2 cores ÷ 80 µs = 25,000.
  assert.equal(one.binding, 'ZooKeeper leader’s CPU');
  assert.equal(one.tasksPerSecond, 25_000);
  const farm = one.bounds.find((b) => b.resource === 'farm hosts’ CPU')!;
  assert.ok(Math.abs(farm.tasksPerSecond - 33_333.33) < 0.01);
  // Cheap ZooKeeper work: the farm binds on one host, the leader on more.
  const cheap = { ...COSTS, zkLeaderUs: 15, zkFollowerUs: 15, bytesInPerTask: 100 };
  assert.equal(predict(cheap, MACHINES, 1, 3).binding, 'farm hosts’ CPU');
  assert.equal(predict(cheap, MACHINES, 4, 3).binding, 'leading master thread');
  assert.equal(predict(cheap, MACHINES, 4, 3).tasksPerSecond, 100_000);
  // Five members: the leader pays for two more followers.
  const five = predict(COSTS, MACHINES, 8, 5);
  assert.equal(five.binding, 'ZooKeeper leader’s CPU');
  assert.ok(Math.abs(five.tasksPerSecond - 2e6 / 110) < 1e-6);
});

test('an unknown leading-master cost bounds nothing, and large writes make the network bind', () => {
  const unknown = predict(
    { ...COSTS, leaderThreadUs: Number.NaN, zkLeaderUs: 1, zkFollowerUs: 1 },
    MACHINES,
    100,
    3,
  );
  assert.notEqual(unknown.binding, 'leading master thread');
  const big = {
    ...COSTS,
    zkLeaderUs: 1,
    zkFollowerUs: 1,
    farmUs: 1,
    leaderThreadUs: 1,
    bytesInPerTask: 100_000,
  };
  const p = predict(big, MACHINES, 4, 5);
  assert.equal(p.binding, 'ZooKeeper leader’s network');
  assert.ok(Math.abs(p.tasksPerSecond - 125_000_000 / (100_000 * 4 + 100)) < 1e-6);
});

test('on one machine every process shares its cores', () => {
  // 60 + 5 + 80 + 2 × 50 = 245 µs per task on 2 cores.
  assert.ok(Math.abs(predictOneMachine(COSTS, 2) - 2e6 / 245) < 1e-6);
});

function member(id: number, leader: boolean, cpuMs: number, received: number, sent: number): MemberPass {
  return {
    id,
    leader,
    cpuMs,
    packetsReceived: received,
    packetsSent: sent,
    bytesReceived: received * 100,
    bytesSent: sent * 10,
    connections: 4,
  };
}

const PASS: MultiHostPass = {
  elapsedMs: 900,
  tasksPerSecond: 1111,
  windowMs: 1000,
  submitMs: 100,
  hostsCpuMs: [300, 200],
  measurerCpuMs: 50,
  members: [member(1, false, 100, 40, 200), member(2, true, 300, 50, 300), member(3, false, 200, 10, 100)],
  adminRequests: 20,
  submitterRequests: 10,
  txns: 50,
  dataBytes: 230_000,
  tasksByHost: [400, 600],
};

test('the costs of a pass: per task, the leader apart, the leading master from the hosts’ split', () => {
  const c = costsOf(PASS, 1000, 0);
  assert.equal(c.farmUs, 500);
  // The other host: 200 ms for 600 tasks; the leader's host ran 400 at that rate (133.3 ms) of its 300.
  assert.ok(Math.abs(c.leaderThreadUs - (300 - (200 / 600) * 400)) < 1e-9);
  assert.equal(c.submitterUs, 50);
  assert.equal(c.zkLeaderUs, 300);
  assert.equal(c.zkFollowerUs, 150);
  assert.equal(c.members, 3);
  assert.equal(c.bytesInPerTask, 10);
  assert.equal(c.bytesOutPerTask, 6);
  // One host (or no leader found): the leading master's share is unknown.
  assert.ok(
    Number.isNaN(costsOf({ ...PASS, hostsCpuMs: [500], tasksByHost: [1000] }, 1000, 0).leaderThreadUs),
  );
  assert.ok(Number.isNaN(costsOf(PASS, 1000, -1).leaderThreadUs));
});

test('the counts of a pass: requests without the harness’s, notifications beyond the responses', () => {
  const n = countsOf(PASS, 1000, 2);
  assert.equal(n.requestsPerTask, (100 - 20) / 1000);
  assert.equal(n.notificationsPerTask, (600 - 100) / 1000);
  assert.equal(n.txnsPerTask, 0.05);
  assert.equal(n.dataBytesPerTask, 230);
  // 500 + 50 + 600 ms of CPU in a 1 s window of 2 cores.
  assert.equal(n.busyShare, 1150 / 2000);
});
