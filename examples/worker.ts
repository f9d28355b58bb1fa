/**
 * One worker in its own process. It runs the tasks the leading master assigns to it and writes their
 * output under <workdir>/<name>/<task-id>/.
 *
 *   npx tsx examples/worker.ts w1 [--zk 127.0.0.1:2181] [--capacity 4] [--allow-shell] [--workdir DIR]
 *                                 [--handlers examples/handlers.mjs]
 */
import { parseArgs } from 'node:util';
import { Worker } from '../src/farm/index.js';
import { DEFAULT_ZK, die, logger, parseOrExit, stopOnSignal } from './common.js';

const usage =
  'npx tsx examples/worker.ts <name> [--zk host:port] [--capacity N] [--allow-shell] [--workdir DIR] [--handlers MODULE]';
const { values, positionals } = parseOrExit(usage, () =>
  parseArgs({
    allowPositionals: true,
    options: {
      zk: { type: 'string', default: DEFAULT_ZK },
      capacity: { type: 'string', default: '4' },
      'allow-shell': { type: 'boolean', default: false },
      workdir: { type: 'string', default: './zkfarm-work' },
      handlers: { type: 'string', multiple: true },
    },
  }),
);
const name = positionals[0] ?? die(`a worker needs a name\nusage: ${usage}`);
const capacity = Number(values.capacity);
if (!Number.isInteger(capacity) || capacity < 1)
  die(`--capacity: expected a whole number >= 1, got "${values.capacity}"`);

const log = logger().child({ role: name, kind: 'worker' });
const worker = new Worker({
  name,
  connect: values.zk,
  capacity,
  allowShell: values['allow-shell'],
  workdir: values.workdir,
  handlerModules: values.handlers ?? [],
  logger: log,
});
stopOnSignal(() => worker.stop({ drain: true, deadlineMs: 30_000 }));
await worker.start().catch((err: Error) => die(`worker ${name} could not start: ${err.message}`, 1));
log.info(`worker ${name} running against ${values.zk} (capacity ${capacity}); Ctrl-C drains and stops it`);
