/**
 * Small HTTP helpers for the dashboard's node:http server: JSON answers, JSON bodies, errors that carry
 * a status and a stable code, and the listen address.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import type { Supervisor } from '../zk/supervisor.js';

/** Dashboard error codes (JSON answers carry them as `error.code`). */
export const WebErrorCodes = {
  CONTROLS_DISABLED: 'ZKFARM_CONTROLS_DISABLED',
  NO_HOST: 'ZKFARM_NO_HOST',
  NOT_FOUND: 'ZKFARM_NOT_FOUND',
  BAD_REQUEST: 'ZKFARM_BAD_REQUEST',
  FORBIDDEN_ORIGIN: 'ZKFARM_FORBIDDEN_ORIGIN',
  UNSUPPORTED_MEDIA_TYPE: 'ZKFARM_UNSUPPORTED_MEDIA_TYPE',
  METHOD_NOT_ALLOWED: 'ZKFARM_METHOD_NOT_ALLOWED',
  NOT_CONNECTED: 'ZKFARM_NOT_CONNECTED',
  LIMIT_REACHED: 'ZKFARM_LIMIT_REACHED',
} as const;

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
  }
}

/** Headers every answer carries. The page loads nothing from elsewhere and may not be framed. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Map any error to an HTTP status and a JSON `{error: {code, message}}`. */
export function sendError(res: ServerResponse, err: unknown): void {
  const { status, code, message } = describeHttpError(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: { code, message } });
}

export function describeHttpError(err: unknown): { status: number; code: string; message: string } {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case ErrorCodes.INVALID_ARGUMENT:
    case ErrorCodes.INVALID_NAME:
    case ErrorCodes.INVALID_TASK:
    case ErrorCodes.CONFIG_INVALID:
      // The host says "no role named x" with INVALID_ARGUMENT: that is a 404 to a client.
      return { status: /^no role named /.test(message) ? 404 : 400, code, message };
    case ErrorCodes.NAME_TAKEN:
    case ErrorCodes.ROLE_EXITED:
    case ErrorCodes.STOPPED:
      return { status: 409, code, message };
    case ErrorCodes.QUEUE_FULL:
    case ErrorCodes.SESSION_LOST:
      return { status: 503, code, message };
    default:
      return { status: 500, code: typeof code === 'string' ? code : 'ZKFARM_INTERNAL', message };
  }
}

/** Read a JSON body (at most `limit` bytes); demands `Content-Type: application/json`. */
export async function readJson(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new HttpError(
      415,
      WebErrorCodes.UNSUPPORTED_MEDIA_TYPE,
      `send the body as JSON with Content-Type: application/json (got ${type ? JSON.stringify(type) : 'none'})`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit)
      throw new HttpError(413, WebErrorCodes.BAD_REQUEST, `the body is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(
      400,
      WebErrorCodes.BAD_REQUEST,
      `the body is not valid JSON: ${(err as Error).message}`,
    );
  }
}

/** Parse `host:port` (`[::1]:8080` for IPv6; port 0 picks a free one). */
export function parseListen(spec: string): { host: string; port: number } {
  const bad = () =>
    new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `http: expected host:port such as 127.0.0.1:8080 (port 0 picks a free one), got ${JSON.stringify(spec)}`,
    );
  if (typeof spec !== 'string') throw bad();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(spec.trim());
  if (!m) throw bad();
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) throw bad();
  if (m[1] !== undefined && isIP(host) !== 6) throw bad();
  return { host, port };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

/** The name in a Host header, without its port (`[::1]:80` → `::1`). */
export function hostName(header: string | undefined): string {
  if (!header) return '';
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(header);
  if (m) return m[1]!;
  return header.replace(/:\d+$/, '');
}

/** The dashboard's live session's client, or a 503 that says there is none now. */
export function liveClient(supervisor: Supervisor): ZkClient {
  const client = supervisor.session?.client;
  if (!client)
    throw new HttpError(
      503,
      WebErrorCodes.NOT_CONNECTED,
      `the dashboard has no ZooKeeper session right now (${supervisor.state}); try again in a moment`,
    );
  return client;
}
