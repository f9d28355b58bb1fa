/**
 * A small ZooKeeper ensemble on loopback, for tests of failover: `size` QuorumPeerMain processes (each
 * a server-process.ts process with its `myid` and the `server.N` lines), started together and waited
 * for until every member serves. Members can be stopped, killed and restarted one by one. Plaintext
 * only (TLS-only servers are standalone: server.ts).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { freePorts } from './free-ports.js';
import type { ZkServerOptions } from './server.js';
import { baseSettings, checkPositive, javaOptions, LOOPBACK, stringify } from './server-config.js';
import { findZooKeeper, type ZooKeeperInstall } from './server-install.js';
import { type ServerSpec, type ZkServer, ZkServerProcess } from './server-process.js';
import { makeTempDir, removeTempDir } from './server-reaper.js';

/** Ensembles serve plaintext only (TLS-only servers are standalone). */
export interface ZkEnsembleOptions extends Omit<ZkServerOptions, 'port' | 'dataDir' | 'tls'> {
  /** Number of members. @defaultValue 3 */
  size?: number;
  /** Parent dir; member N lives in `<baseDir>/zk-N`. @defaultValue a fresh temp dir, removed on stop() */
  baseDir?: string;
}

export interface ZkEnsembleMember extends ZkServer {
  /** The member's `myid`. */
  readonly id: number;
  readonly peerPort: number;
  readonly electionPort: number;
}

export interface ZkEnsemble {
  readonly members: readonly ZkEnsembleMember[];
  /** All members, comma-separated. */
  readonly connectString: string;
  readonly baseDir: string;
  member(id: number): ZkEnsembleMember;
  stopMember(id: number): Promise<void>;
  killMember(id: number): Promise<void>;
  /** Start the member again; waits until it serves (which needs a quorum). */
  restartMember(id: number): Promise<void>;
  /** The id whose `srvr` says `Mode: leader`, if any running member says so. */
  leaderId(): Promise<number | undefined>;
  stop(): Promise<void>;
}

class EnsembleMember extends ZkServerProcess implements ZkEnsembleMember {
  constructor(
    spec: ServerSpec,
    readonly id: number,
    readonly peerPort: number,
    readonly electionPort: number,
  ) {
    super(spec);
  }
}

/**
 * Start `size` QuorumPeerMain processes on loopback and wait until every member serves
 * (a fresh ensemble whose members all started forms one quorum with all of them).
 */
export async function startZkEnsemble(opts: ZkEnsembleOptions = {}): Promise<ZkEnsemble> {
  const size = opts.size ?? 3;
  checkPositive('size', size);
  const install = findZooKeeper(opts);
  const owns = opts.baseDir === undefined;
  const baseDir =
    opts.baseDir !== undefined ? resolvePath(opts.baseDir) : makeTempDir('zkfarm-ensemble-', !opts.keepData);
  const removeBase = () => {
    if (owns && !opts.keepData) removeTempDir(baseDir);
  };
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(size * 3);
    const layout = { baseDir, ports, size, orphanRemoveDir: owns && !opts.keepData ? baseDir : undefined };
    const members = Array.from({ length: size }, (_, i) => ensembleMember(opts, install, layout, i + 1));
    try {
      for (const m of members) await m.start(false);
      await Promise.all(members.map((m) => m.waitServing()));
      return makeEnsemble(members, baseDir, removeBase);
    } catch (err) {
      const retry = attempt < 2 && members.some((m) => m.portConflict());
      await Promise.all(members.map((m) => m.kill()));
      if (!retry) {
        removeBase();
        throw err;
      }
    }
  }
}

/** Where the members live and listen: client ports first, then peer ports, then election ports. */
interface EnsembleLayout {
  baseDir: string;
  ports: number[];
  size: number;
  orphanRemoveDir: string | undefined;
}

/** Member `id` (not started), its data dir made afresh with its `myid`. */
function ensembleMember(
  opts: ZkEnsembleOptions,
  install: ZooKeeperInstall,
  { baseDir, ports, size, orphanRemoveDir }: EnsembleLayout,
  id: number,
): EnsembleMember {
  const servers: Record<string, string> = {};
  for (let n = 1; n <= size; n++)
    servers[`server.${n}`] = `${LOOPBACK}:${ports[size + n - 1]}:${ports[2 * size + n - 1]}`;
  const dataDir = join(baseDir, `zk-${id}`);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'myid'), `${id}\n`);
  const port = ports[id - 1]!;
  const settings = { ...baseSettings(opts, dataDir, port), ...servers, ...stringify(opts.extraConfig) };
  const spec: ServerSpec = {
    host: LOOPBACK,
    port,
    dataDir,
    ownsDataDir: false,
    ...(orphanRemoveDir !== undefined ? { orphanRemoveDir } : {}),
    startTimeoutMs: opts.startTimeoutMs ?? 30_000,
    stopTimeoutMs: opts.stopTimeoutMs ?? 5_000,
    config: {
      mode: 'quorum',
      ...install,
      mainClass: 'org.apache.zookeeper.server.quorum.QuorumPeerMain',
      javaOpts: javaOptions(opts.javaOpts),
      configFile: join(dataDir, 'zoo.cfg'),
      settings,
    },
  };
  return new EnsembleMember(spec, id, ports[size + id - 1]!, ports[2 * size + id - 1]!);
}
function makeEnsemble(members: EnsembleMember[], baseDir: string, removeBase: () => void): ZkEnsemble {
  const member = (id: number): EnsembleMember => {
    const m = members.find((x) => x.id === id);
    if (!m) {
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `no ensemble member ${id}; ids are ${members.map((x) => x.id).join(', ')}`,
      );
    }
    return m;
  };
  return {
    members,
    baseDir,
    connectString: members.map((m) => m.connectString).join(','),
    member,
    stopMember: (id) => member(id).halt(),
    killMember: (id) => member(id).kill(),
    restartMember: (id) => member(id).restart(),
    async leaderId() {
      const modes = await Promise.all(
        members.map(async (m) => (m.running ? await m.fourLetter('srvr', 1000).catch(() => '') : '')),
      );
      const i = modes.findIndex((s) => /^Mode: leader$/m.test(s));
      return i === -1 ? undefined : members[i]!.id;
    },
    async stop() {
      await Promise.all(members.map((m) => m.halt()));
      removeBase();
    },
  };
}
