/**
 * The two ACLs the farm uses: open to everyone (ZooKeeper's default), and closed to all but one digest
 * identity (`--auth user:password`), in ZooKeeper's own digest form; and ZkClient's getAcl and setAcl.
 */
import { createHash } from 'node:crypto';
import type { ZkClient } from './client.js';
import { type Acl, encodedAcl, OP, PERMS, type Stat } from './jute.js';
import { badArgument, pathProblem, readStat } from './ops.js';

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

/** A node's ACL and stat (ZkClient.getAcl). */
export function getAcl(client: ZkClient, path: string): Promise<{ acl: Acl[]; stat: Stat }> {
  const problem = pathProblem(path);
  if (problem) return badArgument('getACL', path, problem);
  const conn = client.connection;
  return client.send(
    OP.getACL,
    'getACL',
    path,
    (w) => w.ustring(conn.serverPath(path)),
    (r) => {
      const acl = r.acls();
      return { acl, stat: r.stat() };
    },
  );
}

/** Set a node's ACL, `version` -1: any (ZkClient.setAcl). */
export function setAcl(client: ZkClient, path: string, acl: readonly Acl[], version: number): Promise<Stat> {
  const problem = pathProblem(path);
  if (problem) return badArgument('setACL', path, problem);
  const conn = client.connection;
  return client.send(
    OP.setACL,
    'setACL',
    path,
    (w) => {
      w.ustring(conn.serverPath(path));
      w.raw(encodedAcl(acl));
      w.int(version);
    },
    readStat,
  );
}
