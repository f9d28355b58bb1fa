/**
 * `runtime ...` as a user runs it: a child process of the CLI (compiled, or from source: runtime-bin.ts), its output collected as it
 * comes, every wait bounded. Children still running when a test file ends are killed by `killRuntimes()`.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { runtimeArgv } from './runtime-bin.js';

const ROOT = join(import.meta.dirname, '..', '..');
const children = new Set<ChildProcess>();

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A running `runtime ...` child. */
export class Cli {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  readonly done: Promise<Result>;

  /** `nodeArgs` go to node before the CLI's entry (e.g. `--import` of a probe). */
  constructor(args: string[], options: { env: NodeJS.ProcessEnv; input?: string; nodeArgs?: string[] }) {
    this.proc = spawn(process.execPath, [...(options.nodeArgs ?? []), ...runtimeArgv(), ...args], {
      cwd: ROOT,
      env: options.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    children.add(this.proc);
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.stdout += d.toString();
    });
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    if (options.input !== undefined) this.proc.stdin!.end(options.input);
    this.done = new Promise((resolve) => {
      this.proc.once('close', (code, signal) => {
        children.delete(this.proc);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  /** Wait until stderr matches (returns the match), or fail (killing the child) after `timeoutMs`. */
  waitForErr(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return this.#waitFor('stderr', re, timeoutMs);
  }

  /** Wait until stdout (where the logs go) matches, or fail (killing the child) after `timeoutMs`. */
  waitForOut(re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return this.#waitFor('stdout', re, timeoutMs);
  }

  async #waitFor(stream: 'stdout' | 'stderr', re: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.done.then(() => {
      exited = true;
    });
    for (;;) {
      const m = this[stream].match(re);
      if (m) return m;
      if (exited) assert.fail(`runtime exited before ${re} on ${stream}; stderr:\n${this.stderr}`);
      if (Date.now() > deadline) {
        this.proc.kill('SIGKILL');
        assert.fail(`no ${re} on ${stream} within ${timeoutMs} ms; stderr:\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The exit result, or fail (killing the child) after `timeoutMs`. */
  async exit(timeoutMs: number): Promise<Result> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.proc.kill('SIGKILL');
        reject(new Error(`runtime did not exit within ${timeoutMs} ms; stderr:\n${this.stderr}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** SIGKILL every `runtime` child still running (for `after` hooks). */
export function killRuntimes(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}
