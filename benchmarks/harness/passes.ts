/**
 * The two passes of a throughput or peer measurement, and how the tables name them.
 *
 * A measurement process runs N tasks (jobs) on a fresh farm (queue), then N more on the same one once
 * the first N completed. The first pass is what a farm started for one batch sees: every role thread
 * of the farm is its own V8 isolate, and ten isolates warming up their own copy of the hot code make
 * the first N tasks largely warm-up. The second pass is what a farm that has been running sees, the
 * steady state. BullMQ gets the same two passes on one Queue and its Workers, so each ratio compares
 * like with like. A result's own fields are its cold pass (what the harness always measured), its
 * `warm` field the second pass.
 */
import { num } from './stats.js';

export type PassName = 'cold' | 'warm';

export const PASS_NAMES: readonly PassName[] = ['cold', 'warm'];

/** The figures of one pass of a result: the result itself for `cold`, its `warm` field for `warm`. */
export function passOf<P>(run: P & { warm?: P | undefined }, pass: PassName): P | undefined {
  return pass === 'cold' ? run : run.warm;
}

/** `cold` or `steady state`, for rows that follow a row with the long label. */
export const PASS_SHORT: Record<PassName, string> = { cold: 'cold', warm: 'steady state' };

/** `cold (first 20,000 after start)`, `steady state (second 20,000 after start)`. */
export function passLabel(pass: PassName, n: number): string {
  return pass === 'cold'
    ? `cold (first ${num(n)} after start)`
    : `steady state (second ${num(n)} after start)`;
}

/** The note under a table with both passes: `what` is counted (`tasks`), `on` what it ran on (`the same farm`). */
export function passesNote(n: number, what: string, on: string): string {
  return (
    `Cold: the first ${num(n)} ${what} after start. Steady state: ${num(n)} more on ${on} in the same ` +
    `process, submitted once the first ${num(n)} had completed (and kept: ${num(n)} results are in /status, ` +
    `or completed jobs in Redis, during the second); each pass timed, counted and measured on its own.`
  );
}
