/**
 * The dashboard's live feed: every open Server-Sent Events stream (`GET /events`), what each gets when
 * it opens (`hello`: the page's settings and chart history, then the current snapshot), and every
 * later `snapshot` sent to all of them. A burst of changes of masters or workers sends one snapshot;
 * a client that stopped reading is dropped rather than buffered without end; there are at most
 * `maxClients` streams at once.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, SECURITY_HEADERS, WebErrorCodes } from './http.js';
import type { Snapshot } from './snapshot.js';

/** A client whose unsent feed passes this many bytes is dropped. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Changes this close together send one snapshot. */
const CHANGE_DELAY_MS = 150;

export class EventHub {
  readonly #clients = new Set<ServerResponse>();
  readonly #maxClients: number;
  readonly #snapshot: () => Snapshot;
  #changeTimer: NodeJS.Timeout | undefined;

  constructor(maxClients: number, snapshot: () => Snapshot) {
    this.#maxClients = maxClients;
    this.#snapshot = snapshot;
  }

  /** Open a stream: `hello` (the page's settings), then the current snapshot, then every broadcast. */
  open(req: IncomingMessage, res: ServerResponse, hello: Record<string, unknown>): void {
    if (this.#clients.size >= this.#maxClients) {
      throw new HttpError(
        503,
        WebErrorCodes.BAD_REQUEST,
        `too many live dashboards open (${this.#maxClients}); close one`,
      );
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    res.write(`event: hello\ndata: ${JSON.stringify(hello)}\n\n`);
    res.write(`event: snapshot\ndata: ${JSON.stringify(this.#snapshot())}\n\n`);
    this.#clients.add(res);
    req.socket.setNoDelay(true);
    const drop = () => this.#clients.delete(res);
    req.on('close', drop);
    res.on('error', drop);
  }

  /** Send one event to every open stream. */
  broadcast(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of this.#clients) {
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        res.destroy();
        this.#clients.delete(res);
        continue;
      }
      res.write(frame);
    }
  }

  /** Something the page shows changed: send a snapshot soon (once for a burst of changes). */
  changed = (): void => {
    if (this.#changeTimer || this.#clients.size === 0) return;
    this.#changeTimer = setTimeout(() => {
      this.#changeTimer = undefined;
      this.broadcast('snapshot', this.#snapshot());
    }, CHANGE_DELAY_MS);
    this.#changeTimer.unref?.();
  };

  /** End every stream. */
  close(): void {
    clearTimeout(this.#changeTimer);
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }
}
