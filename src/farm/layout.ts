/**
 * The farm's layout, and with access control, closing it.
 *
 * Znodes: creates /tasks, /status, /assign, /workers, /masters, /election, /queues, /schedules,
 * /services, /service-placements, /keys, /progress, /delayed when missing (and a worker's own /assign/<name> and
 * /service-placements/<name>). With `auth` it also reads, and where needed rewrites, the ACL of the
 * chroot's root (when the connect string has a chroot) and of those nodes' children: /tasks/*, /status/*
 * and /status/<bucket>/*, /queues/<q> and its backlog (/queues/<q>/p<p>, its buckets and their tasks),
 * the due-time area (/delayed/<slot> and its tasks),
 * /schedules/*, /assign/<w>, /assign/<w>/*, /workers/*, /masters/*, /election/*, /master, and the
 * services' nodes (sweepServices).
 *
 * What "closed" means: a node's ACL is exactly the farm identity's digest ACL (all rights, to nobody
 * else). Any other ACL (world:anyone, `ip:…`, another digest, `auth` of someone else, an extra entry
 * beside ours) leaves the node open to someone, and is replaced by the farm's own (setACL at the ACL
 * version read, so a concurrent change is read again, not overwritten blindly).
 *
 * Guarantees, once `ensureLayout` resolves for a role started with `auth`:
 * - every persistent node it swept carries the farm's ACL alone: nodes made before the farm started
 *   (a squatter's /status/<id> or /assign/<w>, tasks queued by an earlier run without access control)
 *   are adopted, and nobody else can add children, forge results or inject tasks from then on;
 * - role nodes (/master, /masters/*, /election/*, /workers/*) with another ACL are not the farm's roles
 *   (a farm role creates them with its ACL): they are removed, so an impostor can neither lead, nor
 *   hold a place in the masters' line, nor take tasks;
 * - a node the identity may not read or change the ACL of stops the role with a fatal
 *   ZKFARM_NODE_NOT_SECURED naming the node, its ACL and what to do: the farm does not run half open.
 * Parents are closed before their children are listed, so no child can appear in a node already swept.
 *
 * Scope and cost: a master sweeps every subtree (it is what hands tasks on and reads results); a worker
 * sweeps the top-level nodes and its own /assign/<name> subtree (what it runs). That is one getACL per
 * node, sent in windows of ACL_WINDOW (pipelined on the session), plus one setACL per node changed:
 * docs/security.md gives the measured cost for a farm with many kept results.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { placementsDir, SERVICE_PATHS } from '../services/model.js';
import type { Acl, ZkClient } from '../zk/client.js';
import type { Logger } from '../zk/connect-options.js';
import { isZkError } from '../zk/errors.js';
import type { Session } from '../zk/session.js';
import { fatal } from '../zk/supervisor.js';
import { assignDir, isStatusBucket, PATHS } from './protocol.js';

export interface LayoutOptions {
  /** Access control on: close what is open. */
  auth?: string;
  /** The connect string has a chroot: its root is the farm's and is closed too (ZooKeeper's "/" is not). */
  chrooted: boolean;
  /** Sweep every subtree (masters), not only the top level. */
  deep: boolean;
  /** A worker's name: its /assign/<name> is created and swept with its children. */
  worker?: string;
  log: Logger;
}

/** getACL requests in flight at once while sweeping children. */
export const ACL_WINDOW = 1000;

/** The persistent nodes every farm has (not /master: that one is a leader's ephemeral node). */
export const LAYOUT_PATHS: readonly string[] = [
  PATHS.tasks,
  PATHS.status,
  PATHS.assign,
  PATHS.workers,
  PATHS.masters,
  PATHS.election,
  PATHS.queues,
  PATHS.schedules,
  SERVICE_PATHS.services,
  SERVICE_PATHS.placements,
  PATHS.keys,
  PATHS.progress,
  PATHS.cancel,
  // The due-time area: its slots and tasks are made by the leading master only, with the farm's ACL.
  PATHS.delayed,
];

/** What a sweep did, for the log and for tests. */
export interface SecureReport {
  checked: number;
  /** Nodes whose ACL was replaced by the farm's. */
  adopted: string[];
  /** Role nodes with another ACL, removed. */
  removed: string[];
}

