/**
 * What the role threads allocate per task: a fresh `runtime --masters 2 --workers 8` (every result kept)
 * with harness/alloc-probe.mjs in each role thread, one unmeasured pass of `runtime submit --file` of N
 * no-op tasks, then `--passes` measured ones. Prints the bytes allocated per task by the leading master
 * (the master that allocated most), the standby and the workers together, and each kind's top allocating
 * functions. Allocation is what the threads' scavenges work through, and unlike a rate it hardly moves
 * with the machine's load. benchmarks/README.md quotes its output.
 *
 *   npm run build && node --import tsx benchmarks/alloc-per-task.ts [--tasks 20000] [--passes 2] [--top 12]
 *     [--runtime /path/to/another/checkout/bin/runtime.js]   # the roles of another build
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { countResults } from '../src/farm/status-store.js';
import { openSession, stopSession, waitUntil } from './harness/farm-fixture.js';
import { startNode } from './harness/processes.js';
import { runtimePlace } from './harness/runtime-place.js';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '20000' },
    passes: { type: 'string', default: '2' },
    top: { type: 'string', default: '12' },
    runtime: { type: 'string' },
  },
});
const TASKS = Number(values.tasks);
const PASSES = Number(values.passes);
const runtime = values.runtime ?? fileURLToPath(new URL('../bin/runtime.js', import.meta.url));
const probe = fileURLToPath(new URL('./harness/alloc-probe.mjs', import.meta.url));
const signal = new AbortController().signal;

interface Report {
  kind: string;
  threadId: number;
  total: number;
  top: Array<[string, number]>;
}

const place = runtimePlace('alloc', TASKS, { env: { ZKFARM_THREAD_IMPORT: probe } });
const probeDir = join(place.dir, 'probe');
mkdirSync(probeDir);
const env = { ...place.env, ALLOC_PROBE_DIR: probeDir };
const file = place.tasksFile;
const host = startNode([runtime, ...place.farmArgs], env);
try {
  const ready = await host.waitFor(/runtime: ready: .* on (\S+) /, 120_000, 'runtime ready', signal);
  const connect = ready[1]!;
  const { client, sup } = await openSession(connect);
  const pass = async () => {
    const base = await countResults(client);
    const submit = startNode([runtime, 'submit', '--zk', connect, '--file', file], env, 2000);
    await waitUntil(async () => (await countResults(client)) >= base + TASKS, 300_000, 'results', signal, 50);
    if ((await submit.gone) !== 0) throw new Error(`runtime submit failed: ${submit.output()}`);
  };
  await pass();
  writeFileSync(join(probeDir, 'start'), '');
  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < PASSES; i++) await pass();
  writeFileSync(join(probeDir, 'stop'), '');
  const reportsIn = () => readdirSync(probeDir).filter((f) => f.endsWith('.json'));
  await waitUntil(async () => reportsIn().length >= 10, 30_000, 'every thread reports', signal, 100);
  const reports: Report[] = reportsIn().map((f) => JSON.parse(readFileSync(join(probeDir, f), 'utf8')));
  await stopSession(sup);
  print(reports, TASKS * PASSES);
} finally {
  await host.stop('SIGINT', 30_000);
  place.remove();
}

function print(reports: Report[], tasks: number): void {
  const masters = reports.filter((r) => r.kind === 'master').sort((a, b) => b.total - a.total);
  const groups: Array<[string, Report[]]> = [
    ['leading master', masters.slice(0, 1)],
    ['standby master', masters.slice(1)],
    ['workers (all 8)', reports.filter((r) => r.kind === 'worker')],
  ];
  console.log(`${tasks} tasks measured (${PASSES} passes of ${TASKS})\n`);
  console.log('| threads | bytes allocated per task |');
  console.log('| --- | ---: |');
  for (const [name, rs] of groups) console.log(`| ${name} | ${perTask(rs, tasks)} |`);
  for (const [name, rs] of groups.filter(([, rs]) => rs.length > 0 && rs[0]!.total > tasks * 100)) {
    const sites = new Map<string, number>();
    for (const r of rs) for (const [site, bytes] of r.top) sites.set(site, (sites.get(site) ?? 0) + bytes);
    console.log(`\n${name}, top allocating functions (bytes per task):`);
    for (const [site, bytes] of [...sites].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top)))
      console.log(
        `  ${Math.round(bytes / tasks)
          .toString()
          .padStart(6)}  ${site}`,
      );
  }
}

function perTask(rs: Report[], tasks: number): string {
  return Math.round(rs.reduce((s, r) => s + r.total, 0) / tasks).toLocaleString('en-US');
}
