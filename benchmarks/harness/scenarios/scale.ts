/**
 * Scenario `scale` (run only when named: `runtime bench --scenario scale`): a million tasks queued and
 * drained by the default farm, on a ZooKeeper sized as the embedded one is (src/host/embedded-heap.ts).
 *
 * One measurement process starts its own ZooKeeper (the embedded server's heap plan for `tasks` kept
 * results, and its zoo.cfg), a host of `runtime --masters 2 --workers 8`'s shape, and pauses the
 * `default` queue. Then, at once:
 *   - half the tasks through `runtime submit --file` (a child process: its peak RSS from /usr/bin/time;
 *     the queue bound raised past the run's size, since the paused queue holds every task);
 *   - the other half by raw creates of the public contract (`create -s /tasks/task-`, one request per
 *     task) from a client of their own, at most `window` in flight.
 * The leader shelves what the paused queue cannot hand out into the backlog. Once both are done and the
 * inbox is shallow, the queue is resumed and the farm drains it. Reported:
 *   submit rate       tasks ÷ (first submit → both submitters done), and each half's own rate
 *   drain rate        tasks ÷ (resume → the last result counted)
 *   listings          the largest child listing of any node the farm writes (/status/<b>, the backlog's
 *                     buckets, /assign/<w>), sampled every 2 s; /tasks' peak apart (its writers are the
 *                     submitters), sampled every 250 ms
 *   memory            the measurement process's RSS (every role thread), the leading master thread's heap,
 *                     ZooKeeper's RSS, and its live heap after a full GC (jcmd) with everything queued and
 *                     with every result kept; its data directory on disk
 *   check             every task submitted has exactly one result; nothing left queued or assigned.
 */
