/**
 * One request framed into a connection's outgoing buffer: its length, xid and op code, then its
 * payload, refused before it is sent when the payload cannot be written or the frame is larger than
 * the servers' jute.maxbuffer (the server would drop the connection, and a client that resends it
 * would never get further). Also the errors a connection gives requests it will not send.
 */
import { ZK_CODES, ZkError } from './errors.js';
import type { Writer } from './jute.js';

/**
 * Write the frame at `w.pos`: on success returns its byte range; on failure `w` is left as it was and
 * the BAD_ARGUMENTS error is returned.
 */
export function frameRequest(
  w: Writer,
  request: { xid: number; type: number; op: string; path: string | undefined },
  encode: (w: Writer) => void,
  maxBuffer: number,
): { start: number; end: number } | ZkError {
  const { op, path } = request;
  const start = w.pos;
  try {
    w.int(0); // length, filled in below
    w.int(request.xid);
    w.int(request.type);
    encode(w);
  } catch (err) {
    w.pos = start;
    return new ZkError(ZK_CODES.BAD_ARGUMENTS, op, path, (err as Error).message);
  }
  const length = w.pos - start - 4;
  if (length > maxBuffer) {
    w.pos = start;
    return new ZkError(ZK_CODES.BAD_ARGUMENTS, op, path, tooLarge(op, length, maxBuffer));
  }
  w.buf.writeInt32BE(length, start);
  return { start, end: w.pos };
}

/** What requests of a closed client fail with. */
export function closedError(): ZkError {
  return new ZkError(ZK_CODES.CONNECTION_LOSS, 'request', undefined, 'the client was closed');
}

/** What requests fail with once the connection ended for good (`why`: the reason of an expiry). */
export function endedError(state: 'closed' | 'expired' | 'authFailed', why: string): ZkError {
  if (state === 'expired') return new ZkError(ZK_CODES.SESSION_EXPIRED, 'request', undefined, why);
  if (state === 'authFailed')
    return new ZkError(ZK_CODES.AUTH_FAILED, 'request', undefined, 'authentication failed');
  return closedError();
}

function tooLarge(op: string, length: number, max: number): string {
  return (
    `the ${op} request is ${length} bytes, over the servers' jute.maxbuffer of ${max} bytes (ZooKeeper would ` +
    'drop the connection): keep node data smaller, split the multi into smaller ones, or, if the servers run ' +
    'with a larger -Djute.maxbuffer, set the client option maxBuffer to match'
  );
}
