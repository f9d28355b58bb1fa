/**
 * What ZooKeeper itself spends: its CPU per write inside a multi and per watch notification, and one
 * round trip after an idle gap. benchmarks/README.md ("The embedded ZooKeeper's per-request path")
 * quotes its output.
 *
 *   node --import tsx benchmarks/zk-server-cpu.ts [--ops 20000] [--rounds 3] [--gap 10] [--samples 200]
 *
 * One standalone ZooKeeper (the tests' launcher: loopback, fsync on, the JVM options every server zkfarm
 * starts gets) serves the CPU part:
 *
 * - three directories, each with `k` = 0, 1 or 2 other sessions holding a persistent recursive watch on
 *   it (as a farm's worker and leader each hold one on /assign/<worker>);
 * - a pass: `ops` creates, then `ops` deletes, of its children, in multis of 50, four in flight;
 * - two warm-up passes per directory, then `rounds` rounds alternating the directories' order; the
 *   server's CPU (user + system, /proc/<pid>/stat) around each pass.
 *
 * The difference between k = 1 and k = 0 is what one watcher's notifications cost the server.
 *
 * The round-trip part, on a new server per variant (`--variants base,nosync`, alternated twice): after a
 * warm-up, `samples` times: sleep `gap` ms, time one `exists`; sleep, time one `create`. `nosync` runs the
 * server with -Dzookeeper.forceSync=no (no fsync: shown for what an fsync costs, not used by zkfarm).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { ZkClient } from '../src/zk/client.js';
import { openClient } from '../src/zk/open-client.js';
import { startZkServer } from '../src/zk/server.js';
import { SERVER_GC_OPTS } from '../src/zk/server-config.js';

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    gap: { type: 'string', default: '10' },
    samples: { type: 'string', default: '200' },
    variants: { type: 'string', default: 'base,nosync' },
  },
});
const OPS = Number(values.ops);
const ROUNDS = Number(values.rounds);
const GAP = Number(values.gap);
const SAMPLES = Number(values.samples);
const BATCH = 50;
const JAVA_OPTS = ['-Xmx256m', ...SERVER_GC_OPTS];
const VARIANTS: Record<string, string[]> = {
  base: JAVA_OPTS,
  nosync: [...JAVA_OPTS, '-Dzookeeper.forceSync=no'],
};
const STATUS = Buffer.from('{"state":"succeeded","worker":"w1","queue":"default","attempts":1}');

/** A process's CPU time so far (ms), from /proc. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]!;

/** `ops` creates then `ops` deletes under `dir`, in multis of BATCH, four in flight. */
async function pass(client: ZkClient, dir: string): Promise<void> {
  for (const create of [true, false]) {
    const inflight: Promise<unknown>[] = [];
    for (let i = 0; i < OPS; i += BATCH) {
      const tx = client.transaction();
      for (let j = i; j < i + BATCH; j++) {
        if (create) tx.create(`${dir}/t${j}`, STATUS);
        else tx.remove(`${dir}/t${j}`);
      }
      inflight.push(tx.commit());
      if (inflight.length >= 4) await inflight.shift();
    }
    await Promise.all(inflight);
  }
}

async function serverCpu(): Promise<void> {
  const server = await startZkServer({ javaOpts: JAVA_OPTS });
  const clients: ZkClient[] = [];
  try {
    for (let i = 0; i < 3; i++)
      clients.push(await openClient(server.connectString, { sessionTimeout: 10_000 }));
    const [writer, w1, w2] = clients as [ZkClient, ZkClient, ZkClient];
    const heard = [0, 0, 0];
    for (const k of [0, 1, 2]) await writer.create(`/d${k}`, Buffer.alloc(0));
    await w1.addWatch('/d1', 'persistentRecursive', () => heard[1]!++);
    await w1.addWatch('/d2', 'persistentRecursive', () => heard[2]!++);
    await w2.addWatch('/d2', 'persistentRecursive', () => heard[2]!++);
    const pid = server.pid!;
    const measure = async (k: number) => {
      const before = cpuMs(pid);
      await pass(writer, `/d${k}`);
      await sleep(300); // the notifications still on their way
      return cpuMs(pid) - before;
    };
    for (const k of [0, 1, 2, 0, 1, 2]) await measure(k);
    const cpu: number[][] = [[], [], []];
    for (let r = 0; r < ROUNDS; r++)
      for (const k of r % 2 ? [2, 1, 0] : [0, 1, 2]) cpu[k]!.push(await measure(k));
    console.log(`server CPU per pass of ${2 * OPS} writes in multis of ${BATCH} (ms, per round):`);
    for (const k of [0, 1, 2]) {
      const perOp = (median(cpu[k]!) * 1000) / (2 * OPS);
      console.log(`  ${k} watcher(s): ${cpu[k]!.join(' / ')}  (median ${perOp.toFixed(1)} µs per write)`);
    }
    const perNote = ((median(cpu[1]!) - median(cpu[0]!)) * 1000) / (2 * OPS);
    console.log(`  one watcher's notification: ~${perNote.toFixed(1)} µs of server CPU each`);
    console.log(`  notifications heard: ${heard[1]} on /d1, ${heard[2]} on /d2`);
  } finally {
    for (const c of clients) c.connection.close();
    await server.stop();
  }
}

async function roundTrips(variant: string): Promise<string> {
  const server = await startZkServer({ javaOpts: VARIANTS[variant]! });
  const client = await openClient(server.connectString, { sessionTimeout: 10_000 });
  try {
    for (let i = 0; i < 3000; i++) await client.exists(`/w${i % 10}`);
    const exists: number[] = [];
    const create: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      await sleep(GAP);
      let t0 = performance.now();
      await client.exists('/zookeeper');
      exists.push(performance.now() - t0);
      await sleep(GAP);
      t0 = performance.now();
      await client.create(`/n${i}`, STATUS);
      create.push(performance.now() - t0);
    }
    const f = (xs: number[]) => `p50 ${pct(xs, 0.5).toFixed(2)} p90 ${pct(xs, 0.9).toFixed(2)}`;
    return `  ${variant}: exists ${f(exists)} ms; create ${f(create)} ms`;
  } finally {
    client.connection.close();
    await server.stop();
  }
}

await serverCpu();
console.log(`one request after ${GAP} ms idle, ${SAMPLES} samples each:`);
const variants = values.variants.split(',');
for (const v of [...variants, ...[...variants].reverse()]) console.log(await roundTrips(v));
process.exit(0);
