/**
 * What the leader publishes about the tasks that wait, and why (in /master, read by `runtime status`,
 * the dashboard and a submitting stream's per-queue backpressure): the shapes QueueView.summary fills.
 * Types only; queue-view.ts re-exports them.
 */
import type { Need } from './assignment-policy.js';

export interface BlockedNeed {
  /** What the waiting tasks need: `shell` or `handler:<name>`. */
  needs: Need;
  tasks: number;
  /** Why no worker takes them now. */
  reason: string;
}

/** What waits in one queue, and why. */
export interface QueueWait {
  queue: string;
  /** Tasks read and waiting, by priority (only the priorities that have some). */
  byPriority: Record<string, number>;
  /** Read and waiting (the sum of `byPriority`). */
  waiting: number;
  /** Waiting for their `notBefore`. */
  delayed: number;
  /** Why tasks of this queue wait now, with how many each reason holds back. */
  blocked: Array<{ reason: string; tasks: number; needs?: Need }>;
  /** Of `waiting`, the tasks in the deep-queue backlog (/queues/<queue>/p<priority>/...). */
  backlog?: number;
}

/** A backlog lane's size, for the summary. */
export interface BacklogLane {
  queue: string;
  priority: number;
  tasks: number;
}

/** What the leader publishes about tasks that wait for a reason (in /master, for status and the dashboard). */
export interface QueueSummary {
  /** Tasks no ready worker can take now, by need (every queue together). */
  blocked: BlockedNeed[];
  /** Tasks waiting for their `notBefore` (with those in the due-time area, /delayed). */
  delayed: number;
  /** Of `delayed`, the tasks in the due-time area /delayed (their queues are not read until due). */
  delayedArea?: number;
  /** Tasks the leader cannot move, the oldest first (at most 20 listed; `setAsideCount` is exact). */
  setAside: Array<{ id: string; reason: string }>;
  setAsideCount: number;
  /** Tasks in /tasks not read yet (their queue is not known yet). */
  unread?: number;
  /** Per queue, the queues with tasks read, by name. */
  queues?: QueueWait[];
  /** Tasks assigned and not finished, per queue (the leader fills it in). */
  running?: Record<string, number>;
}
