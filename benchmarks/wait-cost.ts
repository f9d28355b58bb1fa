/**
 * What `runtime submit --wait` costs the farm: a fresh `runtime --masters 2 --workers 8` (every result
 * kept), then passes of `runtime submit --file` of N no-op tasks, alternately without and with `--wait`,
 * the results counted by a separate client. Per pass: ms from the submit's start to the last result and
 * to the submit's exit, CPU of the runtime process and of the embedded ZooKeeper, and the requests
 * ZooKeeper received (`mntr`). benchmarks/README.md quotes its output ("Waiting for many results").
 *
 *   npm run build && node --import tsx benchmarks/wait-cost.ts [--tasks 20000] [--pairs 2]
 *     [--submit /path/to/another/checkout/bin/runtime.js]   # the submitting command of another build
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { countResults } from '../src/farm/status-store.js';
import { embeddedJavaPid } from '../src/host/discovery.js';
import { fourLetterWord } from '../src/zk/four-letter.js';
import { openSession, stopSession, waitUntil } from './harness/farm-fixture.js';
import { processCpuMs } from './harness/proc.js';
import { startNode } from './harness/processes.js';
import { runtimePlace } from './harness/runtime-place.js';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '20000' },
    pairs: { type: 'string', default: '2' },
    submit: { type: 'string' },
  },
});
const TASKS = Number(values.tasks);
const PAIRS = Number(values.pairs);
// The built command, as a user runs it (npm run build first), not the sources through tsx.
const runtime = fileURLToPath(new URL('../bin/runtime.js', import.meta.url));
const submitArgs = [values.submit ?? runtime];
const signal = new AbortController().signal;

const place = runtimePlace('wait-cost', TASKS);
const { env, workdir, tasksFile: file } = place;
const host = startNode([runtime, ...place.farmArgs], env);
try {
  const ready = await host.waitFor(/runtime: ready: .* on (\S+) /, 120_000, 'runtime ready', signal);
  const connect = ready[1]!;
  const [zkHost, zkPort] = [connect.split(':')[0]!, Number(connect.split(':')[1])];
  const received = async () =>
    Number(/zk_packets_received\s+(\d+)/.exec(await fourLetterWord(zkHost, zkPort, 'mntr'))![1]);
  const javaPid = embeddedJavaPid(workdir)!;
  const { client, sup } = await openSession(connect);
  console.log(
    '| pass | --wait | ms to the last result | ms to the submit exiting | runtime CPU ms | ZooKeeper CPU ms | requests |',
  );
  console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: |');
  for (let pass = 1; pass <= 2 * PAIRS; pass++) {
    const wait = pass % 2 === 0;
    const base = await countResults(client);
    const [app0, zk0, req0, t0] = [
      processCpuMs(host.child.pid!),
      processCpuMs(javaPid),
      await received(),
      Date.now(),
    ];
    const args = [...submitArgs, 'submit', '--zk', connect, '--file', file, ...(wait ? ['--wait'] : [])];
    const submit = startNode(args, env, 2000);
    await waitUntil(
      async () => (await countResults(client)) >= base + TASKS,
      300_000,
      'every result',
      signal,
      50,
    );
    const ms = Date.now() - t0;
    const code = await submit.gone;
    const exitMs = Date.now() - t0;
    if (code !== 0) throw new Error(`runtime submit exited ${code}: ${submit.output()}`);
    const app = processCpuMs(host.child.pid!) - app0;
    const zk = processCpuMs(javaPid) - zk0;
    const requests = (await received()) - req0;
    console.log(`| ${pass} | ${wait ? 'yes' : 'no'} | ${ms} | ${exitMs} | ${app} | ${zk} | ${requests} |`);
  }
  await stopSession(sup);
} finally {
  await host.stop('SIGINT', 30_000);
  place.remove();
}
