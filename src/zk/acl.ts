/**
 * The two ACLs the farm uses: open to everyone (ZooKeeper's default), and closed to all but one digest
 * identity (`--auth user:password`), in ZooKeeper's own digest form.
 */
import { createHash } from 'node:crypto';
import { type Acl, PERMS } from './jute.js';

/** world:anyone may do everything (ZooKeeper's default). */
export const OPEN_ACL: readonly Acl[] = Object.freeze([
  { perms: PERMS.all, id: { scheme: 'world', id: 'anyone' } },
]);

/**
 * An ACL that gives all rights to one digest identity (`user:password`), and nothing to anyone else.
 * The id is ZooKeeper's digest form `user:base64(sha1("user:password"))`.
 */
export function digestAcl(credentials: string): Acl[] {
  const user = credentials.slice(0, credentials.indexOf(':'));
  const hash = createHash('sha1').update(credentials).digest('base64');
  return [{ perms: PERMS.all, id: { scheme: 'digest', id: `${user}:${hash}` } }];
}
