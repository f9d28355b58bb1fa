/**
 * Cutting the byte stream from a server into frames (an int length, then that many bytes).
 *
 * A frame's length is checked the moment its four bytes are in: a negative length, or one over the
 * limit, means the client is out of step with the server (or the peer is not a ZooKeeper server), and
 * nothing good can come from buffering what follows. The check happens before any of the frame is
 * kept, so a bogus length can neither make the client wait for ever for bytes that never come nor make
 * it buffer hundreds of megabytes first.
 *
 * A large frame arrives in many chunks: they are kept as they come and joined once, when the frame is
 * complete (joining at every chunk would copy a 1 MB answer about a hundred times).
 */
import { DecodeError, Reader } from './jute.js';

export class FrameReader {
  readonly #maxFrame: number;
  /** Chunks of a frame not complete yet, how many bytes they hold, and the whole frame's size (or 0). */
  #partial: Buffer[] = [];
  #partialBytes = 0;
  #partialNeed = 0;

  /** `maxFrame`: the largest frame body (bytes after the length) accepted. */
  constructor(maxFrame: number) {
    this.#maxFrame = maxFrame;
  }

  /** Forget a partial frame (a new connection starts clean). */
  reset(): void {
    this.#partial = [];
    this.#partialBytes = 0;
    this.#partialNeed = 0;
  }

  /**
   * Take a chunk and call `onFrame` with a reader over each complete frame's body, in order. `onFrame`
   * returns false to stop (the connection was closed meanwhile): the rest is dropped. Throws a
   * DecodeError on a bad length.
   */
  push(chunk: Buffer, onFrame: (r: Reader) => boolean): void {
    let buf = chunk;
    if (this.#partialBytes > 0) {
      this.#partial.push(chunk);
      this.#partialBytes += chunk.length;
      if (this.#partialNeed === 0 && this.#partialBytes >= 4) {
        const head = Buffer.concat(this.#partial);
        this.#partial = [head];
        this.#partialNeed = 4 + this.#checkLength(head.readInt32BE(0));
      }
      if (this.#partialNeed === 0 || this.#partialBytes < this.#partialNeed) return;
      buf = Buffer.concat(this.#partial, this.#partialBytes);
      this.reset();
    }
    let pos = 0;
    while (buf.length - pos >= 4) {
      const len = this.#checkLength(buf.readInt32BE(pos));
      if (buf.length - pos - 4 < len) break;
      const r = new Reader(buf, pos + 4, pos + 4 + len);
      pos += 4 + len;
      if (!onFrame(r)) return;
    }
    if (pos < buf.length) {
      const rest = buf.subarray(pos);
      this.#partial = [rest];
      this.#partialBytes = rest.length;
      this.#partialNeed = rest.length >= 4 ? 4 + rest.readInt32BE(0) : 0;
    }
  }

  #checkLength(len: number): number {
    if (len < 0 || len > this.#maxFrame) {
      this.reset();
      throw new DecodeError(
        `the server sent a frame length of ${len} bytes (accepted: 0 to ${this.#maxFrame}); the connection ` +
          'is out of step with the server or the peer is not ZooKeeper (for answers that are really this ' +
          'large, raise the maxAnswerBytes option)',
      );
    }
    return len;
  }
}
