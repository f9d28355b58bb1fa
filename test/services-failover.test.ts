/**
 * A service of 3 instances of a small HTTP server across two `runtime` host processes: all healthy;
 * the host that runs two of them is SIGKILLed, and the replacements are healthy on the other host.
 * The instances' live copies are counted from /proc throughout: never more than 3 (an instance dies
 * with the host that supervises it, and a replacement waits for its fence). Stopping the surviving
 * host leaves nothing behind.
 *
 * This is the benchmark's `services` scenario (benchmarks/harness/scenarios/services.ts), run once
 * against the test's own ZooKeeper; its figures are printed for benchmarks/README.md.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { measureServices, servicesProblems } from '../benchmarks/harness/scenarios/services.js';
import { useCleanups } from './helpers/cleanups.js';
import { useZooKeeper } from './helpers/zk.js';

const zk = useZooKeeper({ tickTime: 500 });
const cleanups = useCleanups();
const SESSION_TIMEOUT = 4000;

test('3 instances across two hosts: the host with two is SIGKILLed, replacements are healthy on the other, never more than 3 run', async () => {
  const root = await zk.chroot('services-failover');
  const abort = new AbortController();
  cleanups.push(() => abort.abort());
  const r = await measureServices(
    {
      kind: 'services',
      zk: { connect: root, pid: 0 },
      sessionTimeout: SESSION_TIMEOUT,
      stopGraceMs: 1000,
      killLeader: false,
      timeoutMs: 120_000,
    },
    { signal: abort.signal, progress() {} },
  );
  console.log(
    `services failover: SIGKILL to 3 healthy endpoints in ${r.healthyAgainMs} ms, 3 answering in ${r.answeringAgainMs} ms, ` +
      `the killed host's copies gone in ${r.copiesGoneMs} ms (session timeout ${SESSION_TIMEOUT} ms, tick 500 ms; leader killed: ${r.leaderKilled})`,
  );
  assert.equal(r.onVictim, 2, 'the killed host ran two instances');
  assert.equal(r.leaderKilled, false, 'the other host led');
  for (const t of [r.healthyAgainMs, r.answeringAgainMs, r.copiesGoneMs]) assert.ok(Number.isFinite(t));
  assert.deepEqual(servicesProblems(r), [], 'never more than 3 copies, nothing left after the stop');
  assert.ok(r.mostCopies === 3 && r.mostAnswering === 3, `3 ran and answered: ${JSON.stringify(r)}`);
});
