/**
 * zkfarm/testing: the machinery tests, chaos runs and benchmarks use to hurt a farm on purpose. None of
 * it is part of the production API (a farm runs without ever loading it).
 *
 * - Fault proxy: a TCP relay between a client and ZooKeeper that delays, cuts or silently blackholes the
 *   connection (connect a role or a supervisor through `proxyConnectString(proxy, connect)`).
 * - Session expiry as Kazoo's harness does it: a second connection on the same session id and password,
 *   closed (`expireSession(supervisor)`, `killSession(connect, id, password)`).
 * - Role threads of a host: `sourceThreads` runs them from TypeScript sources; `FaultInjector` also
 *   crashes them and expires their sessions.
 */
export { expireSession, type KillSessionOptions, killSession, waitForNewSession } from './expire.js';
export {
  type FaultProxy,
  type FaultProxyOptions,
  type ProxyTarget,
  proxyConnectString,
  resetSocket,
  startFaultProxy,
} from './fault-proxy.js';
export { FaultInjector, sourceThreads } from './threads.js';