/** Create the layout; with `auth`, close it (see the module comment). Idempotent. */
export async function ensureLayout(session: Session, options: LayoutOptions): Promise<SecureReport> {
  const c = session.client;
  const own = options.worker ? [assignDir(options.worker), placementsDir(options.worker)] : [];
  await Promise.all(LAYOUT_PATHS.map((p) => c.ensurePath(p)));
  await Promise.all(own.map((p) => c.ensurePath(p)));
  const report: SecureReport = { checked: 0, adopted: [], removed: [] };
  if (!options.auth) return report;
  const sweep = new Sweep(c, report);
  if (options.chrooted) await sweep.persistent(['/']);
  await sweep.persistent([...LAYOUT_PATHS, ...own]);
  for (const w of own) await sweep.persistent(await sweep.children(w));
  if (options.deep) await sweepSubtrees(sweep);
  if (report.adopted.length || report.removed.length) {
    options.log.warn(
      {
        adopted: report.adopted.length,
        removed: report.removed.length,
        examples: [...report.adopted, ...report.removed].slice(0, 10),
      },
      "nodes made without the farm identity's ACL were found: persistent ones now carry it, role nodes " +
        'of other identities were removed; if strangers could write this ZooKeeper before, check the tasks ' +
        'and results that were there',
    );
  }
  return report;
}

async function sweepSubtrees(sweep: Sweep): Promise<void> {
  const [tasks, statuses, workerDirs, schedules] = await Promise.all([
    sweep.children(PATHS.tasks),
    sweep.children(PATHS.status),
    sweep.children(PATHS.assign),
    // A schedule makes tasks: one a stranger could change would inject them.
    sweep.children(PATHS.schedules),
  ]);
  await sweep.persistent([...tasks, ...statuses, ...workerDirs, ...schedules]);
  // Results live in buckets (/status/<bucket>/<id>); the other children of /status are results of the
  // flat layout, swept above.
  const buckets = statuses.filter((p) => isStatusBucket(p.slice(PATHS.status.length + 1)));
  for (const dir of [...buckets, ...workerDirs]) await sweep.persistent(await sweep.children(dir));
  await sweepBacklog(sweep);
  // Delayed tasks are tasks: a stranger who could change one would choose what runs.
  const slots = await sweep.children(PATHS.delayed);
  await sweep.persistent(slots);
  for (const slot of slots) await sweep.persistent(await sweep.children(slot));
  const roles = [
    ...(await sweep.children(PATHS.workers)),
    ...(await sweep.children(PATHS.masters)),
    ...(await sweep.children(PATHS.election)),
    PATHS.master,
  ];
  await sweep.roleNodes(roles);
  await sweepServices(sweep);
}

/**
 * /services/<name> and its status, instances, running and endpoints directories, each instance record,
 * and every worker's placements are persistent; a fence (running/<n>) or an endpoint of another
 * identity is a role node: removed, so that it neither blocks an instance nor misdirects a client.
 */
async function sweepServices(sweep: Sweep): Promise<void> {
  const [services, placementDirs] = await Promise.all([
    sweep.children(SERVICE_PATHS.services),
    sweep.children(SERVICE_PATHS.placements),
  ]);
  await sweep.persistent([...services, ...placementDirs]);
  const parts = (await Promise.all(services.map((s) => sweep.children(s)))).flat();
  await sweep.persistent(parts);
  const byKind = async (kind: string) =>
    (await Promise.all(parts.filter((p) => p.endsWith(`/${kind}`)).map((p) => sweep.children(p)))).flat();
  await sweep.persistent([
    ...(await byKind('instances')),
    ...(await Promise.all(placementDirs.map((d) => sweep.children(d)))).flat(),
  ]);
  await sweep.roleNodes([...(await byKind('running')), ...(await byKind('endpoints'))]);
}

/** /queues/<q>, and its backlog: lanes, buckets, tasks, each level closed before it is listed. */
async function sweepBacklog(sweep: Sweep): Promise<void> {
  let level = await sweep.children(PATHS.queues);
  for (let depth = 0; depth < 4 && level.length > 0; depth++) {
    await sweep.persistent(level);
    if (depth === 3) break;
    const next: string[] = [];
    for (const dir of level) next.push(...(await sweep.children(dir)));
    level = next;
  }
}

