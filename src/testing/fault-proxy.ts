/**
 * An in-process TCP relay for fault injection between a ZooKeeper client and its servers.
 *
 * Put it in front of a server, give the client `proxy.address` (plus the original chroot, see
 * `proxyConnectString`), and then:
 * - `setDelay(ms)`   every chunk is forwarded `ms` after it arrived, each way, order kept;
 * - `cut(ms?)`       open connections are reset and new ones are reset on accept, until `restore()`
 *                    or until `ms` passes: the client sees a dropped connection at once;
 * - `blackhole(on)`  a silent partition: connections stay open, nothing is forwarded either way
 *                    (sockets are paused, so TCP flow control holds the bytes as a real partition
 *                    would), new connections are accepted and held; `blackhole(false)` delivers
 *                    what was held;
 * - `restore()`      ends every fault (cut, blackhole, delay).
 *
 * Several targets (an ensemble): each new connection goes to the next target, round-robin, so a
 * client that reconnects after a failure tries the next server. A connect string's chroot is not
 * part of the proxy: keep it on the client's connect string (`proxyConnectString` does that).
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { parseConnectString } from '../zk/connect-string.js';

export type ProxyTarget = string | { host: string; port: number };

export interface FaultProxyOptions {
  /** `'host:port'`, `{ host, port }`, or a connect string `'h1:p1,h2:p2[/chroot]'` (chroot ignored). */
  target?: ProxyTarget;
  /** Several targets, used round-robin per new connection. Give `target` or `targets`. */
  targets?: readonly ProxyTarget[];
  /** @defaultValue '127.0.0.1' */
  listenHost?: string;
  /** @defaultValue 0 (a free port) */
  port?: number;
}

export interface FaultProxy {
  readonly port: number;
  /** `listenHost:port` */
  readonly address: string;
  /** Open client connections. */
  readonly connections: number;
  /** Reset all connections and refuse new ones until `restore()` or for `durationMs`. */
  cut(durationMs?: number): void;
  /** End every fault: cut, blackhole and delay. */
  restore(): void;
  /** Delay every chunk by `ms` in both directions (0 = none). */
  setDelay(ms: number): void;
  /** Hold connections open but forward nothing (a silent partition), or end that. */
  blackhole(on: boolean): void;
  close(): Promise<void>;
}

interface HostPort {
  host: string;
  port: number;
}

function invalid(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, message);
}

function parseTargets(t: ProxyTarget): HostPort[] {
  if (typeof t === 'string') return parseConnectString(t, 'fault proxy target').servers;
  if (!t || typeof t.host !== 'string' || !Number.isInteger(t.port)) {
    throw invalid(`fault proxy target: expected { host, port }, got ${JSON.stringify(t)}`);
  }
  return [{ host: t.host, port: t.port }];
}

/** `connect` with its hosts replaced by the proxy's address; the chroot, if any, is kept. */
export function proxyConnectString(proxy: Pick<FaultProxy, 'address'>, connect: string): string {
  const slash = connect.indexOf('/');
  return proxy.address + (slash >= 0 ? connect.slice(slash) : '');
}

/**
 * Close a socket with a reset (RST), or plainly when it cannot be reset: one that is connecting, gone,
 * or already ended. A socket whose end() is still being flushed refuses the reset (EINVAL) and Node then
 * leaves its handle open for good; the thread that owns it could never exit (worker.terminate() spins).
 */
