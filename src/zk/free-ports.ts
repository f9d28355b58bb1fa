/**
 * Free TCP ports on loopback for servers the launcher, the tests and the benchmarks start: asked of
 * the kernel (port 0), all held open together so that the ports of one call differ. Another process
 * may still take one before it is used: the launcher retries on a port conflict.
 */
import { createServer, type Server } from 'node:net';
import { LOOPBACK } from './server-config.js';

/** `count` distinct free TCP ports on loopback (all held open together so they differ). */
export async function freePorts(count: number, host = LOOPBACK): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, host, () => resolve());
      });
    }
    return servers.map((s) => {
      const addr = s.address();
      if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
      return addr.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}
