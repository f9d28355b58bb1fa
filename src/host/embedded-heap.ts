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
 *
 * The heap asked for is that live data × GC_HEADROOM (the serial collector needs room to copy the
 * young generation, and a byte[] in Java is a little more than its bytes) + BASE_HEAP_BYTES, but never
 * more than MAX_HEAP_SHARE of this machine's memory: with the defaults the worst case is ~12.6 GiB of
 * live data, which a small machine does not have. When the plan is capped, `tasksThatFit` says how many
 * 512 KiB tasks the heap holds besides the rest, and the runtime says so (queue limits in docs).
 */
import { totalmem } from 'node:os';

export const MIB = 1024 * 1024;
/** What ZooKeeper needs with no data: classes, threads, connection buffers. */
export const BASE_HEAP_BYTES = 128 * MIB;
export const GC_HEADROOM = 1.5;
/** The heap never asks for more than this share of the machine's memory. */
export const MAX_HEAP_SHARE = 0.5;
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
  // Tasks are counted twice: a full queue, and as many again held by workers.
  const admitted = 2 * maxQueue * taskBytes + kept + commitLog;
  const wanted = BASE_HEAP_BYTES + admitted * GC_HEADROOM;
  const ceiling = Math.min(MAX_HEAP_BYTES, Math.max(BASE_HEAP_BYTES * 4, memory * MAX_HEAP_SHARE));
  const heap = Math.min(wanted, ceiling);
  const forTasks = (heap - BASE_HEAP_BYTES) / GC_HEADROOM - kept - commitLog;
  return {
    heapMb: Math.ceil(heap / MIB),
    admitted,
    capped: wanted > ceiling,
    tasksThatFit: Math.max(0, Math.floor(forTasks / taskBytes)),
  };
}

/** JVM options for the plan (the collector zkfarm's servers use, and the heap). */
export function embeddedJavaOpts(plan: HeapPlan): string[] {
  return [`-Xmx${plan.heapMb}m`, '-XX:+UseSerialGC'];
}
