/**
 * What a leader counts over one term of the election (Leader.stats(); Master.stats() adds the leader
 * changes and keeps the last term's counts while no term runs). Plain counters, kept by the leader as
 * ZooKeeper confirms its moves: a move counts once it is written, never when it is only planned.
 *
 * Znodes: none. SUSPENDED / LOST: a term that ends stops counting; the next term starts from zero.
 */
import type { Move } from './moves.js';

export interface LeaderStats {
  assigned: number;
  givenBack: number;
  rejected: number;
  queued: number;
  workers: number;
  since: number;
  /** Tasks set aside this term (they could not be moved). */
  setAside: number;
  /** Tasks moved into the deep-queue backlog this term. */
  shelved: number;
  /** Waiting tasks cancelled this term (cancel-desk.ts). */
  cancelled?: number;
  /** Tasks moved into the due-time area (/delayed) this term. */
  delayed?: number;
  /** Passes over the due-time area this term (each wakes for the next task or hour due). */
  delayPasses?: number;
}

export function emptyLeaderStats(): LeaderStats {
  return {
    assigned: 0,
    givenBack: 0,
    rejected: 0,
    queued: 0,
    workers: 0,
    since: 0,
    setAside: 0,
    shelved: 0,
  };
}

/** Count a move of the leader's that ZooKeeper confirmed, by its kind (cancel-desk.ts counts the cancels). */
export function countWritten(stats: LeaderStats, m: Move): void {
  if (m.kind === 'assign') stats.assigned++;
  else if (m.kind === 'shelve') stats.shelved++;
  else if (m.kind === 'delay') stats.delayed = (stats.delayed ?? 0) + 1;
  else if (m.kind !== 'cancel') stats.rejected++;
}

/** Count the moves that gave a lost worker's tasks back (give-back.ts): requeued, or failed. */
export function countGivenBack(stats: LeaderStats, moves: readonly Move[]): void {
  stats.givenBack += moves.filter((m) => m.kind === 'requeue').length;
  stats.rejected += moves.filter((m) => m.kind === 'fail').length;
}
