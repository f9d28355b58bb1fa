/**
 * Warming a new ZooKeeper server: a few seconds of the requests a farm makes, so that its JVM has
 * compiled its request path before the first real task meets it. A new JVM runs ZooKeeper interpreted
 * at first and compiles its hot methods as they get called thousands of times; a farm started on a new
 * server pays that on its first tens of thousands of tasks unless the server has already seen them.
 *
 * Two phases, each bounded in time and in count, under a throwaway root that is removed afterwards:
 * - creates: sequential creates, single (32 in flight) and 100 to a multi;
 * - the farm's mix: lanes move batches of nodes the way tasks move — created (sequential, one multi),
 *   listed (getChildren) and read (multiRead), moved to an assignment dir (one multi of creates and
 *   deletes), read again, moved to a status dir — under a persistent recursive watch.
 *
 * And a third, apart (warmUpRequests): one small request of each kind a farm sends, in turn, 32 in
 * flight. What a server does once per request (not per node: reading the packet, queueing it through
 * its request processors, answering) is compiled only after tens of thousands of requests, and for the
 * kinds it has seen, while a farm batches its nodes into few requests. Warmed while the machine is busy
 * (the roles starting), that code is still being compiled when the first real tasks arrive, so `runtime`
 * sends these requests once its roles have started.
 *
 * Used by `runtime` for its embedded ZooKeeper (src/cli/start.ts) and by the benchmark harness for the
 * server it measures on. Stops early when `signal` aborts; a failed request ends the warm-up (the
 * caller decides what a failure means: for `runtime` it is only a warning).
 */

import type { ZkClient } from './client.js';
import { CreateMode } from './client.js';
import { isZkError } from './errors.js';

export interface WarmUpOptions {
  /** The throwaway root (removed afterwards). @defaultValue '/zkfarm-warm-up' */
  root?: string;
  /** The creates phase's bounds. @defaultValue 2500 ms, 100,000 creates */
  createsMs?: number;
  createsMax?: number;
  /** The mix phase's bounds: time, and rounds per lane. @defaultValue 2500 ms, 100 rounds */
  mixMs?: number;
  mixRounds?: number;
  signal?: AbortSignal;
}

export interface WarmUpReport {
  creates: number;
  /** Nodes moved the way tasks move, in the mix. */
  moved: number;
  /** Changes the persistent recursive watch heard. */
  notifications: number;
  createsMs: number;
  mixMs: number;
}

const MIX_LANES = 4;
const MIX_BATCH = 50;
const PAYLOAD = Buffer.from('{"handler":"noop"}');
const STATUS = Buffer.from('{"state":"succeeded","attempts":1}');

/** Warm the server `client` is connected to (see the module comment). */
export async function warmUpServer(client: ZkClient, opts: WarmUpOptions = {}): Promise<WarmUpReport> {
  const root = opts.root ?? '/zkfarm-warm-up';
  const never = new AbortController().signal;
  const signal = opts.signal ?? never;
  try {
    let t0 = Date.now();
    const creates = await warmCreates(client, `${root}/creates`, {
      until: t0 + (opts.createsMs ?? 2500),
      max: opts.createsMax ?? 100_000,
      signal,
    });
    await removeTree(client, `${root}/creates`);
    const createsMs = Date.now() - t0;
    t0 = Date.now();
    const mix = await warmMix(client, `${root}/mix`, {
      until: t0 + (opts.mixMs ?? 2500),
      rounds: opts.mixRounds ?? 100,
      signal,
    });
    return { creates, ...mix, createsMs, mixMs: Date.now() - t0 };
  } finally {
    await removeTree(client, root).catch(() => {});
  }
}

export interface WarmUpRequestsOptions {
  /** The throwaway root (removed afterwards). @defaultValue '/zkfarm-warm-up-requests' */
  root?: string;
  /** Bounds: time, and requests. @defaultValue 1500 ms, 20,000 requests */
  ms?: number;
  max?: number;
  signal?: AbortSignal;
}

/** Warm the server's per-request path (see the module comment); resolves to the requests sent. */
export async function warmUpRequests(client: ZkClient, opts: WarmUpRequestsOptions = {}): Promise<number> {
  const root = opts.root ?? '/zkfarm-warm-up-requests';
  const signal = opts.signal ?? new AbortController().signal;
  try {
    return await warmRequests(client, root, {
      until: Date.now() + (opts.ms ?? 1500),
      max: opts.max ?? 20_000,
      signal,
    });
  } finally {
    await removeTree(client, root).catch(() => {});
  }
}

interface Bounds {
  until: number;
  signal: AbortSignal;
}

