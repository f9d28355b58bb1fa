/**
 * What a new `runtime` spends, pass by pass: per run a fresh `runtime --masters 2 --workers 8` (every
 * result kept) with its embedded ZooKeeper, then `--passes` passes of `runtime submit --wait --file` of N
 * no-op tasks, the first one as soon as it says ready. Each pass: its wall time and the CPU of the
 * runtime process (every role thread and V8's helper threads), of the embedded ZooKeeper's JVM, and of
 * that JVM's JIT compiler threads (those alive at both reads: the JVM ends idle ones, so a lower bound).
 * The first pass is what a new user meets; the second shows how much of it was warming up. With
 * --at-start the first pass is submitted as soon as the embedded ZooKeeper listens, as a user who
 * submits the moment `runtime` starts, and its wall time counts from the runtime's start. Builds given
 * with --runtime alternate run by run. With --jit the runtime runs under `--trace-opt --trace-deopt`
 * and each pass's TurboFan compilations and deoptimizations are counted (tracing costs CPU: compare
 * CPU from runs without it). benchmarks/README.md quotes its output.
 *
 *   npm run build && node --import tsx benchmarks/fresh-passes.ts [--tasks 20000] [--passes 2] [--runs 3]
 *     [--runtime bin/runtime.js,/path/to/another/checkout/bin/runtime.js] [--jit] [--at-start]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { embeddedJavaPid } from '../src/host/discovery.js';
import { statCpuMs } from '../src/host/proc-stat.js';
import { processCpuMs } from './harness/proc.js';
import { startNode } from './harness/processes.js';
import { runtimePlace } from './harness/runtime-place.js';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '20000' },
    passes: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    runtime: { type: 'string' },
    jit: { type: 'boolean', default: false },
    'at-start': { type: 'boolean', default: false },
  },
});
const TASKS = Number(values.tasks);
const PASSES = Number(values.passes);
const RUNS = Number(values.runs);
const builds = (values.runtime ?? 'bin/runtime.js').split(',');
const AT_START = values['at-start'];

interface Pass {
  build: string;
  run: number;
  /** The runtime's start → its `ready` line. */
  readyMs: number;
  pass: number;
  wallMs: number;
  runtimeMs: number;
  zkMs: number;
  zkJitMs: number;
  compiles: number;
  deopts: number;
}

/** CPU (ms) of each JIT compiler thread of a JVM, by thread id. */
function jitThreads(pid: number | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (pid === undefined) return out;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8');
      if (/^C[12] CompilerThre/.test(comm)) out.set(tid, statCpuMs(`/proc/${pid}/task/${tid}/stat`));
    }
  } catch {
    // The JVM is gone, or a thread ended between the listing and the read: counted as absent.
  }
  return out;
}

function jitSince(before: Map<string, number>, pid: number | undefined): number {
  let ms = 0;
  for (const [tid, now] of jitThreads(pid)) if (before.has(tid)) ms += now - before.get(tid)!;
  return ms;
}

