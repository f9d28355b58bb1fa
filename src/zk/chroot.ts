/**
 * A farm's chroot made on a fresh ensemble: the connect string's `/farm-a` created (and, with `auth`,
 * secured) through the servers' root, by a short supervisor of its own ('completed' mode).
 */
import type { ConnectOptions } from './connect-options.js';
import { splitConnectString } from './connect-string.js';
import { connect } from './supervisor.js';

/**
 * Make sure the chroot of a connect string (`host:2181/farm-a`) exists, so a farm can start on a fresh
 * ensemble. No-op without a chroot. Uses a short session of its own ('completed' mode).
 */
export async function ensureChroot(options: ConnectOptions): Promise<void> {
  const { hosts, chroot } = splitConnectString(options.connect);
  if (!chroot) return;
  const sup = connect({ ...options, connect: hosts.join(',') }, async (session) => {
    await session.client.ensurePath(chroot);
    if (options.auth) await session.client.secure(chroot);
    return 'completed';
  });
  await sup.done;
}
