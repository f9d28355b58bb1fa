/**
 * Typed ZooKeeper errors.
 *
 * ZooKeeper answers a failed request with a numeric code. zkfarm turns every failure of a request into a
 * `ZkError` whose `code` is ZooKeeper's code name (`NO_NODE`, `NODE_EXISTS`, `BAD_VERSION`, ...), with
 * the operation and the path it concerned, so callers can match on `code`. A code missing from the table
 * below is still a ZkError (`UNKNOWN`, with `zkCode` holding the number).
 */

/** ZooKeeper's error codes by name (KeeperException.Code). */
export const ZK_CODES = {
  OK: 0,
  SYSTEM_ERROR: -1,
  RUNTIME_INCONSISTENCY: -2,
  DATA_INCONSISTENCY: -3,
  CONNECTION_LOSS: -4,
  MARSHALLING_ERROR: -5,
  UNIMPLEMENTED: -6,
  OPERATION_TIMEOUT: -7,
  BAD_ARGUMENTS: -8,
  NEW_CONFIG_NO_QUORUM: -13,
  RECONFIG_IN_PROGRESS: -14,
  UNKNOWN_SESSION: -12,
  API_ERROR: -100,
  NO_NODE: -101,
  NO_AUTH: -102,
  BAD_VERSION: -103,
  NO_CHILDREN_FOR_EPHEMERALS: -108,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
  INVALID_CALLBACK: -113,
  INVALID_ACL: -114,
  AUTH_FAILED: -115,
  SESSION_MOVED: -118,
  NOT_READ_ONLY: -119,
  EPHEMERAL_ON_LOCAL_SESSION: -120,
  NO_WATCHER: -121,
  REQUEST_TIMEOUT: -122,
  RECONFIG_DISABLED: -123,
  SESSION_CLOSED_REQUIRE_SASL_AUTH: -124,
  QUOTA_EXCEEDED: -125,
  THROTTLED_OP: -127,
} as const;

export type ZkCodeName = keyof typeof ZK_CODES | 'UNKNOWN';

const NAMES_BY_NUMBER = new Map<number, ZkCodeName>(
  Object.entries(ZK_CODES).map(([name, num]) => [num, name as ZkCodeName]),
);

export function zkCodeName(code: number): ZkCodeName {
  return NAMES_BY_NUMBER.get(code) ?? 'UNKNOWN';
}

/** Codes after which the same request may succeed on a later try (the session may still be fine). */
const TRANSIENT: ReadonlySet<string> = new Set([
  'CONNECTION_LOSS',
  'OPERATION_TIMEOUT',
  'REQUEST_TIMEOUT',
  'THROTTLED_OP',
  'SESSION_EXPIRED',
  'SESSION_MOVED',
]);

export class ZkError extends Error {
  /** ZooKeeper's code name, e.g. `NO_NODE`. */
  readonly code: ZkCodeName;
  /** ZooKeeper's numeric code, e.g. -101. */
  readonly zkCode: number;
  /** The request that failed, e.g. `create`. */
  readonly op: string;
  /** The path the request concerned, when it had one. */
  readonly path: string | undefined;
  /** For a failed `multi`: the index of the operation that failed. */
  readonly opIndex: number | undefined;

  constructor(
    code: number,
    op: string,
    path?: string,
    detail?: string,
    extra?: { opIndex?: number; cause?: unknown },
  ) {
    const name = zkCodeName(code);
    const where = path ? ` ${path}` : '';
    super(`ZooKeeper ${op}${where} failed: ${name} (${code})${detail ? `: ${detail}` : ''}`, {
      cause: extra?.cause,
    });
    this.name = 'ZkError';
    this.code = name;
    this.zkCode = code;
    this.op = op;
    this.path = path;
    this.opIndex = extra?.opIndex;
  }

  /** True when retrying the request later could succeed (connection trouble, not a logical refusal). */
  get transient(): boolean {
    return TRANSIENT.has(this.code);
  }
}

/** Is `err` a ZkError, optionally with one of the given code names? */
export function isZkError(err: unknown, ...codes: ZkCodeName[]): err is ZkError {
  return err instanceof ZkError && (codes.length === 0 || codes.includes(err.code));
}
