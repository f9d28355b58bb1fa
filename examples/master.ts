/**
 * One master in its own process, as the original ran one per PowerShell session. Start several: one
 * leads (it holds /master), the others stand by and take over when it goes.
 *
 *   npx tsx examples/master.ts m1 [--zk 127.0.0.1:2181]
 */
import { parseArgs } from 'node:util';
import { Master } from '../src/farm/index.js';
import { DEFAULT_ZK, die, logger, parseOrExit, stopOnSignal } from './common.js';

const usage = 'npx tsx examples/master.ts <name> [--zk host:port[/chroot]]';
const { values, positionals } = parseOrExit(usage, () =>
  parseArgs({ allowPositionals: true, options: { zk: { type: 'string', default: DEFAULT_ZK } } }),
);
const name = positionals[0] ?? die(`a master needs a name\nusage: ${usage}`);

const log = logger().child({ role: name, kind: 'master' });
const master = new Master({ name, connect: values.zk, logger: log });
stopOnSignal(() => master.stop());
await master.start().catch((err: Error) => die(`master ${name} could not start: ${err.message}`, 1));
log.info(`master ${name} running against ${values.zk}; Ctrl-C stops it`);
