/**
 * No stray Java processes, ever: the registry of every ZooKeeper server process the launcher started
 * and has not seen exit, and of the temporary directories it must remove, with the process hooks that
 * clean both up however this process ends.
 *
 * - Live servers are SIGKILLed synchronously on process `exit`, on an uncaught exception (monitor only:
 *   the crash still happens), and on SIGINT/SIGTERM/SIGHUP when nobody else listens for that signal
 *   (then the signal is re-raised so its default action still applies).
 * - Only a pid whose exit has not been seen is ever signalled, so a reused pid is never hit: the
 *   launcher forgets a pid the moment its process exits.
 * - The signal handlers are installed while a server runs and removed when the last one exits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** pid (= process group id) of every java we started whose exit we have not seen yet. */
const livePids = new Set<number>();
/** Temporary directories we created and must remove. */
const ownedTempDirs = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const signalHandlers = new Map<NodeJS.Signals, () => void>();
let exitHooksInstalled = false;

/** A server process started: kill its group if this process ends first. */
export function trackServerPid(pid: number): void {
  livePids.add(pid);
  installHooks();
}

/** A server process exited: never signal its pid again. */
export function forgetServerPid(pid: number): void {
  livePids.delete(pid);
  if (livePids.size === 0) uninstallSignalHandlers();
}

/** A fresh temp dir; `removeAtExit` also removes it when the process exits. */
export function makeTempDir(prefix: string, removeAtExit: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (removeAtExit) ownedTempDirs.add(dir);
  return dir;
}

/** Remove a temp dir now (and no longer at exit). */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  ownedTempDirs.delete(dir);
}

function killAllSync(): void {
  for (const pid of livePids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function onProcessExit(): void {
  killAllSync();
  for (const dir of ownedTempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort while exiting
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  if (process.listenerCount(sig) > 1) return; // someone else owns this signal; our 'exit' hook still runs
  onProcessExit(); // dying by a signal does not emit 'exit'
  uninstallSignalHandlers();
  process.kill(process.pid, sig); // default action, now that our listener is gone
}

function installHooks(): void {
  if (!exitHooksInstalled) {
    exitHooksInstalled = true;
    process.on('exit', onProcessExit);
    process.on('uncaughtExceptionMonitor', killAllSync);
  }
  for (const sig of SIGNALS) {
    if (signalHandlers.has(sig)) continue;
    const handler = () => onSignal(sig);
    signalHandlers.set(sig, handler);
    process.on(sig, handler);
  }
}

function uninstallSignalHandlers(): void {
  for (const [sig, handler] of signalHandlers) process.removeListener(sig, handler);
  signalHandlers.clear();
}
