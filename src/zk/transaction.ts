/**
 * A transaction (ZooKeeper's `multi`): all of its operations happen, or none.
 *
 * Every operation is checked as it is added (path, data size); the first problem is kept and `commit()`
 * rejects with it, naming the operation (`opIndex`), before anything is sent. The whole request is
 * checked against the servers' jute.maxbuffer when it is framed (outbox.ts, request-frame.ts): a multi
 * whose operations together pass it is refused locally, since the server would drop the connection.
 */
import type { ZkClient } from './client.js';
import { ZK_CODES, ZkError } from './errors.js';
import { type Acl, encodedAcl, OP, type Reader, type Writer } from './jute.js';
import {
  CreateMode,
  type CreateModeValue,
  type Data,
  dataProblem,
  type OpResult,
  pathProblem,
  toBuffer,
  writeMultiEnd,
} from './ops.js';

type TxOp =
  | { type: typeof OP.create; path: string; data: Buffer; acl: Buffer; mode: number }
  | { type: typeof OP.delete | typeof OP.check; path: string; version: number }
  | { type: typeof OP.setData; path: string; data: Buffer; version: number };

/**
 * A transaction builder. `commit()` sends one `multi`; on failure it rejects with the ZkError of the
 * operation that failed (its `opIndex` says which) and nothing was applied. Versions are exact.
 */
export class Transaction {
  readonly #client: ZkClient;
  readonly #ops: TxOp[] = [];
  #problem: ZkError | undefined;

  constructor(client: ZkClient) {
    this.#client = client;
  }

  get size(): number {
    return this.#ops.length;
  }

  #check(op: string, path: string, sequential = false, data?: Buffer): boolean {
    if (this.#problem) return false;
    const why =
      pathProblem(path, sequential) ??
      (data ? dataProblem(data, this.#client.connection.maxBuffer) : undefined);
    if (why)
      this.#problem = new ZkError(ZK_CODES.BAD_ARGUMENTS, op, path, why, { opIndex: this.#ops.length });
    return why === undefined;
  }

  create(
    path: string,
    data?: Data,
    mode: CreateModeValue = CreateMode.PERSISTENT,
    acl?: readonly Acl[],
  ): this {
    const buf = toBuffer(data);
    if (this.#check('create', path, (mode & 2) !== 0, buf))
      this.#ops.push({ type: OP.create, path, data: buf, acl: encodedAcl(acl ?? this.#client.acl), mode });
    return this;
  }

  remove(path: string, version = -1): this {
    if (this.#check('remove', path)) this.#ops.push({ type: OP.delete, path, version });
    return this;
  }

  setData(path: string, data: Data, version = -1): this {
    const buf = toBuffer(data);
    if (this.#check('setData', path, false, buf))
      this.#ops.push({ type: OP.setData, path, data: buf, version });
    return this;
  }

  /** Require `path` to exist, at `version` when given (≥ 0). */
  check(path: string, version = -1): this {
    if (this.#check('check', path)) this.#ops.push({ type: OP.check, path, version });
    return this;
  }

  commit(): Promise<OpResult[]> {
    if (this.#problem) return Promise.reject(this.#problem);
    const ops = this.#ops;
    if (ops.length === 0) return Promise.resolve([]);
    const conn = this.#client.connection;
    return this.#client.send<OpResult[]>(
      OP.multi,
      'multi',
      ops[0]!.path,
      (w) => writeOps(w, ops, (p) => conn.serverPath(p)),
      (r) => readResults(r, ops, (p) => conn.clientPath(p)),
    );
  }
}

/** The multi request's operations, each with its header, then the end marker. */
function writeOps(w: Writer, ops: readonly TxOp[], serverPath: (p: string) => string): void {
  for (const op of ops) {
    w.int(op.type);
    w.bool(false);
    w.int(-1);
    w.ustring(serverPath(op.path));
    switch (op.type) {
      case OP.create:
        w.buffer(op.data);
        w.raw(op.acl);
        w.int(op.mode);
        break;
      case OP.setData:
        w.buffer(op.data);
        w.int(op.version);
        break;
      default:
        w.int(op.version);
    }
  }
  writeMultiEnd(w);
}

/**
 * The multi answer: one result per operation, or the ZkError of the first operation that failed (with
 * its index: operations before it report 0, those after it RUNTIME_INCONSISTENCY).
 */
function readResults(r: Reader, ops: readonly TxOp[], clientPath: (p: string) => string): OpResult[] {
  const results: OpResult[] = [];
  let failure: ZkError | undefined;
  for (;;) {
    const type = r.int();
    const done = r.bool();
    r.int();
    if (done) break;
    const i = results.length;
    switch (type) {
      case OP.create:
        results.push({ path: clientPath(r.ustring() ?? ops[i]?.path ?? '') });
        break;
      case OP.create2: {
        const path = clientPath(r.ustring() ?? ops[i]?.path ?? '');
        results.push({ path, stat: r.stat() });
        break;
      }
      case OP.setData:
        results.push({ stat: r.stat() });
        break;
      case OP.delete:
      case OP.check:
        results.push({});
        break;
      case OP.error: {
        const err = r.int();
        if (err !== 0 && failure === undefined)
          failure = new ZkError(err, 'multi', ops[i]?.path, undefined, { opIndex: i });
        results.push({});
        break;
      }
      default:
        throw new ZkError(
          ZK_CODES.MARSHALLING_ERROR,
          'multi',
          ops[i]?.path,
          `unexpected result type ${type}`,
        );
    }
  }
  if (failure) throw failure;
  return results;
}
