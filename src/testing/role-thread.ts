/**
 * Loaded into a role thread before its entry by FaultInjector (threads.ts): answers fault requests on
 * the testing port the injector put in `workerData`. A role thread made without it has no such port,
 * and nothing of this in it.
 */
import { getHeapStatistics } from 'node:v8';
import { type ResourceLimits, resourceLimits, workerData } from 'node:worker_threads';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { Comlink, nodeEndpoint } from '../host/comlink.js';
import { threadRole } from '../host/role-runtime.js';
import { expireSession } from './expire.js';

export interface TestingThreadApi {
  /** The server expires the role's session; resolves once it runs on a new one. */
  expireSession(timeoutMs?: number): Promise<void>;
  /** The thread's V8 heap as V8 sized it: its heap size limit (bytes) and its resource limits. */
  heap(): { heapSizeLimit: number; resourceLimits: ResourceLimits };
}

const api: TestingThreadApi = {
  async expireSession(timeoutMs) {
    const supervisor = threadRole()?.sessionSupervisor;
    if (!supervisor) {
      throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, 'the role of this thread has not started yet');
    }
    await expireSession(supervisor, { timeoutMs });
  },
  heap() {
    return { heapSizeLimit: getHeapStatistics().heap_size_limit, resourceLimits };
  },
};

const port = (workerData as { testing?: unknown } | null)?.testing;
if (port) Comlink.expose(api, nodeEndpoint(port as never));
