/** Fault injection for tests: zkfarm/testing (a TCP relay to delay, cut and blackhole a connection, session expiry, role faults). */
export {
  expireSession,
  FaultInjector,
  type FaultProxy,
  type FaultProxyOptions,
  killSession,
  type ProxyTarget,
  proxyConnectString,
  resetSocket,
  sourceThreads,
  startFaultProxy,
  waitForNewSession,
} from '../../src/testing/index.js';
