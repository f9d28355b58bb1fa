/**
 * Throwaway certificates for TLS tests, made once per test file (in a `before` hook, or earlier by a
 * hook that awaits `ready()`):
 *
 *   const certs = useTestCertificates();
 *   const zk = useZooKeeper(async () => ({ tls: (await certs.ready()).serverTls }), () => certs.clientTls);
 *
 * - `ca`: the farm's CA; `server`: its certificate for 127.0.0.1 and localhost (server and client use,
 *   as the launcher probes with it); `client`: a client certificate it signed.
 * - `otherCa` and `otherClient`: a second CA that signed nothing of the server's, and a client of it.
 */
import { before } from 'node:test';
import { createCa, issueCertificate, type PemPair } from '../../src/zk/certificates.js';
import type { ZkServerTlsOptions } from '../../src/zk/server.js';
import type { ZkTlsOptions } from '../../src/zk/transport.js';

export interface TestCertificates {
  readonly ca: PemPair;
  readonly server: PemPair;
  readonly client: PemPair;
  readonly otherCa: PemPair;
  readonly otherClient: PemPair;
  /** What a TLS-only test server is started with (client certificates required). */
  readonly serverTls: ZkServerTlsOptions;
  /** What a well-configured client connects with. */
  readonly clientTls: ZkTlsOptions;
  /** Resolves once the certificates are made. */
  ready(): Promise<TestCertificates>;
}

export function useTestCertificates(): TestCertificates {
  type Made = Omit<TestCertificates, 'serverTls' | 'clientTls' | 'ready'>;
  let made: Made | undefined;
  let making: Promise<Made> | undefined;
  const make = async (): Promise<Made> => {
    const ca = await createCa('zkfarm test CA');
    const otherCa = await createCa('zkfarm other CA');
    const [server, client, otherClient] = await Promise.all([
      issueCertificate(ca, { commonName: 'zookeeper', hosts: ['127.0.0.1', 'localhost'], usage: 'both' }),
      issueCertificate(ca, { commonName: 'farm client', usage: 'client' }),
      issueCertificate(otherCa, { commonName: 'stranger', usage: 'client' }),
    ]);
    made = { ca, server, client, otherCa, otherClient };
    return made;
  };
  before(async () => {
    making ??= make();
    await making;
  });
  const get = () => {
    if (!made) throw new Error('useTestCertificates: not made yet (use them inside a test or a later hook)');
    return made;
  };
  const certs: TestCertificates = {
    async ready() {
      making ??= make();
      await making;
      return certs;
    },
    get ca() {
      return get().ca;
    },
    get server() {
      return get().server;
    },
    get client() {
      return get().client;
    },
    get otherCa() {
      return get().otherCa;
    },
    get otherClient() {
      return get().otherClient;
    },
    get serverTls() {
      const m = get();
      return { ca: m.ca.cert, cert: m.server.cert, key: m.server.key };
    },
    get clientTls() {
      const m = get();
      return { ca: m.ca.cert, cert: m.client.cert, key: m.client.key };
    },
  };
  return certs;
}
