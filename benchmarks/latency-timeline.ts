/**
 * Where a farm's latency tail lies in time: paced submits to a running farm, then each task's
 * timeline from its status, and the slowest tasks grouped by 100 ms window and by worker. Tasks slow
 * together in a few windows, on every worker, point at a pause of the whole farm (ZooKeeper, the
 * leader, the machine); tasks slow one by one point at queueing. benchmarks/README.md quotes its output.
 *
 *   npx runtime --masters 2 --workers 8          # in one terminal (or --zk for another farm)
 *   node --import tsx benchmarks/latency-timeline.ts [--zk 127.0.0.1:2181] [--rate 800] [--seconds 8]
 *
 * Task i is due at t0 + i/rate; what is due goes out in one submitMany, one call at a time. Sent = the
 * clock just before the call; started = the status's startedAt; recorded = the status znode's ctime.
 *
 * With --hops, an observer session of its own holds persistent recursive watches on /tasks and /assign
 * and notes when it hears of each task's znode there: queued (its create in /tasks, the submit's
 * commit) and assigned (its create in /assign/<worker>, the leader's move). The time between two hops
 * is then split: sent→queued, queued→assigned (the leader: notice, list, read, plan, move),
 * assigned→started (the worker: notice, read, queue), started→recorded (run, status write). The
 * observer's times are when it heard, a little after each commit, and its watches add two
 * notifications per task to ZooKeeper's work: the figures are for locating the wait, not for the
 * headline.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { PATHS, statusPath } from '../src/farm/protocol.js';
import { Submitter } from '../src/farm/submitter.js';
import { discoverConnect } from '../src/host/discovery.js';
import { connect as connectZk, type Supervisor } from '../src/zk/index.js';
import { EVENT } from '../src/zk/watch-manager.js';
import { percentiles } from './harness/stats.js';

const { values } = parseArgs({
  options: {
    zk: { type: 'string' },
    rate: { type: 'string', default: '800' },
    seconds: { type: 'string', default: '8' },
    hops: { type: 'boolean', default: false },
    each: { type: 'boolean', default: false },
  },
});
const RATE = Number(values.rate);
const TOTAL = Math.round(RATE * Number(values.seconds));
const found = discoverConnect(values.zk);
const connect = found.connect;

interface Row {
  id: string;
  sent: number;
  started: number;
  recorded: number;
  worker: string;
}

/** When the observer first heard of each task id in /tasks (queued) and in /assign (assigned). */
interface Heard {
  queued: Map<string, number>;
  assigned: Map<string, number>;
}

/** An observer session with persistent recursive watches on /tasks and /assign (see --hops above). */
async function observe(): Promise<{ heard: Heard; sup: Supervisor }> {
  const heard: Heard = { queued: new Map(), assigned: new Map() };
  const sup = connectZk({ connect, connectTimeout: 10_000, ...(found.tls ? { tls: found.tls } : {}) });
  const client = (await sup.ready).client;
  const note = (into: Map<string, number>, depth: number) => (type: number, path: string) => {
    const parts = path.split('/');
    if (type !== EVENT.created || parts.length !== depth) return;
    const id = parts[parts.length - 1]!;
    if (!into.has(id)) into.set(id, Date.now());
  };
  await client.addWatch(PATHS.tasks, 'persistentRecursive', note(heard.queued, 3));
  await client.addWatch(PATHS.assign, 'persistentRecursive', note(heard.assigned, 4));
  return { heard, sup };
}