async function measure(runtime: string, run: number): Promise<Pass[]> {
  const place = runtimePlace('passes', TASKS);
  const { env } = place;
  const trace = values.jit ? ['--trace-opt', '--trace-deopt'] : [];
  const started = performance.now();
  const host = startNode([...trace, runtime, ...place.farmArgs], env, 4000);
  const seen = { compiles: 0, deopts: 0, listening: false, ready: false, readyMs: 0 };
  // V8's traces come on stdout, runtime's own lines on stderr: each stream is split into lines apart.
  for (const stream of [host.child.stdout!, host.child.stderr!]) {
    let partial = '';
    stream.on('data', (b: Buffer) => {
      const lines = (partial + b.toString('utf8')).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('[completed compiling')) seen.compiles++;
        else if (l.startsWith('[bailout (kind')) seen.deopts++;
        else if (l.startsWith('runtime: embedded ZooKeeper listening')) seen.listening = true;
        else if (l.startsWith('runtime: ready:')) {
          seen.ready = true;
          seen.readyMs = performance.now() - started;
        }
      }
    });
  }
  const out: Pass[] = [];
  try {
    const until = async (what: () => boolean, step: number) => {
      for (let waited = 0; !what(); waited += step) {
        if (waited > 180_000 || host.child.exitCode !== null)
          throw new Error(`runtime not ready: ${host.output()}`);
        await new Promise((r) => setTimeout(r, step));
      }
    };
    await until(() => (AT_START ? seen.listening : seen.ready), AT_START ? 5 : 100);
    const pid = host.child.pid!;
    const javaPid = embeddedJavaPid(place.workdir);
    for (let pass = 1; pass <= PASSES; pass++) {
      if (pass === 2) await until(() => seen.ready, 100);
      const t0 = AT_START && pass === 1 ? started : performance.now();
      const [rt0, zk0, jit0] = [processCpuMs(pid), javaPid ? processCpuMs(javaPid) : 0, jitThreads(javaPid)];
      const [c0, d0] = [seen.compiles, seen.deopts];
      const submit = startNode([runtime, 'submit', '--wait', '--file', place.tasksFile], env, 2000);
      if ((await submit.gone) !== 0) throw new Error(`runtime submit failed: ${submit.output()}`);
      out.push({
        build: runtime,
        run,
        readyMs: seen.readyMs,
        pass,
        wallMs: performance.now() - t0,
        runtimeMs: processCpuMs(pid) - rt0,
        zkMs: javaPid ? processCpuMs(javaPid) - zk0 : 0,
        zkJitMs: jitSince(jit0, javaPid),
        compiles: seen.compiles - c0,
        deopts: seen.deopts - d0,
      });
    }
  } finally {
    await host.stop('SIGINT', 30_000);
    place.remove();
  }
  return out;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function print(rows: Pass[]): void {
  const jit = values.jit ? ' compilations | deopts |' : '';
  console.log(`${TASKS} no-op tasks a pass, ${PASSES} passes, ${RUNS} runs per build\n`);
  if (AT_START)
    console.log('The first pass went in as ZooKeeper listened; its wall time is from the runtime start.\n');
  console.log(
    `| build | run | ready ms | pass | wall ms | runtime CPU ms | ZooKeeper CPU ms | of which JIT threads |${jit}`,
  );
  console.log(
    `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${values.jit ? ' ---: | ---: |' : ''}`,
  );
  for (const r of rows) {
    const extra = values.jit ? ` ${r.compiles} | ${r.deopts} |` : '';
    console.log(
      `| ${r.build} | ${r.run + 1} | ${fmt(r.readyMs)} | ${r.pass} | ${fmt(r.wallMs)} | ${fmt(r.runtimeMs)} | ${fmt(r.zkMs)} | ${fmt(r.zkJitMs)} |${extra}`,
    );
  }
  console.log('\nMeans per build and pass:\n');
  for (const b of builds)
    for (let p = 1; p <= PASSES; p++) {
      const of = rows.filter((r) => r.build === b && r.pass === p);
      const extra = values.jit
        ? `, ${fmt(mean(of.map((r) => r.compiles)))} compilations, ${fmt(mean(of.map((r) => r.deopts)))} deopts`
        : '';
      console.log(
        `- ${b}, pass ${p}: ready after ${fmt(mean(of.map((r) => r.readyMs)))} ms, wall ${fmt(mean(of.map((r) => r.wallMs)))} ms, runtime ${fmt(mean(of.map((r) => r.runtimeMs)))} ms, ZooKeeper ${fmt(mean(of.map((r) => r.zkMs)))} ms (JIT ${fmt(mean(of.map((r) => r.zkJitMs)))})${extra}`,
      );
    }
}

const rows: Pass[] = [];
for (let run = 0; run < RUNS; run++)
  for (const b of run % 2 === 0 ? builds : [...builds].reverse()) rows.push(...(await measure(b, run)));
print(rows);
