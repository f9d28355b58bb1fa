/**
 * The leader's care of /service-placements/<worker> beyond single placements: which gone workers
 * handed their instances over when they stopped, and pruning the directories of workers that are gone.
 *
 * Znodes: reads the data of /service-placements/<worker> (the hand-over mark, written by the worker's
 * runner: runner.ts) and its children; removes a gone worker's directory, with any placement in it
 * that no instance record names (an orphan), once nothing placed there is still to move.
 *
 * Guarantees:
 * - A hand-over mark is read only for a worker already seen gone from /workers, after that listing:
 *   the worker wrote it (after stopping every instance) before its session ended, and a later session
 *   of the worker clears it before it runs anything, so a mark read here is true of the session that
 *   ended.
 * - A directory is removed in one multi with every child it had when listed (a child added meanwhile
 *   fails the multi), and only for a worker missing from the /workers listing of the same pass; a
 *   worker that comes back meanwhile is not harmed: its runner's cache copes with a missing
 *   directory, and the next placement on it makes the directory again.
 *
 * SUSPENDED / LOST: reads and removals fail; the reconciler's pass is retried (reconciler.ts), and a
 * removal refused because something changed is simply planned again by the next pass.
 */
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import {
  decode,
  type HandOver,
  type InstanceRecord,
  parsePlacementKey,
  placementsDir,
  SERVICE_PATHS,
} from './model.js';

/** Of `gone` workers, those whose last session stopped its instances and handed them over. */
export async function readHandOvers(client: ZkClient, gone: readonly string[]): Promise<Set<string>> {
  const data = await client.getDataMany(gone.map((w) => placementsDir(w)));
  const out = new Set<string>();
  gone.forEach((w, i) => {
    const d = data[i];
    if (d && !(d instanceof Error) && decode<HandOver>(d.data)?.handedOver === true) out.add(w);
  });
  return out;
}

/**
 * Remove the placement directories of workers not in `live` that hold nothing still placed there
 * (`placedOn(service, n)` is the instance record, which names the worker it is placed on). Returns the
 * workers whose directory was removed.
 */
export async function prunePlacements(
  client: ZkClient,
  live: ReadonlySet<string>,
  placedOn: (service: string, instance: number) => InstanceRecord | undefined,
  mayPrune: (worker: string) => boolean = () => true,
): Promise<string[]> {
  let dirs: string[];
  try {
    dirs = await client.getChildren(SERVICE_PATHS.placements);
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return [];
    throw err;
  }
  const pruned: string[] = [];
  for (const worker of dirs.filter((w) => !live.has(w) && mayPrune(w))) {
    const dir = placementsDir(worker);
    const keys = await client.getChildren(dir).catch((err) => {
      if (isZkError(err, 'NO_NODE')) return undefined;
      throw err;
    });
    if (!keys) continue;
    const needed = keys.some((k) => {
      const p = parsePlacementKey(k);
      const inst = p && placedOn(p.service, p.instance);
      return inst?.worker === worker && inst.state === 'placed';
    });
    if (needed) continue;
    const tx = client.transaction();
    for (const k of keys) tx.remove(`${dir}/${k}`);
    tx.remove(dir);
    try {
      await tx.commit();
      pruned.push(worker);
    } catch (err) {
      // A child came or went meanwhile: the next pass looks again.
      if (!isZkError(err)) throw err;
    }
  }
  return pruned;
}
