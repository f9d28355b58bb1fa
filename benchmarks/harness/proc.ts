/**
 * CPU time and memory from /proc (Linux), for the processes a benchmark measures: its own process and
 * main thread, the ZooKeeper java process, redis-server.
 *
 * utime + stime of /proc/<pid>/stat count every thread of the process (java's GC and I/O threads,
 * redis' background threads), in clock ticks (CLK_TCK, 100 per second on Linux): good to 10 ms. One
 * thread's time comes from /proc/self/task/<tid>/schedstat, in nanoseconds (see host/proc-stat.ts).
 */
import { readFileSync } from 'node:fs';
import { statCpuMs, threadCpuMsOf } from '../../src/host/proc-stat.js';

/** CPU time (ms) a process has used so far, all its threads. */
export function processCpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/stat`);
}

/** CPU time (ms) this process's main thread has used so far (on Linux its tid is the pid). */
export function mainThreadCpuMs(): number {
  return threadCpuMsOf(`/proc/self/task/${process.pid}`);
}

/** CPU time (ms) of this whole process (every thread), from Node itself. */
export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Resident set size of this process in MB (10^6 bytes). */
export function rssMb(): number {
  return process.memoryUsage().rss / 1e6;
}

/** Load average over the last minute (a hint of how busy the machine was). */
export function loadAverage(): number[] {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

/** A snapshot of the CPU counters a measurement compares before and after. */
export interface CpuSnapshot {
  process: number;
  main: number;
  server: number;
}

export function cpuSnapshot(serverPid: number): CpuSnapshot {
  return { process: ownCpuMs(), main: mainThreadCpuMs(), server: processCpuMs(serverPid) };
}

export function cpuSince(
  before: CpuSnapshot,
  serverPid: number,
): { processMs: number; mainThreadMs: number; serverMs: number } {
  const now = cpuSnapshot(serverPid);
  return {
    processMs: Math.round(now.process - before.process),
    mainThreadMs: Math.round(now.main - before.main),
    serverMs: Math.round(now.server - before.server),
  };
}