/** Each hop's p50 / p99, over all tasks and over `slow` (sent→started at or over its p99). */
function printHops(rows: Row[], slow: Row[], heard: Heard): void {
  const heardOf = (r: Row) => heard.queued.has(r.id) && heard.assigned.has(r.id);
  const full = rows.filter(heardOf);
  const slowHeard = slow.filter(heardOf);
  const hops: Array<[string, (r: Row) => number]> = [
    ['sent→queued', (r) => heard.queued.get(r.id)! - r.sent],
    ['queued→assigned (leader)', (r) => heard.assigned.get(r.id)! - heard.queued.get(r.id)!],
    ['assigned→started (worker)', (r) => r.started - heard.assigned.get(r.id)!],
    ['started→recorded', (r) => r.recorded - r.started],
  ];
  console.log(`hops of ${full.length} tasks heard in both (ms): p50 / p99, and the mean in the slowest 1%`);
  for (const [name, f] of hops) {
    const all = percentiles(full.map(f));
    console.log(`  ${name.padEnd(27)} ${all.p50} / ${all.p99}; slowest ${mean(slowHeard.map(f))}`);
  }
  if (values.each) {
    console.log('  each of the slowest, in the order above:');
    for (const r of slowHeard)
      console.log(
        `    ${r.id} ${r.worker} sent ${new Date(r.sent).toISOString().slice(11)}: ${hops.map(([, f]) => f(r)).join(' ')}`,
      );
  }
}

async function submitPaced(sub: Submitter): Promise<{ id: string; sent: number }[]> {
  const sent: { id: string; sent: number }[] = [];
  const t0 = Date.now();
  let i = 0;
  while (i < TOTAL) {
    const due = Math.min(TOTAL, Math.floor(((Date.now() - t0) * RATE) / 1000));
    if (due <= i) {
      await sleep(1);
      continue;
    }
    const at = Date.now();
    const ids = await sub.submitMany(Array.from({ length: due - i }, () => ({ handler: 'noop' })));
    for (const id of ids) sent.push({ id, sent: at });
    i = due;
  }
  return sent;
}

async function timelines(sub: Submitter, sent: { id: string; sent: number }[]): Promise<Row[]> {
  const client = sub.supervisor.session!.client;
  const rows: Row[] = [];
  for (let k = 0; k < sent.length; k += 500) {
    const part = sent.slice(k, k + 500);
    const read = await client.getDataMany(part.map((s) => statusPath(s.id)));
    read.forEach((r, j) => {
      if (r instanceof Error) return;
      const status = JSON.parse(r.data.toString('utf8')) as { startedAt: number; worker: string };
      const s = part[j]!;
      rows.push({
        id: s.id,
        sent: s.sent,
        started: status.startedAt,
        recorded: r.stat.ctime,
        worker: status.worker,
      });
    });
  }
  return rows;
}

const sub = await Submitter.open({
  connect,
  connectTimeout: 10_000,
  ...(found.tls ? { tls: found.tls } : {}),
});
const observer = values.hops ? await observe() : undefined;
try {
  const sent = await submitPaced(sub);
  await sleep(2000); // the last results
  const rows = await timelines(sub, sent);
  const started = percentiles(rows.map((r) => r.started - r.sent));
  const recorded = percentiles(rows.map((r) => r.recorded - r.sent));
  console.log(
    `${rows.length} of ${sent.length} tasks recorded at ${RATE}/s; sent→started p50 ${started.p50} ` +
      `p99 ${started.p99} ms; sent→recorded p50 ${recorded.p50} p99 ${recorded.p99} ms; ` +
      // Clocks tick in whole ms: over many tasks the mean still tells sub-ms changes apart.
      `means ${mean(rows.map((r) => r.started - r.sent))} / ${mean(rows.map((r) => r.recorded - r.sent))} ms`,
  );
  const limit = started.p99;
  const slow = rows.filter((r) => r.started - r.sent >= limit);
  const t0 = sent[0]!.sent;
  const windows = new Map<number, number>();
  const workers = new Map<string, number>();
  for (const r of slow) {
    const w = Math.floor((r.sent - t0) / 100);
    windows.set(w, (windows.get(w) ?? 0) + 1);
    workers.set(r.worker, (workers.get(r.worker) ?? 0) + 1);
  }
  const list = (m: Map<string | number, number>) => [...m].map(([k, n]) => `${k}:${n}`).join(' ');
  console.log(`${slow.length} tasks at or over the p99 (${limit} ms) by 100 ms window since the first send:`);
  console.log(`  ${list(new Map([...windows].sort((a, b) => a[0] - b[0])))}`);
  console.log(`  by worker: ${list(workers)}`);
  if (observer) printHops(rows, slow, observer.heard);
} finally {
  await observer?.sup.stop();
  await sub.close();
}
process.exit(0);

function mean(xs: number[]): string {
  return (xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)).toFixed(2);
}
