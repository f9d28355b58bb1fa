/**
 * What a new session checks before anyone uses it: the server is ZooKeeper 3.6 or newer, and the
 * connect string's chroot exists.
 *
 * How the version is learned: the handshake does not carry it, and the reference clients do not ask
 * (the Java client finds out when an operation fails; Kazoo's `server_version()` reads the `envi`
 * four-letter word). zkfarm sends one 3.6-only request, a `multiRead` of the chroot's root: a 3.6+
 * server answers it, an older one answers UNIMPLEMENTED (and closes the connection). This works
 * whatever four-letter words the server allows and through any proxy. Only when the answer is
 * UNIMPLEMENTED is the `srvr` four-letter word asked for the version string, to name it in the error.
 *
 * The same answer says whether the chroot exists: its getData fails with NO_NODE when it does not. A
 * client working in a chroot that does not exist would fail on every write (or, worse, a caller that
 * created it would wait for a farm that never runs there), so the session is refused with a clear error.
 * NO_AUTH means the node exists and is closed to this identity: that is the action's business.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { ZkClient } from './client.js';
import { isZkError } from './errors.js';
import { fourLetterWord } from './four-letter.js';

/** Marked fatal: a supervisor stops instead of retrying (see `fatal` in supervisor.ts). */
function fatalError(code: string, message: string): ZkfarmError {
  return Object.assign(new ZkfarmError(code, message), { fatal: true });
}

/** The version a server reports through `srvr`, or a phrase saying why it is not known. */
export async function serverVersion(host: string, port: number): Promise<string> {
  try {
    const text = await fourLetterWord(host, port, 'srvr');
    const m = /version:\s*([^\s,]+)/i.exec(text);
    if (m) return m[1]!.replace(/-.*$/, '');
    return `unknown (srvr answered ${JSON.stringify(text.slice(0, 80))})`;
  } catch (err) {
    return `unknown (srvr failed: ${(err as Error).message})`;
  }
}

/**
 * Check a new session's server and chroot; throws a fatal ZkfarmError (ZKFARM_ZK_VERSION_UNSUPPORTED,
 * ZKFARM_CHROOT_MISSING) when the session cannot be used, and rethrows connection trouble as it is.
 */
export async function checkServer(client: ZkClient, connect: string): Promise<void> {
  let root: Awaited<ReturnType<ZkClient['getDataMany']>>[number] | undefined;
  try {
    [root] = await client.getDataMany(['/']);
  } catch (err) {
    if (!isZkError(err, 'UNIMPLEMENTED')) throw err;
    const server = client.connection.server;
    const where = server ? `${server.host}:${server.port}` : connect;
    const version = server ? await serverVersion(server.host, server.port) : 'unknown';
    throw fatalError(
      ErrorCodes.ZK_VERSION_UNSUPPORTED,
      `the ZooKeeper server at ${where} is version ${version}, which does not know multiRead: zkfarm needs ` +
        'ZooKeeper 3.6 or newer (persistent watches, multiRead); upgrade the servers',
    );
  }
  const slash = connect.indexOf('/');
  if (slash >= 0 && isZkError(root, 'NO_NODE')) {
    const chroot = connect.slice(slash).replace(/\/+$/, '');
    throw fatalError(
      ErrorCodes.CHROOT_MISSING,
      `the chroot ${chroot} of the connect string "${connect}" does not exist on ZooKeeper, so no farm has ` +
        'run there: check the connect string (a typo in the chroot?), or start the farm first (its masters ' +
        'and workers create the chroot)',
    );
  }
}
