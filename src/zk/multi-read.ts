/**
 * ZooKeeper's multiRead (3.6+): the data of many nodes in one round trip, each path answered on its
 * own (its data and stat, or the ZkError of that path alone). A request is bounded in paths, since its
 * answer holds every node's data.
 */
import type { ZkClient } from './client.js';
import { ZK_CODES, ZkError } from './errors.js';
import { OP, type Reader, type Stat, type Writer } from './jute.js';
import { badArgument, pathProblem, readData, writeMultiEnd } from './ops.js';

/** Most paths in one multiRead: an answer holds every node's data, so this bounds its size. */
export const MULTI_READ_PATHS = 100;

export type ReadResult = { data: Buffer; stat: Stat } | ZkError;

/** The request: a getData (without watch) per path, then the end marker. */
export function writeMultiRead(w: Writer, paths: readonly string[], serverPath: (p: string) => string): void {
  for (const p of paths) {
    w.int(OP.getData);
    w.bool(false);
    w.int(-1);
    w.ustring(serverPath(p));
    w.bool(false);
  }
  writeMultiEnd(w);
}

/** The answer: one result per path, in order. */
export function readMultiRead(r: Reader, paths: readonly string[]): ReadResult[] {
  const out: ReadResult[] = [];
  for (;;) {
    const type = r.int();
    const done = r.bool();
    r.int();
    if (done) break;
    if (type === OP.getData) out.push(readData(r));
    else if (type === OP.error) {
      const err = r.int();
      out.push(new ZkError(err, 'getData', paths[out.length]));
    } else
      throw new ZkError(
        ZK_CODES.MARSHALLING_ERROR,
        'multiRead',
        paths[out.length],
        `unexpected result type ${type}`,
      );
  }
  return out;
}

/**
 * Read the data of many nodes in one round trip (ZkClient.getDataMany): at most MULTI_READ_PATHS paths
 * to a request, all requests sent at once.
 */
export async function getDataMany(client: ZkClient, paths: readonly string[]): Promise<ReadResult[]> {
  if (paths.length <= MULTI_READ_PATHS) return multiRead(client, paths);
  const parts: Array<Promise<ReadResult[]>> = [];
  for (let i = 0; i < paths.length; i += MULTI_READ_PATHS)
    parts.push(multiRead(client, paths.slice(i, i + MULTI_READ_PATHS)));
  return (await Promise.all(parts)).flat();
}

function multiRead(client: ZkClient, paths: readonly string[]): Promise<ReadResult[]> {
  if (paths.length === 0) return Promise.resolve([]);
  for (const p of paths) {
    const problem = pathProblem(p);
    if (problem) return badArgument('multiRead', p, problem);
  }
  const conn = client.connection;
  return client.send(
    OP.multiRead,
    'multiRead',
    paths[0],
    (w) => writeMultiRead(w, paths, (p) => conn.serverPath(p)),
    (r) => readMultiRead(r, paths),
  );
}