async function warmCreates(client: ZkClient, dir: string, b: Bounds & { max: number }): Promise<number> {
  await client.ensurePath(dir);
  let writes = 0;
  const lane = async (multi: boolean) => {
    while (Date.now() < b.until && writes < b.max && !b.signal.aborted) {
      if (multi) {
        const tx = client.transaction();
        for (let i = 0; i < 100; i++) tx.create(`${dir}/n-`, PAYLOAD, CreateMode.PERSISTENT_SEQUENTIAL);
        await tx.commit();
        writes += 100;
      } else {
        await client.createSequential(`${dir}/n-`, PAYLOAD);
        writes++;
      }
    }
  };
  await Promise.all([...Array.from({ length: 32 }, () => lane(false)), lane(true), lane(true)]);
  return writes;
}

/** Lanes of one request at a time, each lane going through the kinds of request a farm sends. */
async function warmRequests(client: ZkClient, dir: string, b: Bounds & { max: number }): Promise<number> {
  await client.ensurePath(dir);
  let requests = 0;
  const lane = async (k: number) => {
    const own = `${dir}/lane-${k}`;
    await client.ensurePath(own);
    while (Date.now() < b.until && requests < b.max && !b.signal.aborted) {
      const node = await client.createSequential(`${own}/t-`, PAYLOAD);
      await client.exists(node, () => {}); // a one-shot watch, which the delete below sets off
      await client.getData(node);
      await client.getChildren(own);
      await client.setData(node, STATUS);
      await client.getDataMany([node]);
      const moved = `${node}-moved`;
      await client.transaction().create(moved, PAYLOAD).remove(node).commit();
      await client.remove(moved);
      requests += 8;
    }
  };
  await Promise.all(Array.from({ length: 32 }, (_, k) => lane(k)));
  return requests;
}

async function warmMix(
  client: ZkClient,
  dir: string,
  b: Bounds & { rounds: number },
): Promise<{ moved: number; notifications: number }> {
  await client.ensurePath(dir);
  let notifications = 0;
  const unwatch = await client.addWatch(dir, 'persistentRecursive', () => {
    notifications++;
  });
  let moved = 0;
  const lane = async (k: number) => {
    const [queued, assigned, done] = ['tasks', 'assign', 'status'].map((d) => `${dir}/lane-${k}/${d}`);
    for (const d of [queued!, assigned!, done!]) await client.ensurePath(d);
    for (let round = 0; round < b.rounds && Date.now() < b.until && !b.signal.aborted; round++) {
      const submit = client.transaction();
      for (let i = 0; i < MIX_BATCH; i++)
        submit.create(`${queued}/t-`, PAYLOAD, CreateMode.PERSISTENT_SEQUENTIAL);
      const names = (await submit.commit()).map((r) => r.path!.slice(r.path!.lastIndexOf('/') + 1));
      await client.getChildren(queued!);
      await client.getDataMany(names.map((n) => `${queued}/${n}`));
      const assign = client.transaction();
      for (const n of names) assign.create(`${assigned}/${n}`, PAYLOAD).remove(`${queued}/${n}`);
      await assign.commit();
      await client.getDataMany(names.map((n) => `${assigned}/${n}`));
      const complete = client.transaction();
      for (const n of names) complete.create(`${done}/${n}`, STATUS).remove(`${assigned}/${n}`);
      await complete.commit();
      moved += names.length;
    }
  };
  try {
    await Promise.all(Array.from({ length: MIX_LANES }, (_, k) => lane(k)));
  } finally {
    unwatch();
  }
  return { moved, notifications };
}

/**
 * Remove `root` and everything under it. Nodes are deleted in multis of up to 200, four in flight, and a
 * node is listed only when deleting it fails because it has children, so leaves cost no reads of their
 * own. `/` removes everything but /zookeeper.
 */
export async function removeTree(client: ZkClient, root: string): Promise<void> {
  const removeOne = async (path: string): Promise<void> => {
    try {
      await client.remove(path);
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return;
      if (!isZkError(err, 'NOT_EMPTY')) throw err;
      const kids = await client.getChildren(path).catch(() => [] as string[]);
      await removeAll(kids.map((k) => `${path === '/' ? '' : path}/${k}`));
      await client.removeIfExists(path);
    }
  };
  const removeBatch = async (part: string[]): Promise<void> => {
    const tx = client.transaction();
    for (const p of part) tx.remove(p);
    try {
      await tx.commit();
    } catch {
      // One of them has children or is gone: one by one (rare, and only for inner nodes).
      for (const p of part) await removeOne(p);
    }
  };
  async function removeAll(paths: string[]): Promise<void> {
    const batches: string[][] = [];
    for (let i = 0; i < paths.length; i += 200) batches.push(paths.slice(i, i + 200));
    for (let i = 0; i < batches.length; i += 4) await Promise.all(batches.slice(i, i + 4).map(removeBatch));
  }
  if (root === '/') {
    const kids = await client.getChildren('/');
    await removeAll(kids.filter((k) => k !== 'zookeeper').map((k) => `/${k}`));
  } else {
    await removeOne(root);
  }
}
