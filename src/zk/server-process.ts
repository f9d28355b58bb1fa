/**
 * One ZooKeeper server process, started, watched and stopped: the launcher's building block for a
 * standalone server (server.ts) and for each member of an ensemble (ensemble.ts).
 *
 * Process hygiene (no stray Java processes, ever; see also server-reaper.ts):
 * - Java runs behind a tiny `/bin/sh` wrapper that forks a watchdog and then `exec`s java, so the
 *   child's pid IS the java pid. The watchdog blocks reading our stdin pipe: when Node dies for any
 *   reason (even SIGKILL) the pipe closes and the watchdog SIGKILLs java. On a normal java exit we
 *   write `exit` to the pipe and the watchdog leaves quietly.
 * - Java is its own process group (`detached`), so `kill()` SIGKILLs java and watchdog in one call.
 * - The process's stdout/stderr go to `zookeeper.log` in the data dir; a failure quotes its last lines.
 * - Serving means `ruok` answers imok, `srvr` shows a Mode, and `conf` names this server's data dir (so
 *   another server that took the port is never mistaken for ours).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { fourLetterWord } from './four-letter.js';
import { configText, type ZkServerConfig } from './server-config.js';
import { forgetServerPid, removeTempDir, trackServerPid } from './server-reaper.js';
import type { PreparedTls } from './transport.js';

/**
 * `$0` is a label, `$1` a directory to remove if we are orphaned (or ''), the rest is java and its
 * arguments. fd 3 keeps our stdin pipe for the watchdog; java gets /dev/null. `$$` in the subshell
 * is the outer shell, which `exec` turns into java. EOF on the pipe (Node died) kills java and
 * removes the temp dir; the line `exit` (java ended normally) makes the watchdog just leave. Node
 * closes a child's stdin when the child exits, before the `exit` line can be written, so EOF also
 * comes when java ended first: then the kill fails (java is gone, and reaped) and the watchdog leaves
 * the data alone, so a server stopped with SIGTERM can be started again on its data dir.
 * Only the watchdog keeps the stdout pipe (java's stdout goes to the log on fd 2), so the child's
 * 'close' event tells us that java AND the watchdog are gone.
 */
const WRAPPER = [
  'exec 3<&0 </dev/null',
  'orphan_rm=$1; shift',
  '(read line <&3; [ "$line" = exit ] && exit 0; kill -9 $$ 2>/dev/null || exit 0;',
  ' [ -z "$orphan_rm" ] || { sleep 1; rm -rf "$orphan_rm"; }) &',
  'exec "$@" 3<&- >&2',
].join('\n');

export interface ZkServer {
  readonly host: string;
  /** The port clients connect to (the secureClientPort of a TLS-only server). */
  readonly port: number;
  /** `127.0.0.1:port` */
  readonly connectString: string;
  /** True for a TLS-only server: clients must connect with TLS. */
  readonly tls: boolean;
  readonly dataDir: string;
  /** The java pid while it runs, else undefined. */
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly logFile: string;
  readonly config: ZkServerConfig;
  /** SIGTERM, wait, SIGKILL after a few seconds; removes a data dir we created (unless keepData). */
  stop(): Promise<void>;
  /** SIGKILL now; data is kept for restart(). */
  kill(): Promise<void>;
  /** Start again (stopping first if running) on the same port and data dir. */
  restart(): Promise<void>;
  fourLetter(cmd: string, timeoutMs?: number): Promise<string>;
}

export interface ServerSpec {
  host: string;
  port: number;
  dataDir: string;
  /** Remove dataDir on stop(). */
  ownsDataDir: boolean;
  /** A temp dir the watchdog removes if our process dies without cleaning up. */
  orphanRemoveDir?: string;
  config: ZkServerConfig;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** The launcher's own TLS identity for probing a TLS-only server. */
  probeTls?: PreparedTls;
}

interface Running {
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

export class ZkServerProcess implements ZkServer {
  readonly host: string;
  readonly port: number;
  readonly connectString: string;
  readonly tls: boolean;
  readonly dataDir: string;
  readonly logFile: string;
  readonly config: ZkServerConfig;
  private current: Running | undefined;
  private removed = false;

  constructor(private readonly spec: ServerSpec) {
    this.host = spec.host;
    this.port = spec.port;
    this.connectString = `${spec.host}:${spec.port}`;
    this.tls = spec.probeTls !== undefined;
    this.dataDir = spec.dataDir;
    this.logFile = join(spec.dataDir, 'zookeeper.log');
    this.config = spec.config;
  }

