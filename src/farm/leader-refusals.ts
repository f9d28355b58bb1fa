/**
 * How the leader sorts out a move ZooKeeper refused, by the operation that failed (the MultiBatcher
 * recipe names it): a worker gone, a task moved or deleted by someone else, a changed task read again,
 * a task that cannot be moved set aside with its reason. Pure decisions on the leader's parts; no I/O.
 *
 * Znodes: none (the parts it calls do their own reads later).
 * SUSPENDED / LOST: not reached (a refusal is an answer; connection trouble leaves moves unsent).
 */
import type { Refusal } from '../recipes/multi-batcher.js';
import type { Inbox } from './inbox.js';
import type { Move } from './moves.js';
import { taskPath } from './protocol.js';
import type { QueueView } from './queue-view.js';
import type { WorkerRoster } from './worker-roster.js';

/** The leader's parts a refusal changes. */
export interface RefusalHooks {
  view: QueueView;
  inbox: Inbox;
  roster: WorkerRoster;
}

/**
 * A move ZooKeeper refused, sorted out by the operation that failed; 'replan' when the round must go
 * again at once (a worker found gone: its tasks stay queued and go elsewhere).
 */
export function sortOutRefusal(
  { item: m, error, afterLoss, guard }: Refusal<Move>,
  { view, inbox, roster }: RefusalHooks,
): 'replan' | undefined {
  if (guard !== undefined) {
    // The worker's registration is gone: the task stays queued and goes elsewhere, now.
    roster.suspect(m.worker!);
    return 'replan';
  }
  const onTask = error.path === (m.from ?? taskPath(m.id));
  if (error.code === 'NO_NODE' && m.kind === 'shelve' && error.path === m.to) {
    // Its backlog bucket is gone (backlog.ts forgets it): made again when the task is shelved again.
  } else if (error.code === 'NO_NODE' && onTask) {
    view.moved(m.id); // moved or deleted by someone else
  } else if (error.code === 'NO_NODE' && m.kind === 'assign') {
    roster.ensureDir(m.worker!); // its /assign dir is gone: made again, then planned again
  } else if (error.code === 'NODE_EXISTS' && afterLoss) {
    // Our own attempt whose answer was lost may have done it: the next listing tells.
    inbox.dirty = true;
    view.moved(m.id);
  } else if (error.code === 'NODE_EXISTS') {
    inbox.setAside(m.id, `${error.path} already exists (another task with the same id?)`);
  } else if (error.code === 'BAD_VERSION') {
    view.reread(m.id); // changed since it was read: the next round reads it again
  } else {
    const hint = error.code === 'NOT_EMPTY' ? ': the task node has child nodes of its own; remove them' : '';
    inbox.setAside(m.id, `ZooKeeper refused to move it (${error.code} on ${error.path})${hint}`);
  }
  return undefined;
}
