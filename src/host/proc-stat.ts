/**
 * CPU time from /proc (Linux): of a process, or of one thread. utime + stime are in clock ticks
 * (CLK_TCK, 100 per second on Linux), so a figure is good to 10 ms.
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

/** CPU time (ms) the calling thread has used so far; NaN where /proc/thread-self is missing. */
export function threadCpuMs(): number {
  return statCpuMs('/proc/thread-self/stat');
}