export function resetSocket(s: Socket): void {
  try {
    if (s.connecting || s.destroyed || s.writableEnded) s.destroy();
    else s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

/** Shared switches, read by every link. */
interface Faults {
  delayMs: number;
  blackholed: boolean;
}

/** One direction of a link: a FIFO of chunks, each released at its due time. */
class Relay {
  private readonly queue: { chunk: Buffer; due: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The source closed: end the destination once the queue is empty. */
  private sourceDone = false;
  private ended = false;

  constructor(
    private readonly from: () => Socket | undefined,
    private readonly to: () => Socket | undefined,
    private readonly faults: Faults,
  ) {}

  push(chunk: Buffer): void {
    this.queue.push({ chunk, due: Date.now() + this.faults.delayMs });
    this.pump();
  }

  finish(): void {
    this.sourceDone = true;
    this.pump();
  }

  pump(): void {
    const dest = this.to();
    if (this.timer || !dest || dest.destroyed || this.faults.blackholed) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const wait = head.due - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, wait);
        return;
      }
      this.queue.shift();
      const source = this.from();
      if (!dest.write(head.chunk) && source && !source.isPaused()) {
        source.pause(); // backpressure: let TCP slow the sender down
        dest.once('drain', () => {
          if (!this.faults.blackholed) source.resume();
        });
      }
    }
    if (this.sourceDone && !this.ended) {
      this.ended = true;
      dest.end();
    }
  }

  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

/** A client connection and its upstream connection. */
class Link {
  upstream: Socket | undefined;
  private readonly up: Relay;
  private readonly down: Relay;
  private closed = false;

  constructor(
    readonly client: Socket,
    private readonly target: HostPort,
    faults: Faults,
    private readonly onClose: (link: Link) => void,
  ) {
    const upstream = () => (this.upstream?.connecting ? undefined : this.upstream);
    this.up = new Relay(() => client, upstream, faults);
    this.down = new Relay(upstream, () => client, faults);
    client.on('data', (c: Buffer) => this.up.push(c));
    client.on('close', () => this.sourceClosed(this.up));
    client.on('error', () => this.destroy());
    if (faults.blackholed) client.pause();
    else this.connectUpstream();
  }

  connectUpstream(): void {
    if (this.upstream || this.closed) return;
    const up = tcpConnect(this.target);
    this.upstream = up;
    up.on('connect', () => this.up.pump());
    up.on('data', (c: Buffer) => this.down.push(c));
    up.on('close', () => this.sourceClosed(this.down));
    up.on('error', () => this.destroy());
  }

  private sourceClosed(relay: Relay): void {
    if (this.closed) return;
    if (this.client.destroyed && (this.upstream === undefined || this.upstream.destroyed)) this.destroy();
    else relay.finish();
  }

  hold(): void {
    this.client.pause();
    this.upstream?.pause();
  }

  release(): void {
    if (this.closed) return;
    this.client.resume();
    this.upstream?.resume();
    if (!this.upstream) this.connectUpstream();
    this.up.pump();
    this.down.pump();
  }

  /** Hard close both sides (RST to the client). */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.up.clear();
    this.down.clear();
    resetSocket(this.client);
    this.upstream?.destroy();
    this.onClose(this);
  }
}

/** Start a fault-injection relay listening on `listenHost` (loopback by default). */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  if ((opts.target === undefined) === (opts.targets === undefined)) {
    throw invalid('startFaultProxy: give exactly one of `target` or `targets`');
  }
  const targets = (opts.targets ?? [opts.target!]).flatMap(parseTargets);
  if (targets.length === 0) throw invalid('startFaultProxy: no target host:port given');
  const listenHost = opts.listenHost ?? '127.0.0.1';
  const faults: Faults = { delayMs: 0, blackholed: false };
  const links = new Set<Link>();
  let cutActive = false;
  let cutTimer: NodeJS.Timeout | undefined;
  let next = 0;

  const server: Server = createServer((client) => {
    if (cutActive) {
      client.on('error', () => {});
      resetSocket(client);
      return;
    }
    const target = targets[next++ % targets.length]!;
    links.add(new Link(client, target, faults, (l) => links.delete(l)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, listenHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('fault proxy: unexpected listen address');
  const port = addr.port;

  const endCut = () => {
    cutActive = false;
    clearTimeout(cutTimer);
    cutTimer = undefined;
  };
  const setBlackhole = (on: boolean) => {
    faults.blackholed = on;
    for (const l of links) {
      if (on) l.hold();
      else l.release();
    }
  };

  return {
    port,
    address: `${listenHost}:${port}`,
    get connections() {
      return links.size;
    },
    cut(durationMs?: number) {
      if (durationMs !== undefined && !(durationMs >= 0)) {
        throw invalid(`cut: durationMs must be >= 0, got ${durationMs}`);
      }
      endCut();
      cutActive = true;
      for (const l of [...links]) l.destroy();
      if (durationMs !== undefined) cutTimer = setTimeout(endCut, durationMs);
    },
    restore() {
      endCut();
      faults.delayMs = 0;
      setBlackhole(false);
    },
    setDelay(ms: number) {
      if (!(Number.isFinite(ms) && ms >= 0)) throw invalid(`setDelay: ms must be a number >= 0, got ${ms}`);
      faults.delayMs = ms;
    },
    blackhole(on: boolean) {
      setBlackhole(on);
    },
    async close() {
      endCut();
      for (const l of [...links]) l.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
