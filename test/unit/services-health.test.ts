/** services/health.ts: each kind of probe against real loopback servers and commands, and the thresholds. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { monitorHealth, type ProbeResult, probe } from '../../src/services/health.js';
import { serviceSchemas } from '../../src/services/model.js';

const listen = (s: Server) =>
  new Promise<number>((resolve) =>
    s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port)),
  );
const same = (s: string) => s;

/** Live processes whose command line (NUL-separated) contains `needle`. */
function running(needle: string): string[] {
  return readdirSync('/proc').filter((p) => {
    if (!/^\d+$/.test(p)) return false;
    try {
      return (
        readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle) &&
        !readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z ')
      );
    } catch {
      return false;
    }
  });
}

test('tcp, http and command probes pass and fail as they should; a slow command is cut at its timeout', async () => {
  const tcp = createServer((c) => c.end());
  const port = await listen(tcp);
  assert.equal(
    (await probe(serviceSchemas().health.parse({ type: 'tcp', port }), same, process.env, '/')).ok,
    true,
  );
  await new Promise((r) => tcp.close(r));
  const closed = await probe(serviceSchemas().health.parse({ type: 'tcp', port }), same, process.env, '/');
  assert.equal(closed.ok, false);
  assert.match(closed.detail, /ECONNREFUSED/);

  let status = 200;
  const http = createHttpServer((_req, res) => res.writeHead(status).end());
  const hport = await listen(http as unknown as Server);
  const check = serviceSchemas().health.parse({ type: 'http', url: 'http://127.0.0.1:{port}/health' });
  const fill = (s: string) => s.replace('{port}', String(hport));
  assert.equal((await probe(check, fill, process.env, '/')).ok, true);
  status = 503;
  assert.deepEqual(await probe(check, fill, process.env, '/'), {
    ok: false,
    detail: `HTTP 503 from http://127.0.0.1:${hport}/health`,
  });
  await new Promise((r) => http.close(r));

  const cmd = (c: string, timeoutMs = 2000) =>
    probe(serviceSchemas().health.parse({ type: 'cmd', cmd: c, timeoutMs }), same, process.env, '/');
  assert.equal((await cmd('exit 0')).ok, true);
  assert.match((await cmd('exit 7')).detail, /exited with code 7/);
  const slow = await cmd('sleep 31.25', 200);
  assert.equal(slow.ok, false);
  assert.match(slow.detail, /timed out after 200 ms/);
  assert.deepEqual(running('sleep\x19.25'), [], 'the slow command was killed, not waited for');
});

test('thresholds: healthy after healthyThreshold passes, unhealthy after unhealthyThreshold failures once healthy', async () => {
  const check = serviceSchemas().health.parse({
    type: 'cmd',
    cmd: 'x',
    intervalMs: 0,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    startPeriodMs: 3_600_000,
  });
  const script = [false, true, false, true, true, false, false, true, false, false, false];
  const calls: string[] = [];
  let i = 0;
  const next = async (): Promise<ProbeResult> => {
    const ok = script[i++] ?? false;
    return { ok, detail: ok ? 'pass' : `fail ${i}` };
  };
  const reason = await monitorHealth(
    check,
    next,
    { healthy: () => calls.push(`healthy at ${i}`) },
    new AbortController().signal,
  );
  assert.deepEqual(calls, ['healthy at 5']);
  // Failures before the first healthy moment do not count during the start period; after it, 3 in a row do.
  assert.equal(i, 11);
  assert.match(reason, /failed 3 times in a row: fail 11/);
});
