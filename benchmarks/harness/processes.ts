/**
 * Child processes of the scenarios that run the farm as its users do: `runtime` itself (compiled, or
 * from source when the harness runs from source), and other programs, with their output kept and every
 * wait bounded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { FROM_SOURCE } from './child.js';
import { waitUntil } from './farm-fixture.js';
import { repoRoot } from './machine.js';

/** Node's arguments that start `runtime` the way this harness runs (before runtime's own). */
export function runtimeArgs(): string[] {
  return FROM_SOURCE
    ? ['--import', 'tsx', join(repoRoot(), 'src', 'cli', 'main.ts')]
    : [join(repoRoot(), 'bin', 'runtime.js')];
}

/** A harness script (benchmarks/harness/<name>.ts) as Node's arguments, compiled or from source. */
export function harnessScriptArgs(name: string): string[] {
  return FROM_SOURCE
    ? ['--import', 'tsx', join(repoRoot(), 'benchmarks', 'harness', `${name}.ts`)]
    : [join(repoRoot(), 'dist', 'benchmarks', 'harness', `${name}.js`)];
}

export interface Proc {
  child: ChildProcess;
  /** stdout and stderr as they came (the last `keep` characters). */
  output(): string;
  /** Resolves with the exit code (null after a signal) once the process is gone. */
  gone: Promise<number | null>;
  /** Send `signal`, SIGKILL after `timeoutMs`; resolves once it is gone. Safe when already gone. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** Wait until the output matches; fails when the process exits first or after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs: number, what: string, signal: AbortSignal): Promise<RegExpMatchArray>;
}

/** Start `node <args>` in the repository root with `env` added; keeps the last `keep` characters. */
export function startNode(args: string[], env: NodeJS.ProcessEnv, keep = 20_000): Proc {
  const child = spawn(process.execPath, args, {
    cwd: repoRoot(),
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const add = (b: Buffer) => {
    out = (out + b.toString('utf8')).slice(-keep);
  };
  child.stdout!.on('data', add);
  child.stderr!.on('data', add);
  const gone = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    output: () => out,
    gone,
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (exited()) return gone;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await gone;
      clearTimeout(t);
      return code;
    },
    async waitFor(re, timeoutMs, what, signal) {
      let m: RegExpMatchArray | null = null;
      await waitUntil(
        () => {
          m = out.match(re);
          if (!m && exited()) throw new Error(`${what}: the process exited first: ${out.slice(-2000)}`);
          return m !== null;
        },
        timeoutMs,
        what,
        signal,
      );
      return m!;
    },
  };
}
