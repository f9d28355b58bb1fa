/**
 * A chroot's two views of a path: the caller's (`/tasks`) and the server's (`/farm-a/tasks`, for the
 * connect string `host:2181/farm-a`). The connection adds the chroot to every path it sends and takes it
 * off every path it reports (answers, watch events), so no caller sees it (chroot.ts makes the chroot).
 *
 * Pure: no znode, no session. An empty chroot leaves every path as it is.
 */

/** Path as the server sees it (with the chroot). */
export function withChroot(chroot: string, path: string): string {
  if (!chroot) return path;
  return path === '/' ? chroot : chroot + path;
}

/** Path as the caller sees it (without the chroot); a path outside the chroot is left as it is. */
export function withoutChroot(chroot: string, path: string): string {
  if (!chroot || !path.startsWith(chroot)) return path;
  return path.length === chroot.length ? '/' : path.slice(chroot.length);
}