  get pid(): number | undefined {
    return this.current && !this.current.exit ? this.current.pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  fourLetter(cmd: string, timeoutMs = 2000): Promise<string> {
    return fourLetterWord(this.host, this.port, cmd, timeoutMs, this.spec.probeTls);
  }

  /** Spawn java; with `waitServing`, resolve once it serves clients. */
  async start(waitServing = true): Promise<void> {
    if (this.removed) {
      throw new ZkfarmError(
        ErrorCodes.ZK_SERVER_FAILED,
        `server ${this.connectString} was stopped and its data dir removed`,
      );
    }
    if (this.running) return;
    const { config } = this;
    writeFileSync(config.configFile, configText(config.settings));
    const logFd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      const args = [...config.javaOpts, '-cp', config.classpath, config.mainClass, config.configFile];
      child = spawn(
        '/bin/sh',
        ['-c', WRAPPER, 'zkfarm-zookeeper', this.spec.orphanRemoveDir ?? '', config.java, ...args],
        {
          cwd: this.dataDir,
          detached: true,
          stdio: ['pipe', 'pipe', logFd],
        },
      );
    } finally {
      closeSync(logFd);
    }
    // pid 0 (spawn failed) is never signalled: every kill checks `exit` and `pid > 0`.
    const running: Running = { child, pid: child.pid ?? 0, exited: Promise.resolve() };
    running.exited = new Promise<void>((resolve) => {
      const onGone = (code: number | null, signal: NodeJS.Signals | null) => {
        if (running.exit) return;
        running.exit = { code, signal };
        forgetServerPid(running.pid);
        child.stdin?.end('exit\n'); // tell the watchdog to leave without killing
      };
      child.once('exit', onGone);
      child.once('close', () => resolve()); // java exited and the watchdog closed its stdout
      child.once('error', (err) => {
        writeFileSync(this.logFile, `zkfarm: could not start /bin/sh: ${describeError(err)}\n`, {
          flag: 'a',
        });
        onGone(null, null);
        resolve();
      });
    });
    child.stdin?.on('error', () => {}); // EPIPE once the watchdog is gone
    child.stdout?.resume(); // nothing is written there; read so EOF is seen
    this.current = running;
    if (running.pid > 0) {
      trackServerPid(running.pid);
    }
    if (waitServing) await this.waitServing(running);
  }

  /** Poll until `ruok` → imok, `srvr` shows a Mode, and `conf` names our data dir (not someone else's server). */
  async waitServing(running = this.current, timeoutMs = this.spec.startTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    for (;;) {
      if (!running || running.exit) {
        const how = running?.exit
          ? `exited (code ${running.exit.code}, signal ${running.exit.signal})`
          : 'is not running';
        throw this.failure(`ZooKeeper server ${this.connectString} ${how} before serving`);
      }
      try {
        const ruok = await this.fourLetter('ruok', 1000);
        if (ruok !== 'imok') last = `ruok answered "${ruok}"`;
        else {
          const srvr = await this.fourLetter('srvr', 1000);
          if (!/^Mode: /m.test(srvr)) last = `srvr answered "${srvr.trim()}"`;
          else {
            const conf = await this.fourLetter('conf', 1000);
            if (conf.includes(`dataDir=${this.dataDir}`) && !running.exit) return;
            last = `port ${this.port} is answered by another server (conf: ${conf.trim().split('\n')[0]})`;
          }
        }
      } catch (err) {
        last = describeError(err);
      }
      if (Date.now() >= deadline) {
        throw this.failure(
          `ZooKeeper server ${this.connectString} did not serve within ${timeoutMs} ms (${last})`,
        );
      }
      await Promise.race([sleep(100), running.exited]);
    }
  }

  private failure(message: string): ZkfarmError {
    return new ZkfarmError(
      ErrorCodes.ZK_SERVER_FAILED,
      `${message}. Log ${this.logFile}, last lines:\n${tailFile(this.logFile)}`,
    );
  }

  /** True when the log shows the port was taken (so a retry on other ports may help). */
  portConflict(): boolean {
    return /Address already in use|BindException/.test(tailFile(this.logFile, 200));
  }

  async kill(): Promise<void> {
    const running = this.current;
    if (!running || running.exit) return;
    if (running.pid <= 0) return running.exited;
    try {
      process.kill(-running.pid, 'SIGKILL');
    } catch {
      // raced with its own exit
    }
    await running.exited;
  }

  /** Graceful process stop; keeps data. */
  async halt(): Promise<void> {
    const running = this.current;
    if (!running || running.exit) return;
    if (running.pid <= 0) return running.exited;
    try {
      process.kill(running.pid, 'SIGTERM');
    } catch {
      // raced with its own exit
    }
    const timer = new Promise<'timeout'>((r) => setTimeout(r, this.spec.stopTimeoutMs, 'timeout').unref());
    if ((await Promise.race([running.exited, timer])) === 'timeout') await this.kill();
  }

  async stop(): Promise<void> {
    await this.halt();
    if (this.spec.ownsDataDir && !this.removed) {
      this.removed = true;
      removeTempDir(this.dataDir);
    }
  }

  async restart(): Promise<void> {
    await this.halt();
    await this.start();
  }
}

function tailFile(path: string, lines = 40): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
