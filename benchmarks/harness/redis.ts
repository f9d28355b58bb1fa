/**
 * A redis-server for the BullMQ peer, on a free loopback port, in a temp dir, stopped on every exit path.
 *
 * Persistence (`--redis-persistence`): `everysec` (the default) is AOF with fsync once a second, the
 * setting Redis recommends and most deployments run; `always` fsyncs every write before answering, as
 * ZooKeeper does (its default forceSync=yes); `none` keeps nothing on disk. RDB snapshots are off in
 * every mode (`--save ''`), so a snapshot never lands in the middle of a measurement.
 *
 * Process hygiene as for ZooKeeper (src/zk/server-process.ts): a /bin/sh wrapper forks a watchdog that reads
 * our stdin pipe and `exec`s redis-server, so the child's pid is redis' pid. If this process dies
 * without stopping it (even SIGKILL) the pipe closes and the watchdog SIGKILLs redis.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../../src/zk/free-ports.js';
import type { RedisPersistence } from './types.js';

const WRAPPER = [
  'exec 3<&0 </dev/null',
  '(read line <&3; [ "$line" = exit ] && exit 0; kill -9 $$ 2>/dev/null) &',
  'exec "$@" 3<&-',
].join('\n');

export interface RedisServer {
  port: number;
  pid: number;
  version: string;
  persistence: RedisPersistence;
  /** The command line it runs with (for the report). */
  args: string[];
  stop(): Promise<void>;
}

/** Why redis-server cannot be used here, or undefined when it can. */
export function redisUnavailable(): string | undefined {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.error) {
    return 'redis-server was not found on PATH: install it with `apt-get install redis-server` (or run `scripts/setup.sh --bench`)';
  }
  if (r.status !== 0) return `redis-server --version failed: ${r.stderr.trim() || `exit code ${r.status}`}`;
  return undefined;
}

const live = new Set<ChildProcess>();
let hooked = false;
function killAllSync(): void {
  for (const c of live) {
    try {
      if (c.pid) process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export async function startRedis(persistence: RedisPersistence): Promise<RedisServer> {
  const why = redisUnavailable();
  if (why) throw new Error(why);
  const port = (await freePorts(1))[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'zkfarm-bench-redis-'));
  const durability =
    persistence === 'none'
      ? ['--appendonly', 'no']
      : ['--appendonly', 'yes', '--appendfsync', persistence === 'always' ? 'always' : 'everysec'];
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--protected-mode',
    'yes',
    '--save',
    '',
    ...durability,
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ];
  const child = spawn('/bin/sh', ['-c', WRAPPER, 'zkfarm-redis', 'redis-server', ...args], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  live.add(child);
  if (!hooked) {
    hooked = true;
    process.once('exit', killAllSync);
  }
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  child.stdin?.on('error', () => {});
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
    live.delete(child);
    child.stdin?.end('exit\n');
  });
  const stop = async () => {
    if (!gone && child.pid) {
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        // raced with its exit
      }
      const t = setTimeout(() => {
        if (!gone && child.pid) process.kill(child.pid, 'SIGKILL');
      }, 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (gone)
        throw new Error(`redis-server exited at start: ${stderr.trim().split('\n').slice(-3).join(' / ')}`);
      try {
        if ((await redisCommand(port, ['PING'], 500)) === 'PONG') break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline)
        throw new Error(`redis-server did not answer PING on 127.0.0.1:${port} within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const info = await redisInfo(port);
    return {
      port,
      pid: child.pid ?? 0,
      version: info['redis_version'] ?? '?',
      persistence,
      args: ['redis-server', ...args],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function encodeCommand(args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/**
 * Send one command and read one reply (simple string, error, integer or bulk string): enough for PING,
 * INFO and FLUSHALL without a client library.
 */
export function redisCommand(port: number, args: string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let settled = false;
    const sock = netConnect({ host: '127.0.0.1', port });
    const done = (err: Error | undefined, value?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value ?? '');
    };
    const timer = setTimeout(
      () => done(new Error(`redis ${args[0]}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on('connect', () => sock.write(encodeCommand(args)));
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const head = buf.subarray(0, eol).toString('utf8');
      const kind = head[0];
      if (kind === '+' || kind === ':') return done(undefined, head.slice(1));
      if (kind === '-') return done(new Error(`redis ${args[0]}: ${head.slice(1)}`));
      if (kind === '$') {
        const len = Number(head.slice(1));
        if (len < 0) return done(undefined, '');
        if (buf.length >= eol + 2 + len)
          return done(undefined, buf.subarray(eol + 2, eol + 2 + len).toString('utf8'));
        return;
      }
      done(new Error(`redis ${args[0]}: unexpected reply ${JSON.stringify(head.slice(0, 40))}`));
    });
    sock.on('error', (e) => done(e));
    sock.on('close', () => done(new Error(`redis ${args[0]}: connection closed before a reply`)));
  });
}

/** `INFO` as key → value. */
export async function redisInfo(port: number, section?: string): Promise<Record<string, string>> {
  const text = await redisCommand(port, section ? ['INFO', section] : ['INFO']);
  const out: Record<string, string> = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}
