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
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { statusPath } from '../src/farm/protocol.js';
import { Submitter } from '../src/farm/submitter.js';
import { discoverConnect } from '../src/host/discovery.js';

const { values } = parseArgs({
  options: {
    zk: { type: 'string' },
    rate: { type: 'string', default: '800' },
    seconds: { type: 'string', default: '8' },
  },
});
const RATE = Number(values.rate);
const TOTAL = Math.round(RATE * Number(values.seconds));
const found = discoverConnect(values.zk);
const connect = found.connect;

interface Row {
  sent: number;
  started: number;
  recorded: number;
  worker: string;
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]!;

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
      rows.push({ sent: s.sent, started: status.startedAt, recorded: r.stat.ctime, worker: status.worker });
    });
  }
  return rows;
}

const sub = await Submitter.open({
  connect,
  connectTimeout: 10_000,
  ...(found.tls ? { tls: found.tls } : {}),
});
try {
  const sent = await submitPaced(sub);
  await sleep(2000); // the last results
  const rows = await timelines(sub, sent);
  const started = rows.map((r) => r.started - r.sent);
  const recorded = rows.map((r) => r.recorded - r.sent);
  console.log(
    `${rows.length} of ${sent.length} tasks recorded at ${RATE}/s; sent→started p50 ${pct(started, 0.5)} ` +
      `p99 ${pct(started, 0.99)} ms; sent→recorded p50 ${pct(recorded, 0.5)} p99 ${pct(recorded, 0.99)} ms`,
  );
  const limit = pct(started, 0.99);
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
} finally {
  await sub.close();
}
process.exit(0);
