/**
 * Client operations made of several requests (ZkClient's `ensurePath`, `removeRecursive`, `move`,
 * `secure`), apart from the one-request operations of client.ts. Only `move` is atomic (one multi);
 * the others are safe to repeat, and are for set-up, clean-up and tests.
 */
import type { ZkClient } from './client.js';
import { isZkError } from './errors.js';
import type { CreateModeValue, Data } from './ops.js';

/** Make sure a persistent node and all its parents exist. Idempotent; never overwrites data. */
export async function ensurePath(client: ZkClient, path: string, data?: Data): Promise<void> {
  if (path === '/' || path === '') return;
  try {
    await client.create(path, data);
    return;
  } catch (err) {
    if (isZkError(err, 'NODE_EXISTS')) return;
    if (!isZkError(err, 'NO_NODE')) throw err;
  }
  const parent = path.slice(0, path.lastIndexOf('/')) || '/';
  await ensurePath(client, parent);
  try {
    await client.create(path, data);
  } catch (err) {
    if (!isZkError(err, 'NODE_EXISTS')) throw err;
  }
}

/** Delete a node and everything under it (not atomic). */
export async function removeRecursive(client: ZkClient, path: string): Promise<void> {
  let children: string[];
  try {
    children = await client.getChildren(path);
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return;
    throw err;
  }
  await Promise.all(children.map((c) => removeRecursive(client, `${path === '/' ? '' : path}/${c}`)));
  if (path !== '/') await client.removeIfExists(path);
}

/**
 * Move a node atomically: one `multi` that creates `to` (with the source's data, or `data` when given)
 * and deletes `from` at the version read. Returns the target path.
 */
export async function move(
  client: ZkClient,
  from: string,
  to: string,
  options: { data?: Data; mode?: CreateModeValue },
): Promise<string> {
  const { data, stat } = await client.getData(from);
  const results = await client
    .transaction()
    .create(to, options.data !== undefined ? options.data : data, options.mode)
    .remove(from, stat.version)
    .commit();
  return results[0]?.path ?? to;
}

/** Give a node the client's ACL if world:anyone may use it now; true when it changed. */
export async function secure(client: ZkClient, path: string): Promise<boolean> {
  const { acl } = await client.getAcl(path);
  if (!acl.some((a) => a.id.scheme === 'world')) return false;
  await client.setAcl(path, client.acl);
  return true;
}

/** The names of a node's children, or none when the node does not exist. */
export async function childrenIfExists(client: ZkClient, path: string): Promise<string[]> {
  try {
    return await client.getChildren(path);
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return [];
    throw err;
  }
}
