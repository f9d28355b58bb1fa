/**
 * The connect string, `host:port[,host:port...][/chroot]`: the one place it is read and checked. The
 * supervisor, a plain client, the fault proxy, the config file, the command line and the options of every
 * role go through it, so they accept and refuse the same strings with the same words.
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { ServerAddress } from './servers.js';

export type { ServerAddress };

/** What a connect string looks like, in words (for messages and docs). */
export const CONNECT_STRING_EXPECTED = 'a connect string like "127.0.0.1:2181" or "h1:2181,h2:2181/farm-a"';

/** Split `h1:p1,h2:p2/chroot` into its `host:port` parts and the chroot suffix ('' when none); no checks. */
export function splitConnectString(connect: string): { hosts: string[]; chroot: string } {
  const slash = connect.indexOf('/');
  const hostPart = slash >= 0 ? connect.slice(0, slash) : connect;
  const chroot = slash >= 0 ? connect.slice(slash).replace(/\/+$/, '') : '';
  return {
    hosts: hostPart
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean),
    chroot,
  };
}

/** Why `connect` is not a usable connect string, or undefined when it is. */
export function connectStringProblem(connect: unknown): string | undefined {
  if (typeof connect !== 'string' || connect.trim() === '') return 'it is empty';
  if (/\s/.test(connect)) return 'it contains white space';
  const { hosts, chroot } = splitConnectString(connect);
  if (hosts.length === 0) return 'it names no host:port';
  for (const h of hosts) {
    const m = /^([^\s:/,]+):(\d{1,5})$/.exec(h);
    if (!m) return `"${h}" is not host:port`;
    const port = Number(m[2]);
    if (port < 1 || port > 65_535) return `port ${port} of "${h}" is not between 1 and 65535`;
  }
  if (chroot && !/^(\/[^/\s]+)+$/.test(chroot)) return `the chroot "${chroot}" has an empty segment`;
  return undefined;
}

/**
 * Read a connect string: its servers and chroot. Throws ZKFARM_INVALID_ARGUMENT (naming `option`, what
 * was expected and what was given) when it is not one.
 */
export function parseConnectString(
  connect: string,
  option = 'connect',
): { servers: ServerAddress[]; chroot: string } {
  const problem = connectStringProblem(connect);
  if (problem) {
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `${option}: expected ${CONNECT_STRING_EXPECTED}, got ${JSON.stringify(connect)} (${problem})`,
    );
  }
  const { hosts, chroot } = splitConnectString(connect);
  const servers = hosts.map((h) => {
    const colon = h.lastIndexOf(':');
    return { host: h.slice(0, colon), port: Number(h.slice(colon + 1)) };
  });
  return { servers, chroot };
}