import { execFile, spawn } from 'node:child_process';
import {
  createWriteStream,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { SHELVE_HELD_AFTER } from '../../../src/farm/backlog.js';
import { backlogLanePath, type MasterInfo, PATHS, statusBucketPath } from '../../../src/farm/protocol.js';
import { QueueAdmin } from '../../../src/farm/queue-admin.js';
import { allResultIds, countResults, statusChildren } from '../../../src/farm/status-store.js';
import {
  EMBEDDED_SERVER_CONFIG,
  embeddedJavaOpts,
  planEmbeddedHeap,
} from '../../../src/host/embedded-heap.js';
import { fourLetterWord } from '../../../src/zk/four-letter.js';
import { CreateMode, openClient, startZkServer, type ZkClient } from '../../../src/zk/index.js';
import type { BenchContext } from '../context.js';
import { type BenchIo, type Farm, startFarm, throwIfAborted, waitUntil } from '../farm-fixture.js';
import { rssMb } from '../proc.js';
import { runtimeArgs } from '../processes.js';
import { num } from '../stats.js';
import type { ScaleJob, ScaleResult, ScenarioReport } from '../types.js';

const run = promisify(execFile);
const DATA = '{"handler":"noop"}';

export async function runScale(ctx: BenchContext): Promise<Omit<ScenarioReport, 'startedAt' | 'durationMs'>> {
  const p = ctx.opts.preset.scale;
  const job: ScaleJob = {
    kind: 'scale',
    tasks: p.tasks,
    window: p.window,
    shape: ctx.defaultShape,
    timeoutMs: 60_000 + p.tasks * 10,
  };
  const r = await ctx.measure<ScaleResult>(
    job,
    `scale ${num(p.tasks)} tasks`,
    job.timeoutMs + 120_000,
    (x) => `${num(x.submitPerSec)} submitted/s, ${num(x.drainPerSec)} drained/s`,
  );
  return {
    scenario: 'scale',
    title: `Scale: ${num(p.tasks)} tasks queued (half submit --file, half raw creates) on a paused queue, then drained`,
    params: { ...p, shape: ctx.defaultShape, zkHeapMb: r.zk.heapMaxMb },
    summary: { ...r },
    runs: [r],
    tables: scaleTables(r),
    invariants: r.check,
    notes: [
      'ZooKeeper runs with the embedded server heap plan and zoo.cfg (src/host/embedded-heap.ts), for the run’s kept results.',
      'Listings are child counts; bytes are what a getChildren answer carries (4 + name length per child).',
    ],
  };
}

function scaleTables(r: ScaleResult): ScenarioReport['tables'] {
  const mb = (x: number) => `${num(x)} MB`;
  return [
    {
      title: 'Rates',
      columns: ['what', 'tasks', 'seconds', 'tasks/s'],
      rows: [
        ['submit (both halves at once)', r.tasks, (r.submitMs / 1000).toFixed(1), r.submitPerSec],
        ['  runtime submit --file', r.fileTasks, (r.fileMs / 1000).toFixed(1), r.filePerSec],
        [`  raw creates (window ${r.window})`, r.rawTasks, (r.rawMs / 1000).toFixed(1), r.rawPerSec],
        ['inbox shelved (after submit)', r.tasks, (r.shelveMs / 1000).toFixed(1), '—'],
        ['drain (resume → last result)', r.tasks, (r.drainMs / 1000).toFixed(1), r.drainPerSec],
      ],
    },
    {
      title: 'Listings and memory',
      columns: ['figure', 'value'],
      rows: [
        [
          'largest listing of a node the farm writes',
          `${num(r.largest.children)} children (${num(r.largest.bytes)} bytes), ${r.largest.path}`,
        ],
        [
          '/tasks at its deepest (written by the submitters)',
          `${num(r.inboxPeak)} children (${num(r.inboxPeak * 19)} bytes)`,
        ],
        ['measurement process RSS, peak (2 masters + 8 workers + the raw client)', mb(r.farmRssMbPeak)],
        ['leading master thread heap, peak', mb(r.leaderHeapMbPeak)],
        ['runtime submit --file RSS, peak', mb(r.submitRssMb)],
        ['ZooKeeper RSS, peak', mb(r.zk.rssMbPeak)],
        [
          'ZooKeeper live heap after a full GC, all queued',
          `${mb(r.zk.liveMbQueued)} (${num(r.zk.znodesQueued)} znodes)`,
        ],
        [
          'ZooKeeper live heap after a full GC, all results kept',
          `${mb(r.zk.liveMbDone)} (${num(r.zk.znodesDone)} znodes)`,
        ],
        ['ZooKeeper heap limit (-Xmx, embedded plan)', mb(r.zk.heapMaxMb)],
        ['ZooKeeper data directory at the end', `${mb(r.zk.dataDirMb)} (${r.zk.snapshots} snapshots kept)`],
        ['every task exactly one result', r.check.ok ? 'yes' : r.check.problems.join('; ')],
      ],
    },
  ];
}

/** The measurement (in its own process: worker-scenario.ts). */
export async function measureScale(job: ScaleJob, io: BenchIo): Promise<ScaleResult> {
  const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-bench-scale-'));
  const heap = planEmbeddedHeap({ keptResults: job.tasks, queuedTasks: job.tasks });
  const server = await startZkServer({
    dataDir: join(tmp, 'zk'),
    javaOpts: embeddedJavaOpts(heap),
    extraConfig: EMBEDDED_SERVER_CONFIG,
  });
  let farm: Farm | undefined;
  const zkPid = server.pid ?? 0;
  const sampler = new Sampler(zkPid);
  try {
    const connect = `${server.connectString}/scale`;
    farm = await startFarm({ connect, pid: zkPid }, job.shape, io);
    const admin = farm.admin;
    sampler.start(admin, farm);
    await new QueueAdmin(admin).pause('default');
    const fileTasks = Math.floor(job.tasks / 2);
    const file = join(tmp, 'tasks.ndjson');
    writeFileSync(
      file,
      Array.from({ length: fileTasks }, (_, i) => `{"handler":"noop","input":${i}}\n`).join(''),
    );
    const t0 = performance.now();
    const [sub, raw] = await Promise.all([
      submitFile(connect, file, join(tmp, 'ids.txt'), job.tasks, t0),
      rawCreates(connect, job.tasks - fileTasks, job.window, io, t0),
    ]);
    const submitMs = performance.now() - t0;
    io.progress(1, 3, 'submitted');
    await waitUntil(
      async () => ((await admin.exists(PATHS.tasks))?.numChildren ?? 0) <= SHELVE_HELD_AFTER,
      job.timeoutMs,
      'the inbox shelved',
      io.signal,
      250,
    );
    const shelveMs = performance.now() - t0 - submitMs;
    const queued = await zkHeap(zkPid);
    const znodesQueued = await znodes(server.connectString);
    const t1 = performance.now();
    await new QueueAdmin(admin).resume('default');
    await waitUntil(
      async () => (await countResults(admin)) >= job.tasks,
      job.timeoutMs,
      'every result',
      io.signal,
      1000,
    );
    const drainMs = performance.now() - t1;
    io.progress(2, 3, 'drained');
    await sampler.stop();
    const done = await zkHeap(zkPid);
    const ids = [...readFileSync(join(tmp, 'ids.txt'), 'utf8').split('\n').filter(Boolean), ...raw.ids];
    const check = await checkAll(admin, ids, job.tasks);
    const dataDir = dirSize(join(tmp, 'zk'));
    return {
      tasks: job.tasks,
      window: job.window,
      fileTasks,
      rawTasks: raw.ids.length,
      submitMs,
      submitPerSec: Math.round(job.tasks / (submitMs / 1000)),
      fileMs: sub.ms,
      filePerSec: Math.round(fileTasks / (sub.ms / 1000)),
      rawMs: raw.ms,
      rawPerSec: Math.round(raw.ids.length / (raw.ms / 1000)),
      submitRssMb: sub.rssMb,
      shelveMs,
      drainMs,
      drainPerSec: Math.round(job.tasks / (drainMs / 1000)),
      inboxPeak: sampler.inboxPeak,
      largest: sampler.largest,
      farmRssMbPeak: Math.round(sampler.rssPeak),
      leaderHeapMbPeak: Math.round(sampler.leaderHeapPeak),
      zk: {
        heapMaxMb: heap.heapMb,
        rssMbPeak: Math.round(sampler.zkRssPeak),
        liveMbQueued: queued,
        liveMbDone: done,
        znodesQueued,
        znodesDone: await znodes(server.connectString),
        dataDirMb: Math.round(dataDir.bytes / 1e6),
        snapshots: dataDir.snapshots,
      },
      check,
    };
  } finally {
    await sampler.stop();
    await farm?.close();
    await server.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `runtime submit --file` in a child process; its ids to `idsFile`, its peak RSS from /usr/bin/time. */
async function submitFile(connect: string, file: string, idsFile: string, depth: number, t0: number) {
  const args = ['-f', '%M', process.execPath, ...runtimeArgs(), 'submit', '--zk', connect, '--file', file];
  const out = createWriteStream(idsFile);
  await new Promise((r) => out.once('open', r));
  const child = spawn('/usr/bin/time', [...args, '--max-queue-depth', String(depth * 2)], {
    stdio: ['ignore', out, 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const ms = performance.now() - t0;
  await new Promise((r) => out.end(r));
  if (code !== 0) throw new Error(`runtime submit --file failed (${code}): ${stderr.slice(-2000)}`);
  return { ms, rssMb: Math.round(Number(stderr.trim().split('\n').at(-1)) / 1024) };
}

/** `n` creates of the public contract, one request per task, at most `window` in flight. */
async function rawCreates(connect: string, n: number, window: number, io: BenchIo, t0: number) {
  const client = await openClient(connect);
  const ids: string[] = new Array(n);
  const data = Buffer.from(DATA);
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: window }, async () => {
        for (let i = next++; i < n; i = next++) {
          if (i % 1000 === 0) throwIfAborted(io.signal);
          const path = await client.create(`${PATHS.tasks}/task-`, data, CreateMode.PERSISTENT_SEQUENTIAL);
          ids[i] = path.slice(PATHS.tasks.length + 1);
        }
      }),
    );
    return { ids, ms: performance.now() - t0 };
  } finally {
    client.connection.close();
  }
}

/** Peaks of what the run holds, sampled while it runs. */
class Sampler {
  inboxPeak = 0;
  largest = { path: '', children: 0, bytes: 0 };
  rssPeak = 0;
  leaderHeapPeak = 0;
  zkRssPeak = 0;
  readonly #zkPid: number;
  #timers: NodeJS.Timeout[] = [];
  #busy = new Set<Promise<void>>();

  constructor(zkPid: number) {
    this.#zkPid = zkPid;
  }

  start(admin: ZkClient, farm: Farm): void {
    this.#every(250, async () => {
      this.inboxPeak = Math.max(this.inboxPeak, (await admin.exists(PATHS.tasks))?.numChildren ?? 0);
      this.rssPeak = Math.max(this.rssPeak, rssMb());
      this.zkRssPeak = Math.max(this.zkRssPeak, procRssMb(this.#zkPid));
    });
    this.#every(2000, async () => {
      await this.#listings(admin);
      const leader = (await admin.getJson<MasterInfo>(PATHS.master).catch(() => undefined))?.value.name;
      for (const s of await farm.host.allStats())
        if (s.name === leader) this.leaderHeapPeak = Math.max(this.leaderHeapPeak, s.heapUsed / 1e6);
    });
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    await Promise.all(this.#busy);
  }

  #every(ms: number, fn: () => Promise<void>): void {
    const t = setInterval(() => {
      if (this.#busy.size > 0) return;
      const p = fn()
        .catch(() => {})
        .finally(() => this.#busy.delete(p));
      this.#busy.add(p);
    }, ms);
    this.#timers.push(t);
  }

  /** Every node the farm writes children under: /status's buckets, the backlog's buckets, /assign/<w>. */
  async #listings(c: ZkClient): Promise<void> {
    const { buckets } = await statusChildren(c);
    const dirs = buckets.map(statusBucketPath);
    dirs.push(PATHS.status, PATHS.assign);
    for (const w of await c.getChildren(PATHS.assign).catch(() => [] as string[]))
      dirs.push(`${PATHS.assign}/${w}`);
    for (let p = 0; p <= 9; p++) {
      const lane = backlogLanePath('default', p);
      for (const b of await c.getChildren(lane).catch(() => [] as string[])) dirs.push(`${lane}/${b}`);
    }
    const stats = await Promise.all(dirs.map((d) => c.exists(d)));
    stats.forEach((s, i) => {
      const n = s?.numChildren ?? 0;
      // Children of these nodes are task ids (`task-` and ten digits) or bucket names.
      if (n > this.largest.children) this.largest = { path: dirs[i]!, children: n, bytes: n * 19 };
    });
  }
}

function procRssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** ZooKeeper's live heap (MB): a full GC, then the generations' used space (jcmd). */
async function zkHeap(pid: number): Promise<number> {
  try {
    await run('jcmd', [String(pid), 'GC.run']);
    const { stdout } = await run('jcmd', [String(pid), 'GC.heap_info']);
    let kb = 0;
    for (const m of stdout.matchAll(/generation\s+total \d+K, used (\d+)K/g)) kb += Number(m[1]);
    return Math.round(kb / 1024);
  } catch {
    return Number.NaN;
  }
}

/** ZooKeeper's znode count (mntr). */
async function znodes(serverConnect: string): Promise<number> {
  const [host, port] = serverConnect.split(',')[0]!.split(':');
  const text = await fourLetterWord(host!, Number(port), 'mntr', 10_000).catch(() => '');
  const m = /zk_znode_count\s+(\d+)/.exec(text);
  return m ? Number(m[1]) : Number.NaN;
}

/** Every submitted id has its result, no result is of an id not submitted, nothing is left queued. */
async function checkAll(
  c: ZkClient,
  ids: string[],
  tasks: number,
): Promise<{ ok: boolean; problems: string[] }> {
  const problems: string[] = [];
  if (ids.length !== tasks) problems.push(`${ids.length} ids confirmed for ${tasks} tasks`);
  const results = await allResultIds(c);
  const have = new Set(results);
  if (have.size !== results.length) problems.push(`${results.length - have.size} results listed twice`);
  const missing = ids.filter((id) => !have.has(id));
  if (missing.length) problems.push(`${missing.length} tasks without a result (e.g. ${missing[0]})`);
  const submitted = new Set(ids);
  const extra = results.filter((id) => !submitted.has(id));
  if (extra.length) problems.push(`${extra.length} results of tasks not submitted`);
  const left = (await c.exists(PATHS.tasks))?.numChildren ?? 0;
  if (left) problems.push(`${left} tasks left in /tasks`);
  return { ok: problems.length === 0, problems };
}

function dirSize(dir: string): { bytes: number; snapshots: number } {
  let bytes = 0;
  let snapshots = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        bytes += statSync(p).size;
        if (e.name.startsWith('snapshot.')) snapshots++;
      }
    }
  };
  walk(dir);
  return { bytes, snapshots };
}
