/**
 * zkfarm/zk, the ZooKeeper layer alone: a promise client with typed errors and request timeouts, a session
 * supervisor that re-runs an action on every new session, watches that report diffs, and a launcher for
 * real servers. A deliberate list: what is not here is internal (see docs/library.md).
 */

export { digestAcl, OPEN_ACL } from './acl.js';
export { ensureChroot } from './chroot.js';
export {
  type Acl,
  CreateMode,
  type CreateModeValue,
  type Data,
  MAX_DATA_BYTES,
  type OpResult,
  type PersistentListener,
  type RawWatcher,
  type Stat,
  Transaction,
  type WatchEvent,
  ZkClient,
  type ZkClientOptions,
} from './client.js';
export { childrenIfExists } from './compound.js';
export type { ConnectOptions, Logger } from './connect-options.js';
export {
  connectStringProblem,
  parseConnectString,
  type ServerAddress,
  splitConnectString,
} from './connect-string.js';
export type { ZkConnection } from './connection.js';
export type { ConnectionOptions } from './connection-options.js';
export {
  startZkEnsemble,
  type ZkEnsemble,
  type ZkEnsembleMember,
  type ZkEnsembleOptions,
} from './ensemble.js';
export { isZkError, ZK_CODES, type ZkCodeName, ZkError } from './errors.js';
export { fourLetterWord } from './four-letter.js';
export { PERMS } from './jute.js';
export { openClient } from './open-client.js';
export {
  startZkServer,
  type ZkServer,
  type ZkServerConfig,
  type ZkServerOptions,
} from './server.js';
export { type FindZooKeeperOptions, findZooKeeper, type ZooKeeperInstall } from './server-install.js';
export { Session } from './session.js';
export {
  type Action,
  type ActionResult,
  connect,
  fatal,
  type SessionState,
  Supervisor,
} from './supervisor.js';
export {
  type PreparedTls,
  prepareTls,
  readTlsFiles,
  type ZkTlsFiles,
  type ZkTlsOptions,
} from './transport.js';
export type { ChildrenChange, ChildrenWatcher, DataChange, DataWatch, WatchOptions } from './watchers.js';
