/**
 * The embedded ZooKeeper's heap, worked out from what the farm admits.
 *
 * ZooKeeper keeps its whole data tree in memory. Besides the tree it keeps the last 500 committed
 * write requests (`zookeeper.commitLogCount`, for followers to catch up: kept by a standalone server
 * too, and never fewer than 500) and the requests in flight. What the farm lets in:
 *
 *   queued tasks      maxQueue (a submitter's limit, 20,000)   × up to 512 KiB (MULTI_MAX_BYTES)
 *   held by workers   the same tasks, moved to /assign (the queue limit counts /tasks only)
 *   kept results      retention.maxCount (10,000)             × up to 256 KiB (a status's limit)
 *   commit log        500 writes                               × up to 512 KiB (a multi's limit)
 *   znodes            queuedTasks (the deep-queue backlog: 1,000,000) + kept results  × NODE_BYTES
 *
 * The last line is what a million small tasks cost: the backlog lets a queue hold far more than the
 * inbox bound, and each znode costs ZooKeeper its path, its DataNode and stat, its entry in its parent's
 * children and a small task's data, measured in the `scale` benchmark (benchmarks/README.md).
 *
 * The heap asked for is that live data × GC_HEADROOM (the serial collector needs room to copy the
 * young generation, and a byte[] in Java is a little more than its bytes) + BASE_HEAP_BYTES, but never
 * more than MAX_HEAP_SHARE of this machine's memory: with the defaults the worst case is ~12.6 GiB of
 * live data, which a small machine does not have. When the plan is capped, `tasksThatFit` says how many
 * 512 KiB tasks the heap holds besides the rest, and the runtime says so (queue limits in docs).
 */
import { totalmem } from 'node:os';
import { SERVER_GC_OPTS } from '../zk/server-config.js';

export const MIB = 1024 * 1024;
/** What ZooKeeper needs with no data: classes, threads, connection buffers. */
export const BASE_HEAP_BYTES = 128 * MIB;
export const GC_HEADROOM = 1.5;
/** The heap never asks for more than this share of the machine's memory. */
export const MAX_HEAP_SHARE = 0.5;
/**
 * ZooKeeper's heap per small znode (a no-op task of ~100 bytes, or its status of ~200): measured live
 * heap after a full GC ÷ znodes in the `scale` benchmark, rounded up (benchmarks/results/scale.md).
 */
export const NODE_BYTES = 600;
/** The queue a default farm is sized to hold: a million tasks waiting (inbox and backlog). */
export const DEEP_QUEUE_TASKS = 1_000_000;
/**
 * zoo.cfg of the embedded server: keep the last 3 snapshots and their logs, purged every hour (a million
 * tasks write a few million transactions: a snapshot every 100,000, ZooKeeper's snapCount, each the
 * whole tree; without a purge they fill the disk).
 */
export const EMBEDDED_SERVER_CONFIG: Readonly<Record<string, number>> = {
  'autopurge.snapRetainCount': 3,
  'autopurge.purgeInterval': 1,
};
/** Below this the JVM's own compressed pointers stop working; no point asking for more. */
const MAX_HEAP_BYTES = 31 * 1024 * MIB;
const COMMIT_LOG_WRITES = 500;

export interface AdmissionFigures {
  /** Tasks a submitter lets wait in /tasks. @defaultValue 20000 */
  maxQueue?: number;
  /** Largest task the farm accepts (bytes). @defaultValue 512 KiB */
  taskBytes?: number;
  /** Results kept by status retention. @defaultValue 10000 */
  keptResults?: number;
  /** Largest status (bytes). @defaultValue 256 KiB */
  statusBytes?: number;
  /** Largest request (a multi), for the commit log. @defaultValue 512 KiB */
  requestBytes?: number;
  /** Small tasks waiting in the queues (inbox and backlog), by their znodes. @defaultValue 1000000 */
  queuedTasks?: number;
}

export interface HeapPlan {
  /** -Xmx in MiB. */
  heapMb: number;
  /** Live data the farm's limits allow, in bytes (queue + held + results + commit log). */
  admitted: number;
  /** True when the machine's memory capped the heap below what the limits admit. */
  capped: boolean;
  /** How many tasks of `taskBytes` the heap holds next to the kept results and the commit log. */
  tasksThatFit: number;
}

/** The heap for these admission figures on a machine with `memory` bytes (see the module comment). */
export function planEmbeddedHeap(figures: AdmissionFigures = {}, memory: number = totalmem()): HeapPlan {
  const maxQueue = figures.maxQueue ?? 20_000;
  const taskBytes = figures.taskBytes ?? 512 * 1024;
  const kept = (figures.keptResults ?? 10_000) * (figures.statusBytes ?? 256 * 1024);
  const commitLog = COMMIT_LOG_WRITES * (figures.requestBytes ?? 512 * 1024);
  const nodes = ((figures.queuedTasks ?? DEEP_QUEUE_TASKS) + (figures.keptResults ?? 10_000)) * NODE_BYTES;
  // Tasks are counted twice: a full queue, and as many again held by workers.
  const admitted = 2 * maxQueue * taskBytes + kept + commitLog + nodes;
  const wanted = BASE_HEAP_BYTES + admitted * GC_HEADROOM;
  const ceiling = Math.min(MAX_HEAP_BYTES, Math.max(BASE_HEAP_BYTES * 4, memory * MAX_HEAP_SHARE));
  const heap = Math.min(wanted, ceiling);
  const forTasks = (heap - BASE_HEAP_BYTES) / GC_HEADROOM - kept - commitLog - nodes;
  return {
    heapMb: Math.ceil(heap / MIB),
    admitted,
    capped: wanted > ceiling,
    tasksThatFit: Math.max(0, Math.floor(forTasks / taskBytes)),
  };
}

/** JVM options for the plan (the collector zkfarm's servers use, and the heap). */
export function embeddedJavaOpts(plan: HeapPlan): string[] {
  return [`-Xmx${plan.heapMb}m`, ...SERVER_GC_OPTS];
}
