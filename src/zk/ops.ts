/**
 * What every request of the client shares: argument checks made before anything is sent (paths as
 * ZooKeeper's PathUtils checks them, data sizes against the servers' jute.maxbuffer), create modes, and
 * the readers of the common answers.
 */
import { ZK_CODES, ZkError } from './errors.js';
import type { Reader, Stat, Writer } from './jute.js';

export const CreateMode = {
  PERSISTENT: 0,
  EPHEMERAL: 1,
  PERSISTENT_SEQUENTIAL: 2,
  EPHEMERAL_SEQUENTIAL: 3,
} as const;
export type CreateModeValue = (typeof CreateMode)[keyof typeof CreateMode];

export type Data = Buffer | string | null | undefined;

export interface OpResult {
  /** For a create: the created path (with its sequence suffix). */
  path?: string;
  stat?: Stat;
}

export const EMPTY = Buffer.alloc(0);

export function toBuffer(data: Data): Buffer {
  if (data === null || data === undefined) return EMPTY;
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/**
 * Check a path as ZooKeeper does (PathUtils.validatePath): absolute, no empty, `.` or `..` segment, no
 * trailing slash (a sequential create may end with one: the server appends the number), none of the
 * characters it refuses (NUL and other control characters, surrogates, private use).
 */
export function pathProblem(path: unknown, sequential = false): string | undefined {
  if (typeof path !== 'string' || path.length === 0) return 'a path must be a non-empty string';
  if (path.charCodeAt(0) !== 47) return `path ${JSON.stringify(path)} must start with /`;
  const n = path.length;
  if (n === 1) return undefined;
  if (path.charCodeAt(n - 1) === 47 && !sequential) return `path ${JSON.stringify(path)} must not end with /`;
  let segStart = 1;
  for (let i = 1; i <= n; i++) {
    const c = i < n ? path.charCodeAt(i) : 47;
    if (c === 0) return `path ${JSON.stringify(path)} contains a NUL character`;
    // ZooKeeper refuses control characters, surrogates (so emoji), private use and specials.
    if ((c > 0 && c <= 0x1f) || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) || c >= 0xfff0)
      return `path ${JSON.stringify(path)} contains a character ZooKeeper does not accept (U+${c.toString(16).padStart(4, '0')})`;
    if (c !== 47) continue;
    const len = i - segStart;
    if (len === 0 && !(sequential && i === n)) return `path ${JSON.stringify(path)} has an empty segment`;
    if ((len === 1 && path.charCodeAt(segStart) === 46) || (len === 2 && path.startsWith('..', segStart)))
      return `path ${JSON.stringify(path)} has a relative segment`;
    segStart = i + 1;
  }
  return undefined;
}

export function badArgument(op: string, path: string | undefined, why: string): Promise<never> {
  return Promise.reject(
    new ZkError(ZK_CODES.BAD_ARGUMENTS, op, typeof path === 'string' ? path : undefined, why),
  );
}

/** Why `data` cannot be a node's data with servers whose jute.maxbuffer is `maxBuffer`, if it cannot. */
export function dataProblem(data: Buffer, maxBuffer: number): string | undefined {
  return data.length > maxBuffer
    ? `data is ${data.length} bytes; ZooKeeper takes at most ${maxBuffer} bytes in one request (jute.maxbuffer), ` +
        'node data, path and ACL together'
    : undefined;
}

export const readStat = (r: Reader): Stat => r.stat();
export const readChildren = (r: Reader): string[] => r.stringVector();
export function readData(r: Reader): { data: Buffer; stat: Stat } {
  const data = r.buffer() ?? EMPTY;
  return { data, stat: r.stat() };
}

export function writeMultiEnd(w: Writer): void {
  w.int(-1);
  w.bool(true);
  w.int(-1);
}
