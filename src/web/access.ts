/**
 * Who may use the dashboard: the Host check (every bind address), and the token.
 *
 * - Host: a request must name this dashboard: a loopback name, the address it listens on, an address
 *   or the host name of this machine when it listens on every address (0.0.0.0, ::), or a name given in
 *   `allowedHosts`. A DNS-rebinding page (evil.example resolving to this machine) names its own host and
 *   is refused, whatever the bind.
 * - Token: controls (every POST) need it on every bind; with `protectReads` (a farm with ACLs) so do the
 *   feed, the state, the history and task details (they carry results). The page, its files, /metrics
 *   and /healthz stay open (no results in them). A client shows the token as `Authorization: Bearer
 *   <token>`, or with the cookie the dashboard sets when a page is opened with `?token=<token>`
 *   (HttpOnly, SameSite=Strict: another site's page cannot send it; its name carries the port, as
 *   cookies are shared by every port of a host). Tokens are compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { HttpError, hostName, isLoopback, SECURITY_HEADERS } from './http.js';

/** Error codes of refused requests (in `error.code` of the JSON answer). */
export const AccessErrorCodes = {
  TOKEN_REQUIRED: 'ZKFARM_TOKEN_REQUIRED',
  FORBIDDEN_HOST: 'ZKFARM_FORBIDDEN_HOST',
} as const;

/** The environment variable the dashboard's token is read from when none is given. */
export const TOKEN_ENV = 'ZKFARM_DASHBOARD_TOKEN';
export const MIN_TOKEN_LENGTH = 16;

export interface AccessOptions {
  /** @defaultValue $ZKFARM_DASHBOARD_TOKEN, else a random one (see `generated`) */
  token?: string;
  /** Extra host names the dashboard is served under (a reverse proxy's name, a DNS name). */
  allowedHosts?: readonly string[];
  /** Reads that carry results need the token too. */
  protectReads: boolean;
  env?: NodeJS.ProcessEnv;
}

export class Access {
  readonly token: string;
  /** True when the token was made here (it must be shown to the operator: printed at start). */
  readonly generated: boolean;
  readonly protectReads: boolean;
  readonly #digest: Buffer;
  readonly #allowed: readonly string[];
  #cookie = 'zkfarm_dashboard';
  #listen = '';

  constructor(options: AccessOptions) {
    const fromEnv = (options.env ?? process.env)[TOKEN_ENV];
    const given = options.token ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined);
    if (given !== undefined && (typeof given !== 'string' || given.length < MIN_TOKEN_LENGTH)) {
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `dashboard token: expected at least ${MIN_TOKEN_LENGTH} characters (from the token option or $${TOKEN_ENV}), ` +
          `got ${typeof given === 'string' ? `${given.length}` : typeof given}; leave it out to get a random one`,
      );
    }
    this.token = given ?? randomBytes(24).toString('base64url');
    this.generated = given === undefined;
    this.protectReads = options.protectReads;
    this.#digest = digest(this.token);
    this.#allowed = (options.allowedHosts ?? []).map((h) => h.toLowerCase());
  }

  /** Called once the server listens: the bind address and port. */
  listening(host: string, port: number): void {
    this.#listen = host.toLowerCase();
    this.#cookie = `zkfarm_dashboard_${port}`;
  }

  /** Refuse a request that does not name this dashboard (403 ZKFARM_FORBIDDEN_HOST). */
  checkHost(req: IncomingMessage): void {
    const name = hostName(req.headers.host);
    if (hostAllowed(name, this.#listen, this.#allowed)) return;
    throw new HttpError(
      403,
      AccessErrorCodes.FORBIDDEN_HOST,
      `this dashboard answers only to requests for its own addresses (got Host ${JSON.stringify(req.headers.host ?? '')}); ` +
        'serve it under another name by adding that name to allowedHosts',
    );
  }

  /** Does the request carry the token (header or cookie)? */
  presented(req: IncomingMessage): boolean {
    const auth = req.headers.authorization;
    if (typeof auth === 'string' && /^Bearer /i.test(auth) && this.#matches(auth.slice(7).trim()))
      return true;
    const cookie = readCookie(req.headers.cookie, this.#cookie);
    return cookie !== undefined && this.#matches(cookie);
  }

  /** Throw 401 ZKFARM_TOKEN_REQUIRED unless the request carries the token. */
  require(req: IncomingMessage, what: string): void {
    if (this.presented(req)) return;
    throw new HttpError(
      401,
      AccessErrorCodes.TOKEN_REQUIRED,
      `${what} needs the dashboard's token: open the URL printed when the dashboard started ` +
        `(…/?token=…), or send Authorization: Bearer <token> (the token option, $${TOKEN_ENV}, or the config file's httpToken)`,
    );
  }

  /** Must this GET path carry the token? */
  guardsRead(path: string): boolean {
    return this.protectReads && (path === '/events' || path.startsWith('/api/'));
  }

  /**
   * A page opened with `?token=…`: set the cookie and send the browser to the same path without the
   * token (so it leaves the address bar and the history). True when it answered.
   */
  login(url: URL, res: ServerResponse): boolean {
    const given = url.searchParams.get('token');
    if (given === null) return false;
    if (!this.#matches(given))
      throw new HttpError(401, AccessErrorCodes.TOKEN_REQUIRED, 'that is not the token of this dashboard');
    url.searchParams.delete('token');
    const rest = url.searchParams.toString();
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      location: `${url.pathname}${rest ? `?${rest}` : ''}`,
      'set-cookie': `${this.#cookie}=${this.token}; HttpOnly; SameSite=Strict; Path=/`,
      'cache-control': 'no-store',
    });
    res.end();
    return true;
  }

  #matches(candidate: string): boolean {
    return timingSafeEqual(digest(candidate), this.#digest);
  }
}

/**
 * Is `host` (a Host header's name) one this dashboard answers to? Loopback names always; the listen
 * address; for a wildcard bind this machine's addresses and host name; and `allowed`.
 */
export function hostAllowed(
  host: string,
  listen: string,
  allowed: readonly string[],
  machine: () => readonly string[] = machineNames,
): boolean {
  const h = host.toLowerCase();
  if (h === '') return false;
  if (isLoopback(h) || allowed.includes(h)) return true;
  if (listen === '0.0.0.0' || listen === '::') return machine().includes(h);
  return h === listen;
}

function machineNames(): string[] {
  const out = [hostname().toLowerCase()];
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) out.push(a.address.toLowerCase());
  return out;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
