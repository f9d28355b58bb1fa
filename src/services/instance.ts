/**
 * One service instance on a worker: run it, check its health, restart it with backoff, give up on a
 * crash loop. Knows nothing of ZooKeeper: it reports its state, and whether it serves, through `report`
 * (the runner turns them into the fence node's data and the endpoint, in one write).
 *
 * A run ends when the program exits, when its health check fails `unhealthyThreshold` times (the run is
 * stopped: SIGTERM, SIGKILL after `stopGraceMs`), or when the instance is stopped. After a run:
 * - `on-failure` and an exit with code 0: the instance is done (`exited`), nothing restarts it;
 * - more than `restart.maxRestarts` restarts within `restart.windowMs`: `failed` (a crash loop); the
 *   leader moves it to another worker, or marks it failed for good (reconciler.ts);
 * - otherwise it starts again after the next delay of a Backoff (src/backoff.ts), reset after a run
 *   that lasted `restart.resetAfterMs`.
 * Without a health check an instance counts as healthy as soon as its program has started.
 */
import { mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff } from '../backoff.js';
import { describeError, ErrorCodes } from '../errors.js';
import { ServiceProcess } from '../exec/service-process.js';
import type { Logger } from '../zk/connect-options.js';
import { monitorHealth, probe } from './health.js';
import { expand, instancePorts, needsShell, type RunRecord, type ServiceSpec } from './model.js';

/**
 * Runs a handler service until `signal` aborts; resolves when the handler returned (or threw). The spec
 * carries `timeoutMs: 0` so that the executor's task timeout (`defaultTimeoutMs`) never stops a service.
 */
export type HandlerRunner = (
  id: string,
  spec: { handler: string; input?: unknown; timeoutMs: 0 },
  signal: AbortSignal,
) => Promise<{ error?: string }>;

export interface InstanceContext {
  service: string;
  instance: number;
  revision: number;
  spec: ServiceSpec;
  logDir: string;
  allowShell: boolean;
  runHandler?: HandlerRunner;
  /**
   * The instance's state changed. `endpoint`: true publishes its endpoint, false withdraws it, in the
   * same write as the record (undefined leaves it as it is).
   */
  report(update: Partial<RunRecord>, endpoint?: boolean): void;
  log: Logger;
}

interface RunEnd {
  reason: string;
  /** Exited with code 0 (by itself). */
  clean: boolean;
  uptimeMs: number;
}

export class InstanceRun {
  readonly #ctx: InstanceContext;
  readonly #stop = new AbortController();
  readonly #done: Promise<void>;

