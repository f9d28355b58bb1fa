/**
 * Submit one task read as JSON from stdin, print its id, and with --wait print its result (exit 1 if it
 * failed), as the original's sendtask.ps1 did.
 *
 *   echo '{"cmd":"ps -e"}' | npx tsx examples/sendtask.ts [--zk 127.0.0.1:2181] [--wait]
 *   echo '{"handler":"echo","input":"hi"}' | npx tsx examples/sendtask.ts --wait
 */
import { parseArgs } from 'node:util';
import { Submitter } from '../src/farm/index.js';
import { DEFAULT_ZK, die, parseOrExit } from './common.js';

const usage = 'echo \'{"cmd":"ps -e"}\' | npx tsx examples/sendtask.ts [--zk host:port] [--wait]';
const { values } = parseOrExit(usage, () =>
  parseArgs({
    options: {
      zk: { type: 'string', default: DEFAULT_ZK },
      wait: { type: 'boolean', default: false },
    },
  }),
);
if (process.stdin.isTTY)
  die('pipe a task to stdin, e.g.: echo \'{"cmd":"ps -e"}\' | npx tsx examples/sendtask.ts');

let text = '';
for await (const chunk of process.stdin) text += chunk;
let task: Record<string, unknown>;
try {
  task = JSON.parse(text);
} catch (err) {
  die(`stdin is not valid JSON: ${(err as Error).message}`);
}

const submitter = await Submitter.open({ connect: values.zk, connectTimeout: 10_000 }).catch((err: Error) =>
  die(err.message, 1),
);
let code = 0;
try {
  const id = await submitter.submit(task);
  console.log(id);
  if (values.wait) {
    const status = await submitter.waitFor(id);
    console.log(JSON.stringify(status));
    if (status.state !== 'succeeded') code = 1;
  }
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  code = (err as { code?: string }).code === 'ZKFARM_INVALID_TASK' ? 2 : 1;
} finally {
  void submitter.close();
}
process.exit(code);
