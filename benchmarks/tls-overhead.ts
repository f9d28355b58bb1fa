/**
 * What TLS costs zkfarm's ZooKeeper client: one plaintext and one TLS-only standalone server (same
 * settings, loopback), the same work against each, one after the other, in one process.
 *
 *   node --import tsx benchmarks/tls-overhead.ts [reads]      (default 20000)
 *
 * - session: opening a session and closing it, 20 times in a row (median and max ms);
 * - reads: `reads` getData of a 100-byte node, 100 in flight at a time (reads/s, client CPU per read);
 * - writes: 2,000 setData, 100 in flight at a time (writes/s).
 * Bounded in count; the servers are stopped at the end.
 */
import { performance } from 'node:perf_hooks';
import { createCa, issueCertificate } from '../src/zk/certificates.js';
import {
  openClient,
  startZkServer,
  type ZkClient,
  type ZkServer,
  type ZkTlsOptions,
} from '../src/zk/index.js';

const READS = Number(process.argv[2] ?? 20_000);
const WRITES = 2_000;
const WINDOW = 100;

async function pipelined(n: number, op: () => Promise<unknown>): Promise<{ perSec: number; cpuUs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let done = 0; done < n; done += WINDOW) {
    await Promise.all(Array.from({ length: Math.min(WINDOW, n - done) }, op));
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { perSec: Math.round((n / ms) * 1000), cpuUs: Number(((cpu.user + cpu.system) / n).toFixed(1)) };
}

async function measure(label: string, server: ZkServer, tls: ZkTlsOptions | undefined) {
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const c = await openClient(server.connectString, { tls });
    times.push(performance.now() - t0);
    c.connection.close();
  }
  times.sort((a, b) => a - b);
  const client: ZkClient = await openClient(server.connectString, { tls });
  await client.create('/bench', Buffer.alloc(100, 1)).catch(() => {});
  await pipelined(2_000, () => client.getData('/bench')); // warm-up
  const reads = await pipelined(READS, () => client.getData('/bench'));
  const writes = await pipelined(WRITES, () => client.setData('/bench', Buffer.alloc(100, 2)));
  client.connection.close();
  return {
    label,
    sessionMedianMs: Number(times[10]!.toFixed(1)),
    sessionMaxMs: Number(times[19]!.toFixed(1)),
    readsPerSec: reads.perSec,
    cpuUsPerRead: reads.cpuUs,
    writesPerSec: writes.perSec,
  };
}

const ca = await createCa('bench CA');
const serverCert = await issueCertificate(ca, { commonName: 'zk', hosts: ['127.0.0.1'], usage: 'both' });
const clientCert = await issueCertificate(ca, { commonName: 'bench client', usage: 'client' });
const plain = await startZkServer();
const secure = await startZkServer({ tls: { ca: ca.cert, cert: serverCert.cert, key: serverCert.key } });
try {
  const rows = [
    await measure('plaintext', plain, undefined),
    await measure('TLS (client certificate)', secure, {
      ca: ca.cert,
      cert: clientCert.cert,
      key: clientCert.key,
    }),
  ];
  console.log(`node ${process.version}, ${READS} reads, ${WRITES} writes, ${WINDOW} in flight`);
  console.table(rows);
} finally {
  await Promise.all([plain.stop(), secure.stop()]);
}