  constructor(ctx: InstanceContext) {
    this.#ctx = ctx;
    this.#done = this.#loop().catch((err) => {
      ctx.log.error({ err }, `service ${ctx.service}.${ctx.instance}: ${describeError(err)}`);
      ctx.report({ state: 'failed', reason: describeError(err) });
    });
  }

  /** Stop the instance (SIGTERM, then SIGKILL after its stop grace); resolves once nothing of it runs. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#done;
  }

  async #loop(): Promise<void> {
    const { spec, log } = this.#ctx;
    const r = spec.restart;
    const signal = this.#stop.signal;
    if (needsShell(spec) && !this.#ctx.allowShell) {
      this.#ctx.report({
        state: 'failed',
        reason: `${ErrorCodes.SHELL_DISABLED}: this worker does not run shell commands (the service's ${spec.cmd !== undefined ? 'cmd' : 'health check'}); start it with allowShell (--allow-shell), or give the service a handler and a tcp or http health check`,
      });
      return;
    }
    mkdirSync(this.#ctx.logDir, { recursive: true, mode: 0o700 });
    const backoff = new Backoff({
      initialMs: r.initialDelayMs,
      maxMs: Math.max(r.initialDelayMs, r.maxDelayMs),
    });
    const ends: number[] = [];
    let restarts = 0;
    while (!signal.aborted) {
      const end = await this.#runOnce();
      // Stopped: the runner gives up the endpoint and the fence together (releaseNodes).
      if (signal.aborted) return;
      if (end.clean && r.policy === 'on-failure') {
        this.#ctx.report({ state: 'exited', lastExit: end.reason, pid: undefined }, false);
        return;
      }
      const now = performance.now();
      ends.push(now);
      while (ends.length > 0 && now - ends[0]! > r.windowMs) ends.shift();
      if (ends.length > r.maxRestarts) {
        const reason = `crash loop: ended ${ends.length} times within ${r.windowMs} ms (restart.maxRestarts ${r.maxRestarts}); last: ${end.reason}`;
        log.warn({ service: this.#ctx.service, instance: this.#ctx.instance }, reason);
        this.#ctx.report({ state: 'failed', reason, lastExit: end.reason, pid: undefined }, false);
        return;
      }
      if (end.uptimeMs >= r.resetAfterMs) backoff.reset();
      const delay = Math.round(backoff.next());
      restarts++;
      this.#ctx.report(
        {
          state: 'backoff',
          restarts,
          lastExit: end.reason,
          reason: `restarting in ${delay} ms`,
          pid: undefined,
        },
        false,
      );
      await sleep(delay, undefined, { signal }).catch(() => {});
    }
  }

  /** One run of the program, until it ends, turns unhealthy, or the instance is stopped. */
  async #runOnce(): Promise<RunEnd> {
    const { spec, instance: n } = this.#ctx;
    const ports = instancePorts(spec, n);
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const [k, v] of Object.entries(spec.env)) env[k] = expand(v, n, ports);
    env['ZKFARM_SERVICE'] = this.#ctx.service;
    env['ZKFARM_INSTANCE'] = String(n);
    env['ZKFARM_REVISION'] = String(this.#ctx.revision);
    const first = Object.values(ports)[0];
    if (first !== undefined) env['ZKFARM_PORT'] = String(first);
    for (const [k, v] of Object.entries(ports)) env[`ZKFARM_PORT_${k.toUpperCase()}`] = String(v);
    const cwd = spec.cwd ? expand(spec.cwd, n, ports) : this.#ctx.logDir;
    const started = performance.now();
    const runStop = new AbortController();
    const stopped = new Promise<'stopped'>((resolve) => {
      if (this.#stop.signal.aborted) resolve('stopped');
      this.#stop.signal.addEventListener('abort', () => resolve('stopped'), { once: true });
    });
    const program = this.#startProgram(env, cwd, runStop.signal);
    // Without a health check it serves once started: the record and the endpoint in one write.
    this.#ctx.report(
      { state: spec.health ? 'running' : 'healthy', pid: program.pid, since: Date.now(), reason: undefined },
      spec.health ? undefined : true,
    );
    const health = spec.health
      ? monitorHealth(
          spec.health,
          () => probe(spec.health!, (s) => expand(s, n, ports), env, cwd),
          {
            healthy: (detail) => this.#ctx.report({ state: 'healthy', reason: detail }, true),
          },
          runStop.signal,
        )
      : new Promise<string>(() => {});
    const first3 = await Promise.race([
      program.ended.then((e) => ({ kind: 'exit' as const, ...e })),
      health.then((reason) => ({ kind: 'unhealthy' as const, reason })),
      stopped.then(() => ({ kind: 'stopped' as const })),
    ]);
    // Unhealthy: the endpoint goes with the record, before the program is stopped (its grace).
    if (first3.kind === 'unhealthy') this.#ctx.report({ state: 'unhealthy', reason: first3.reason }, false);
    runStop.abort();
    const exit = first3.kind === 'exit' ? first3 : await program.stop(spec.stopGraceMs);
    const uptimeMs = performance.now() - started;
    if (first3.kind === 'unhealthy') return { reason: first3.reason, clean: false, uptimeMs };
    return { reason: exit.reason, clean: exit.clean, uptimeMs };
  }

  #startProgram(env: NodeJS.ProcessEnv, cwd: string, signal: AbortSignal): Program {
    const { spec } = this.#ctx;
    if (spec.cmd !== undefined) {
      const p = ServiceProcess.start({
        cmd: spec.cmd,
        cwd,
        env,
        logDir: this.#ctx.logDir,
        logs: { maxBytes: spec.logs.maxBytes, keep: spec.logs.keep },
      });
      const describe = (e: { code: number | null; signal: string | null; error?: Error }) =>
        e.error
          ? { reason: `could not start: ${e.error.message}`, clean: false }
          : e.code !== null
            ? { reason: `exited with code ${e.code}`, clean: e.code === 0 }
            : { reason: `killed by ${e.signal ?? 'a signal'}`, clean: false };
      return {
        pid: p.pid,
        ended: p.exited.then(describe),
        stop: (grace) => p.stop(grace).then(describe),
      };
    }
    return this.#startHandler(signal);
  }

  #startHandler(runSignal: AbortSignal): Program {
    const { spec, runHandler } = this.#ctx;
    const ac = new AbortController();
    runSignal.addEventListener('abort', () => ac.abort(), { once: true });
    const id = `service-${this.#ctx.service}-${this.#ctx.instance}`;
    const ended = (
      runHandler
        ? runHandler(id, { handler: spec.handler!, input: spec.input, timeoutMs: 0 }, ac.signal)
        : Promise.resolve({ error: 'this worker cannot run handler services' })
    ).then((r) =>
      r.error
        ? { reason: `handler failed: ${r.error}`, clean: false }
        : { reason: 'handler returned', clean: true },
    );
    return {
      pid: undefined,
      ended,
      stop: async (grace) => {
        ac.abort();
        const late = sleep(grace, undefined, { ref: false }).then(() => ({
          reason: `handler still running ${grace} ms after its signal`,
          clean: false,
        }));
        return Promise.race([ended, late]);
      },
    };
  }
}

interface Program {
  pid: number | undefined;
  ended: Promise<{ reason: string; clean: boolean }>;
  stop(graceMs: number): Promise<{ reason: string; clean: boolean }>;
}