class Sweep {
  readonly #farmAcl: readonly Acl[];
  constructor(
    private readonly client: ZkClient,
    private readonly report: SecureReport,
  ) {
    this.#farmAcl = client.acl;
  }

  /** Full paths of a node's children ([] when it is gone). */
  async children(path: string): Promise<string[]> {
    try {
      const names = await this.client.getChildren(path);
      return names.map((n) => `${path === '/' ? '' : path}/${n}`);
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return [];
      if (isZkError(err, 'NO_AUTH')) throw notSecured(path, 'the farm identity may not list its children');
      throw err;
    }
  }

  /** Give each node the farm's ACL unless it has exactly that already. */
  persistent(paths: readonly string[]): Promise<void> {
    return inWindows(paths, async (p) => {
      const acl = await this.#readAcl(p);
      if (acl && !this.#isFarms(acl.acl)) await this.#adopt(p, acl.version);
    });
  }

  /** Remove role nodes (ephemeral) that another identity made. */
  roleNodes(paths: readonly string[]): Promise<void> {
    return inWindows(paths, async (p) => {
      const acl = await this.#readAcl(p);
      if (!acl || this.#isFarms(acl.acl)) return;
      try {
        await this.client.remove(p);
        this.report.removed.push(p);
      } catch (err) {
        if (isZkError(err, 'NO_NODE')) return;
        if (isZkError(err, 'NO_AUTH', 'NOT_EMPTY'))
          throw notSecured(
            p,
            `it is a role node of another identity (${describeAcl(acl.acl)}) and cannot be removed`,
          );
        throw err;
      }
    });
  }

  async #readAcl(path: string): Promise<{ acl: Acl[]; version: number } | undefined> {
    this.report.checked++;
    try {
      const { acl, stat } = await this.client.getAcl(path);
      return { acl, version: stat.aversion };
    } catch (err) {
      if (isZkError(err, 'NO_NODE')) return undefined;
      if (isZkError(err, 'NO_AUTH')) throw notSecured(path, 'the farm identity may not even read its ACL');
      throw err;
    }
  }

  async #adopt(path: string, version: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.client.setAcl(path, this.#farmAcl, attempt === 0 ? version : -1);
        this.report.adopted.push(path);
        return;
      } catch (err) {
        if (isZkError(err, 'NO_NODE')) return;
        if (isZkError(err, 'BAD_VERSION') && attempt === 0) continue;
        if (isZkError(err, 'NO_AUTH')) {
          const now = await this.client.getAcl(path).then(
            (r) => describeAcl(r.acl),
            () => 'unreadable',
          );
          throw notSecured(path, `its ACL (${now}) does not give the farm identity the right to change it`);
        }
        throw err;
      }
    }
  }

  #isFarms(acl: readonly Acl[]): boolean {
    const mine = this.#farmAcl;
    return (
      acl.length === mine.length &&
      acl.every(
        (a, i) =>
          a.perms === mine[i]!.perms && a.id.scheme === mine[i]!.id.scheme && a.id.id === mine[i]!.id.id,
      )
    );
  }
}

/** Run `fn` over `items`, at most ACL_WINDOW at once (requests pipelined on one session). */
async function inWindows<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += ACL_WINDOW)
    await Promise.all(items.slice(i, i + ACL_WINDOW).map(fn));
}

function describeAcl(acl: readonly Acl[]): string {
  return acl.map((a) => `${a.id.scheme}:${a.id.id.replace(/:.*/, ':…')}:${a.perms}`).join(', ') || 'empty';
}

function notSecured(path: string, why: string): ZkfarmError {
  return fatal(
    new ZkfarmError(
      ErrorCodes.NODE_NOT_SECURED,
      `the farm cannot close ${path}: ${why}. With --auth every farm node must carry the farm identity's ` +
        "ACL alone; remove the node with the identity that made it (or ZooKeeper's super user), or run the " +
        'farm in a chroot of its own (host:2181/farm)',
    ),
  );
}
