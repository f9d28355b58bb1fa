/**
 * Health checks of a service instance: a command (exit 0 passes), a TCP port (a connection passes) or
 * an HTTP URL (a status below 400 passes), probed every `intervalMs`, each probe bounded by `timeoutMs`.
 *
 * An instance becomes healthy after `healthyThreshold` passes in a row; it is unhealthy (and its run
 * ends: the instance restarts) after `unhealthyThreshold` failures in a row, counted once it has been
 * healthy or once `startPeriodMs` has passed since the start, whichever comes first.
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../errors.js';
import { groupExited, killGroup } from '../exec/shell.js';
import type { HealthCheck } from './model.js';

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/** One probe; never throws. `expandText` fills in the instance's number and ports. */
export async function probe(
  check: HealthCheck,
  expandText: (s: string) => string,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<ProbeResult> {
  try {
    switch (check.type) {
      case 'cmd':
        return await probeCommand(expandText(check.cmd), check.timeoutMs, env, cwd);
      case 'tcp':
        return await probeTcp(check.host, Number(expandText(String(check.port))), check.timeoutMs);
      case 'http':
        return await probeHttp(expandText(check.url), check.timeoutMs);
    }
  } catch (err) {
    return { ok: false, detail: describeError(err) };
  }
}

function probeCommand(
  cmd: string,
  timeoutMs: number,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', cmd], { cwd, env, detached: true, stdio: 'ignore' });
    const timer = setTimeout(() => {
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: `health command could not start: ${err.message}` });
    });
    child.once('exit', async (code, signal) => {
      clearTimeout(timer);
      // Nothing of a probe outlives it (a timed-out command's children included).
      if (child.pid !== undefined && killGroup(child.pid, 'SIGKILL')) await groupExited(child.pid);
      if (code === 0) resolve({ ok: true, detail: 'health command exited 0' });
      else if (signal)
        resolve({
          ok: false,
          detail: `health command timed out after ${timeoutMs} ms or was killed (${signal})`,
        });
      else resolve({ ok: false, detail: `health command exited with code ${code}` });
    });
  });
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (r: ProbeResult) => {
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () =>
      done({ ok: false, detail: `no TCP connection to ${host}:${port} within ${timeoutMs} ms` }),
    );
    socket.once('connect', () => done({ ok: true, detail: `TCP ${host}:${port} accepts connections` }));
    socket.once('error', (err) => done({ ok: false, detail: `TCP ${host}:${port}: ${err.message}` }));
  });
}

async function probeHttp(url: string, timeoutMs: number): Promise<ProbeResult> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  await res.body?.cancel();
  return res.status < 400
    ? { ok: true, detail: `HTTP ${res.status} from ${url}` }
    : { ok: false, detail: `HTTP ${res.status} from ${url}` };
}

export interface HealthEvents {
  healthy(detail: string): void;
}

/**
 * Probe until `signal` aborts; calls `healthy` on the transition to healthy and resolves with the
 * reason once the instance is unhealthy (it never resolves while the instance stays healthy).
 */
export async function monitorHealth(
  check: HealthCheck,
  probeOnce: () => Promise<ProbeResult>,
  events: HealthEvents,
  signal: AbortSignal,
): Promise<string> {
  const started = performance.now();
  let passes = 0;
  let fails = 0;
  let healthy = false;
  for (;;) {
    const r = await probeOnce();
    if (signal.aborted) return 'stopped';
    if (r.ok) {
      fails = 0;
      passes++;
      if (!healthy && passes >= check.healthyThreshold) {
        healthy = true;
        events.healthy(r.detail);
      }
    } else {
      passes = 0;
      fails++;
      const counting = healthy || performance.now() - started >= check.startPeriodMs;
      if (counting && fails >= check.unhealthyThreshold)
        return `health check failed ${fails} times in a row: ${r.detail}`;
    }
    try {
      await sleep(check.intervalMs, undefined, { signal });
    } catch {
      return 'stopped';
    }
  }
}
