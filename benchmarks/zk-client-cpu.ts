/**
 * Client CPU per ZooKeeper operation: zkfarm's own client against node-zookeeper-client, on one server,
 * in one run. docs/zookeeper-client.md quotes its output.
 *
 *   node --import tsx benchmarks/zk-client-cpu.ts [--rounds 3] [--ops 20000]
 *
 * One standalone ZooKeeper (the tests' launcher, loopback, fsync on) serves every measurement. Each
 * measurement runs in a fresh Node process (this file with --child), so neither client inherits the
 * other's heap or JIT state; the two clients alternate, `rounds` times, and the median is reported. In
 * the child, after a warm-up of the same work, the process's CPU time (user + system, process.cpuUsage)
 * is read around each workload:
 *
 * - getData: `ops` reads of one node, 256 in flight;
 * - create:  `ops` creates, 256 in flight;
 * - multi:   `ops` creates in multis of 100, 4 multis in flight (CPU per create);
 * - watch:   `ops / 10` one-shot data watches fired by setData from the same client (CPU per watch:
 *            arming read, change, notification).
 *
 * Only the client's process is measured; the server's CPU is the same for both and is not counted.
 */
import { fork } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createClient, type NzcClient, type NzcException } from 'node-zookeeper-client';
import { openClient } from '../src/zk/open-client.js';
import { startZkServer } from '../src/zk/server.js';

type Workload = 'getData' | 'create' | 'multi' | 'watch';
const WORKLOADS: Workload[] = ['getData', 'create', 'multi', 'watch'];
type Client = 'zkfarm' | 'node-zookeeper-client';

/** The operations each client does, as promises (node-zookeeper-client's callbacks wrapped). */
interface Ops {
  getData(path: string): Promise<unknown>;
  create(path: string): Promise<unknown>;
  multiCreate(paths: string[]): Promise<unknown>;
  /** Arm a one-shot data watch; resolves once armed, with the promise of its firing. */
  watchOnce(path: string): Promise<{ fired: Promise<void> }>;
  setData(path: string, data: string): Promise<unknown>;
  close(): void;
}

async function zkfarmOps(connect: string): Promise<Ops> {
  const c = await openClient(connect, { sessionTimeout: 30_000, requestTimeout: 60_000 });
  return {
    getData: (p) => c.getData(p),
    create: (p) => c.create(p),
    multiCreate: (paths) => {
      const tx = c.transaction();
      for (const p of paths) tx.create(p);
      return tx.commit();
    },
    watchOnce: async (p) => {
      let fired!: () => void;
      const done = new Promise<void>((r) => {
        fired = r;
      });
      await c.getData(p, () => fired());
      return { fired: done };
    },
    setData: (p, d) => c.setData(p, d),
    close: () => c.connection.close(),
  };
}

function cb<T>(fn: (done: (err: NzcException | null, v: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
}

async function nzcOps(connect: string): Promise<Ops> {
  const c: NzcClient = createClient(connect, { sessionTimeout: 30_000 });
  await new Promise<void>((resolve) => {
    c.once('connected', () => resolve());
    c.connect();
  });
  return {
    getData: (p) => cb((done) => c.getData(p, undefined, (e, d) => done(e, d))),
    create: (p) => cb((done) => c.create(p, null, 0, done)),
    multiCreate: (paths) =>
      cb((done) => {
        const tx = c.transaction();
        for (const p of paths) tx.create(p);
        tx.commit(done);
      }),
    watchOnce: async (p) => {
      let fired!: () => void;
      const done = new Promise<void>((r) => {
        fired = r;
      });
      await cb((d) =>
        c.getData(
          p,
          () => fired(),
          (e, data) => d(e, data),
        ),
      );
      return { fired: done };
    },
    setData: (p, data) => cb((done) => c.setData(p, Buffer.from(data), -1, done)),
    close: () => c.close(),
  };
}

/** Run `n` calls of `op(i)` with at most `window` in flight. */
async function pipelined(n: number, window: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < n) await op(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, lane));
}

async function workload(ops: Ops, w: Workload, n: number, tag: string): Promise<number> {
  switch (w) {
    case 'getData':
      await pipelined(n, 256, () => ops.getData('/bench'));
      return n;
    case 'create':
      await pipelined(n, 256, (i) => ops.create(`/bench/c-${tag}-${i}`));
      return n;
    case 'multi': {
      const batches = Math.ceil(n / 100);
      await pipelined(batches, 4, (b) =>
        ops.multiCreate(Array.from({ length: 100 }, (_, i) => `/bench/m-${tag}-${b}-${i}`)),
      );
      return batches * 100;
    }
    case 'watch': {
      const k = Math.ceil(n / 10);
      for (let i = 0; i < k; i++) {
        const { fired } = await ops.watchOnce('/bench');
        await ops.setData('/bench', String(i));
        await fired;
      }
      return k;
    }
  }
}

/** In a fresh process: warm up, then µs of this process's CPU per operation of each workload. */
async function child(client: Client, connect: string, n: number): Promise<Record<Workload, number>> {
  const ops = client === 'zkfarm' ? await zkfarmOps(connect) : await nzcOps(connect);
  const out = {} as Record<Workload, number>;
  for (const w of WORKLOADS) await workload(ops, w, Math.ceil(n / 4), 'warm');
  for (const w of WORKLOADS) {
    const before = process.cpuUsage();
    const count = await workload(ops, w, n, 'run');
    const used = process.cpuUsage(before);
    out[w] = (used.user + used.system) / count;
  }
  ops.close();
  return out;
}

function runChild(client: Client, connect: string, n: number): Promise<Record<Workload, number>> {
  return new Promise((resolve, reject) => {
    const p = fork(import.meta.filename, ['--child', client, '--connect', connect, '--ops', String(n)], {
      execArgv: ['--import', 'tsx'],
    });
    p.once('message', (m) => resolve(m as Record<Workload, number>));
    p.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${client} measurement exited with ${code}`));
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      connect: { type: 'string' },
      ops: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const n = Number(values.ops);
  if (values.child) {
    const result = await child(values.child as Client, values.connect!, n);
    process.send!(result, () => process.exit(0));
    return;
  }
  const server = await startZkServer();
  const results: Record<Client, Array<Record<Workload, number>>> = {
    zkfarm: [],
    'node-zookeeper-client': [],
  };
  try {
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const client of ['zkfarm', 'node-zookeeper-client'] as Client[]) {
        const root = `/cpu-${client.replace(/\W/g, '')}-${r}`;
        const admin = await openClient(server.connectString);
        await admin.create(root);
        await admin.create(`${root}/bench`, 'x');
        admin.connection.close();
        results[client].push(await runChild(client, `${server.connectString}${root}`, n));
        process.stderr.write(`round ${r + 1}: ${client} done\n`);
      }
    }
  } finally {
    await server.stop();
  }
  console.log(
    `client CPU per operation (µs, median of ${values.rounds} fresh processes each, ${n} ops per workload)\n`,
  );
  console.log('| workload | zkfarm | node-zookeeper-client | ratio |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const w of WORKLOADS) {
    const ours = median(results.zkfarm.map((x) => x[w]));
    const theirs = median(results['node-zookeeper-client'].map((x) => x[w]));
    console.log(`| ${w} | ${ours.toFixed(1)} | ${theirs.toFixed(1)} | ${(theirs / ours).toFixed(1)}× |`);
  }
}

await main();
