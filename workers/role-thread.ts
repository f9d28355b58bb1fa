/**
 * Entry of one role thread (a master or a worker with its own ZooKeeper session).
 * The host passes a log port (and a handler-pool port) in workerData and talks over Comlink.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { importThreadModules } from '../src/exec/trace-context.js';
import { trustHostCheckedOptions } from '../src/farm/options.js';
import { Comlink, nodeEndpoint } from '../src/host/comlink.js';
import { createRoleThreadApi, type RoleThreadPorts } from '../src/host/role-runtime.js';

if (!parentPort) throw new Error('workers/role-thread runs as a worker thread of the zkfarm host');

const ports = workerData as RoleThreadPorts;
// The host checked this thread's spec and settings before it started it (role-handle.ts): the role takes
// them as checked, and the thread never loads zod for them.
trustHostCheckedOptions();
// An SDK for this thread's OpenTelemetry globals, say (exec/trace-context.ts), before any role code runs;
// the host's calls wait on the port meanwhile.
const port = parentPort;
void importThreadModules().then(() =>
  Comlink.expose(createRoleThreadApi(ports), nodeEndpoint(port as never)),
);

// A stray rejection in role code is a bug to log, not a reason for the role to die.
process.on('unhandledRejection', (err) => {
  const e = err as Error;
  ports.log.postMessage(
    `${JSON.stringify({ level: 50, time: Date.now(), msg: `unhandled rejection in role thread: ${e?.message ?? String(err)}`, stack: e?.stack })}\n`,
  );
});
