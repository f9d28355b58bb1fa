/**
 * CPU time from /proc (Linux): of a process, or of one thread. A process's utime + stime are in clock
 * ticks (CLK_TCK, 100 per second on Linux), so a figure is good to 10 ms. A thread's comes from its
 * schedstat, in nanoseconds, where the kernel keeps it: a role thread that worked 3 ms reads 3 ms, not 0
 * or 10, which matters when eight worker threads share a short measurement.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | undefined;

/** Clock ticks per second (getconf CLK_TCK; 100 when it cannot be asked). */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** utime + stime in ms of a /proc stat file, or NaN when it cannot be read (no /proc, process gone). */
export function statCpuMs(path: string): number {
  try {
    const text = readFileSync(path, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / clockTicks();
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU time (ms) of the thread whose /proc directory is `dir` (`/proc/thread-self`,
 * `/proc/<pid>/task/<tid>`): schedstat's run time in nanoseconds, else stat's clock ticks; NaN when
 * neither can be read.
 */
export function threadCpuMsOf(dir: string): number {
  try {
    const ns = Number(readFileSync(`${dir}/schedstat`, 'utf8').split(' ')[0]);
    if (ns > 0) return ns / 1e6;
  } catch {
    // No schedstat in this kernel: the clock ticks below.
  }
  return statCpuMs(`${dir}/stat`);
}

/** CPU time (ms) the calling thread has used so far; NaN where /proc/thread-self is missing. */
export function threadCpuMs(): number {
  return threadCpuMsOf('/proc/thread-self');
}
