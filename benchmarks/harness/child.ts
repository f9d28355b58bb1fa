/**
 * Runs one measurement in a fresh Node process (benchmarks/harness/worker-scenario.ts), so that no measurement
 * inherits another's heap, JIT state, threads or sockets: the farm and BullMQ each start cold, every time.
 *
 * The child runs the same way as this process: from source under tsx when this file is .ts
 * (`node --import tsx benchmarks/harness/main.ts`), from compiled JS when it is .js (`runtime bench` after
 * `npm run build`). Role threads follow their host, so source mode also loads tsx in every role thread;
 * the report says which mode ran.
 *
 * The job goes in argv as JSON; progress and the result come back over the IPC channel. A child that
 * overruns its time is sent SIGTERM (it stops its farm and exits), then SIGKILL 10 s later.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import type { ChildMessage, Job } from './types.js';

const here = import.meta.url;
export const FROM_SOURCE = here.endsWith('.ts');
const ENTRY = new URL(FROM_SOURCE ? './worker-scenario.ts' : './worker-scenario.js', here);

export interface RunChildOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, label?: string) => void;
  /** Write CPU profiles (every thread) into this directory. */
  cpuProfDir?: string;
}

const running = new Set<ChildProcess>();

/** SIGKILL every measurement process still running (a second Ctrl-C). */
export function killChildren(): void {
  for (const c of running) c.kill('SIGKILL');
}

export function runChild<T>(job: Job, options: RunChildOptions): Promise<T> {
  const execArgv = [...(FROM_SOURCE ? ['--import', 'tsx'] : [])];
  if (options.cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`);
  const child = spawn(process.execPath, [...execArgv, new URL(ENTRY).pathname, JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: {
      ...process.env,
      ZKFARM_BENCH_CHILD: '1',
      ...(options.cpuProfDir ? { ZKFARM_BENCH_PROFILE_DIR: options.cpuProfDir } : {}),
    },
  });
  running.add(child);
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    }
    if (tail.length > 40) tail.splice(0, tail.length - 40);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return new Promise<T>((resolve, reject) => {
    let result: { value: unknown } | undefined;
    let failure: string | undefined;
    let why: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const terminate = (reason: string) => {
      if (why) return;
      why = reason;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    };
    const timer = setTimeout(
      () => terminate(`it did not finish within ${Math.round(options.timeoutMs / 1000)} s`),
      options.timeoutMs,
    );
    const onAbort = () => terminate('the run was interrupted');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'progress') options.onProgress?.(m.done, m.total, m.label);
      else if (m.type === 'result') result = { value: m.result };
      else if (m.type === 'error') failure = m.message;
    });
    child.once('error', (err) => {
      failure ??= `could not start the measurement process: ${err.message}`;
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      running.delete(child);
      options.signal?.removeEventListener('abort', onAbort);
      if (result && !why) return resolve(result.value as T);
      const cause =
        why ?? failure ?? `it exited with ${signal ? `signal ${signal}` : `code ${code}`} and no result`;
      const lines = tail.filter((l) => !l.startsWith('{"level":30')).slice(-12);
      reject(
        new Error(
          `${job.kind} measurement failed: ${cause}${lines.length ? `\n    last output:\n      ${lines.join('\n      ')}` : ''}`,
        ),
      );
    });
  });
}
