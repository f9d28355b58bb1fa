/** Fault injection for tests: a TCP relay to delay, cut and blackhole a client's connection. */
export {
  type FaultProxy,
  type FaultProxyOptions,
  type ProxyTarget,
  proxyConnectString,
  resetSocket,
  startFaultProxy,
} from '../../src/zk/fault-proxy.js';
