/**
 * Real Apache ZooKeeper servers on demand: one standalone server or a small ensemble, on loopback only.
 * Used by the tests, by `runtime` as its embedded ZooKeeper, and by the benchmarks.
 *
 * Process hygiene (no stray Java processes, ever):
 * - Java runs behind a tiny `/bin/sh` wrapper that forks a watchdog and then `exec`s java, so the
 *   child's pid IS the java pid. The watchdog blocks reading our stdin pipe: when Node dies for any
 *   reason (even SIGKILL) the pipe closes and the watchdog SIGKILLs java. On a normal java exit we
 *   write `exit` to the pipe and the watchdog leaves quietly.
 * - Java is its own process group (`detached`), so `kill()` SIGKILLs java and watchdog in one call.
 * - A module registry of live servers is SIGKILLed synchronously on process `exit`, on an uncaught
 *   exception (monitor only: the crash still happens), and on SIGINT/SIGTERM/SIGHUP when nobody else
 *   listens for that signal (then the signal is re-raised so its default action still applies).
 * - Only a pid whose exit we have not yet seen is ever signalled, so a reused pid is never hit.
 *
 * ZooKeeper 3.8 notes: Debian's jar names its dependencies in its manifest but ships no SLF4J binding,
 * so without one the server logs nothing; we add `slf4j-simple` (stderr) when the classpath has no
 * binding, and the process's stdout/stderr go to `zookeeper.log` in the data dir.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve as resolvePath } from 'node:path';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import { probeTls, tlsClasspath, tlsSettings, type ZkServerTlsOptions } from './server-tls.js';
import { openSocket, type PreparedTls } from './transport.js';

export type { ClientAuth, ZkServerTlsOptions } from './server-tls.js';

// ---------------------------------------------------------------------------------------------------
// Finding Java and ZooKeeper
// ---------------------------------------------------------------------------------------------------

export interface FindZooKeeperOptions {
  /** Explicit Java classpath (entries separated by `:`); every entry must exist. */
  classpath?: string;
  /** A ZooKeeper install (jars in `lib/` and the top directory). @defaultValue `$ZOOKEEPER_HOME` */
  zookeeperHome?: string;
  /** Path to the `java` executable. @defaultValue `$JAVA_HOME/bin/java`, else `java` on `PATH` */
  java?: string;
  /** Environment to read `ZOOKEEPER_HOME`, `JAVA_HOME` and `PATH` from. @defaultValue `process.env` */
  env?: NodeJS.ProcessEnv;
}

export interface ZooKeeperInstall {
  java: string;
  classpath: string;
}

const DEBIAN_JAR = '/usr/share/java/zookeeper.jar';
const HOW_TO_INSTALL =
  'Install it with `sudo apt-get install -y zookeeper` (or `bash scripts/setup.sh`), ' +
  'or set ZOOKEEPER_HOME to an Apache ZooKeeper install (and JAVA_HOME to a Java 11+ runtime), ' +
  'or pass --zk host:port to use an existing ZooKeeper server.';
const SLF4J_BINDING = /logback-classic|slf4j-(simple|log4j12|reload4j|jdk14|nop)|log4j-slf4j/;
const ZK_JAR = /^zookeeper(-\d[\w.-]*)?\.jar$/;

function notFound(what: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.ZK_NOT_FOUND, `${what}. ${HOW_TO_INSTALL}`);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return isFile(path);
  } catch {
    return false;
  }
}

function jarsIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.jar'))
      .sort()
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

function findJava(explicit: string | undefined, env: NodeJS.ProcessEnv): string {
  if (explicit !== undefined) {
    if (!isExecutable(explicit)) throw notFound(`Java was not found at "${explicit}" (the java option)`);
    return explicit;
  }
  if (env['JAVA_HOME']) {
    const java = join(env['JAVA_HOME'], 'bin', 'java');
    if (!isExecutable(java))
      throw notFound(`JAVA_HOME is "${env['JAVA_HOME']}" but ${java} is not executable`);
    return java;
  }
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, 'java'))) return join(dir, 'java');
  }
  throw notFound(`Java was not found: JAVA_HOME is unset and no \`java\` on PATH ("${env['PATH'] ?? ''}")`);
}

function findClasspath(opts: FindZooKeeperOptions, env: NodeJS.ProcessEnv): string[] {
  if (opts.classpath !== undefined) {
    const entries = opts.classpath.split(delimiter).filter(Boolean);
    if (entries.length === 0) throw notFound('The ZooKeeper classpath option is empty');
    for (const e of entries) {
      const path = e.endsWith('/*') ? e.slice(0, -2) : e;
      if (!existsSync(path)) throw notFound(`ZooKeeper classpath entry "${e}" does not exist`);
    }
    return entries;
  }
  const home = opts.zookeeperHome ?? env['ZOOKEEPER_HOME'];
  if (home) {
    const jars = [...jarsIn(join(home, 'lib')), ...jarsIn(home)];
    if (!jars.some((j) => ZK_JAR.test(j.slice(j.lastIndexOf('/') + 1)))) {
      throw notFound(`ZOOKEEPER_HOME is "${home}" but no zookeeper-<version>.jar is in it or in its lib/`);
    }
    // Upstream installs keep logback.xml in conf/; it must come first on the classpath.
    return existsSync(join(home, 'conf')) ? [join(home, 'conf'), ...jars] : jars;
  }
  if (isFile(DEBIAN_JAR)) return [DEBIAN_JAR];
  throw notFound(`ZooKeeper was not found (no classpath given, ZOOKEEPER_HOME unset, no ${DEBIAN_JAR})`);
}

/** Where Java and the ZooKeeper jars are; throws ZK_NOT_FOUND with install instructions. */
export function findZooKeeper(opts: FindZooKeeperOptions = {}): ZooKeeperInstall {
  const env = opts.env ?? process.env;
  const entries = findClasspath(opts, env);
  const java = findJava(opts.java, env);
  if (!entries.some((e) => SLF4J_BINDING.test(e))) {
    const zkJar = entries.find((e) => ZK_JAR.test(e.slice(e.lastIndexOf('/') + 1)));
    const candidates = [
      zkJar && join(dirname(zkJar), 'slf4j-simple.jar'),
      '/usr/share/java/slf4j-simple.jar',
    ];
    const binding = candidates.find((c): c is string => !!c && isFile(c));
    if (binding) entries.push(binding);
  }
  return { java, classpath: entries.join(delimiter) };
}

// ---------------------------------------------------------------------------------------------------
// Live-process registry and exit hooks
// ---------------------------------------------------------------------------------------------------

/** pid (= process group id) of every java we started whose exit we have not seen yet. */
const livePids = new Set<number>();
/** Temporary directories we created and must remove. */
const ownedTempDirs = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const signalHandlers = new Map<NodeJS.Signals, () => void>();
let exitHooksInstalled = false;

function killAllSync(): void {
  for (const pid of livePids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function onProcessExit(): void {
  killAllSync();
  for (const dir of ownedTempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort while exiting
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  if (process.listenerCount(sig) > 1) return; // someone else owns this signal; our 'exit' hook still runs
  onProcessExit(); // dying by a signal does not emit 'exit'
  uninstallSignalHandlers();
  process.kill(process.pid, sig); // default action, now that our listener is gone
}

function installHooks(): void {
  if (!exitHooksInstalled) {
    exitHooksInstalled = true;
    process.on('exit', onProcessExit);
    process.on('uncaughtExceptionMonitor', killAllSync);
  }
  for (const sig of SIGNALS) {
    if (signalHandlers.has(sig)) continue;
    const handler = () => onSignal(sig);
    signalHandlers.set(sig, handler);
    process.on(sig, handler);
  }
}

function uninstallSignalHandlers(): void {
  for (const [sig, handler] of signalHandlers) process.removeListener(sig, handler);
  signalHandlers.clear();
}

// ---------------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------------

const LOOPBACK = '127.0.0.1';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Ask a server a four-letter word (`ruok`, `srvr`, `stat`, `mntr`, `conf`, `cons`, ...), over TLS when
 * `tls` is given (a TLS-only server answers them on its secureClientPort).
 */
export function fourLetterWord(
  host: string,
  port: number,
  cmd: string,
  timeoutMs = 2000,
  tls?: PreparedTls,
): Promise<string> {
  if (!/^[a-z]{4}$/.test(cmd)) {
    return Promise.reject(
      new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `four-letter word must be 4 lowercase letters, got "${cmd}"`,
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    let refused: Error | undefined;
    const { socket: sock, ready } = openSocket({ host, port }, tls, (p) => {
      if (p.kind === 'tls') refused = p.error;
    });
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(
      () => done(new Error(`'${cmd}' to ${host}:${port}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.on(ready, () => sock.write(cmd));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => done());
    sock.on('close', () => done());
    sock.on('error', (e) => done(refused ?? e));
  });
}

/** `count` distinct free TCP ports on loopback (all held open together so they differ). */
export async function freePorts(count: number, host = LOOPBACK): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, host, () => resolve());
      });
    }
    return servers.map((s) => {
      const addr = s.address();
      if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
      return addr.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
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

function configText(settings: Record<string, string>): string {
  // Java Properties: a backslash is an escape character.
  const lines = Object.entries(settings).map(([k, v]) => `${k}=${v.replace(/\\/g, '\\\\')}`);
  return `# written by zkfarm\n${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------
// One server process
// ---------------------------------------------------------------------------------------------------

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

const DEFAULT_JAVA_OPTS = ['-Xmx256m', '-XX:+UseSerialGC'];
const FIXED_JAVA_OPTS = [
  '-Dzookeeper.admin.enableServer=false',
  '-Dzookeeper.jmx.log4j.disable=true',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
  '-Dorg.slf4j.simpleLogger.showDateTime=true',
  '-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS',
];

/** The settings a server runs with, for reports. */
export interface ZkServerConfig {
  mode: 'standalone' | 'quorum';
  java: string;
  classpath: string;
  mainClass: string;
  javaOpts: string[];
  configFile: string;
  /** The zoo.cfg settings, in file order. */
  settings: Record<string, string>;
}

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

interface ServerSpec {
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

class ZkServerProcess implements ZkServer {
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
        livePids.delete(running.pid);
        if (livePids.size === 0) uninstallSignalHandlers();
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
      livePids.add(running.pid);
      installHooks();
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
      rmSync(this.dataDir, { recursive: true, force: true });
      ownedTempDirs.delete(this.dataDir);
    }
  }

  async restart(): Promise<void> {
    await this.halt();
    await this.start();
  }
}

// ---------------------------------------------------------------------------------------------------
// Standalone server
// ---------------------------------------------------------------------------------------------------

export interface ZkServerOptions extends FindZooKeeperOptions {
  /** Client port on 127.0.0.1. @defaultValue a free loopback port */
  port?: number;
  /** Data dir (also holds zoo.cfg and zookeeper.log). @defaultValue a fresh temp dir, removed on stop() */
  dataDir?: string;
  /** Keep a temp data dir on stop(). @defaultValue false */
  keepData?: boolean;
  /** @defaultValue 2000 */
  tickTime?: number;
  /** Server-side session timeout bounds (ms). @defaultValue ZooKeeper's 2×/20× tickTime */
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
  /** More zoo.cfg settings; they override ours. */
  extraConfig?: Record<string, string | number | boolean>;
  /** @defaultValue 30000 */
  startTimeoutMs?: number;
  /** Wait this long after SIGTERM before SIGKILL. @defaultValue 5000 */
  stopTimeoutMs?: number;
  /** JVM options. @defaultValue ['-Xmx256m', '-XX:+UseSerialGC'] (admin server off is always added) */
  javaOpts?: string[];
  /** Serve TLS only, on `port` (see server-tls.ts). @defaultValue plaintext */
  tls?: ZkServerTlsOptions;
}

function checkPositive(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `${name} must be a positive integer, got ${String(value)}`,
    );
  }
}

function baseSettings(opts: ZkServerOptions, dataDir: string, port: number): Record<string, string> {
  checkPositive('tickTime', opts.tickTime);
  checkPositive('minSessionTimeout', opts.minSessionTimeout);
  checkPositive('maxSessionTimeout', opts.maxSessionTimeout);
  const s: Record<string, string> = {
    tickTime: String(opts.tickTime ?? 2000),
    initLimit: '10',
    syncLimit: '5',
    dataDir,
    clientPort: String(port),
    clientPortAddress: LOOPBACK,
    // Many clients from one address (tests, benchmarks): the default limit of 60 is too low.
    maxClientCnxns: '0',
    '4lw.commands.whitelist': '*',
    'admin.enableServer': 'false',
  };
  if (opts.minSessionTimeout !== undefined) s['minSessionTimeout'] = String(opts.minSessionTimeout);
  if (opts.maxSessionTimeout !== undefined) s['maxSessionTimeout'] = String(opts.maxSessionTimeout);
  return s;
}

/** A fresh temp dir; `removeAtExit` also removes it when the process exits. */
function makeTempDir(prefix: string, removeAtExit: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (removeAtExit) ownedTempDirs.add(dir);
  return dir;
}

/** Start one standalone ZooKeeper on 127.0.0.1 and wait until it serves. */
export async function startZkServer(opts: ZkServerOptions = {}): Promise<ZkServer> {
  const install = findZooKeeper(opts);
  checkPositive('port', opts.port);
  const probe = opts.tls ? probeTls(opts.tls) : undefined;
  const attempts = opts.port === undefined ? 3 : 1;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePorts(1))[0]!;
    const owns = opts.dataDir === undefined;
    // Absolute, as ZooKeeper echoes it in `conf` (which is how we recognise our own server).
    const dataDir =
      opts.dataDir !== undefined ? resolvePath(opts.dataDir) : makeTempDir('zkfarm-zk-', !opts.keepData);
    mkdirSync(dataDir, { recursive: true });
    const base = baseSettings(opts, dataDir, port);
    const settings = {
      ...(opts.tls ? tlsSettings(base, dataDir, opts.tls) : base),
      ...stringify(opts.extraConfig),
    };
    const server = new ZkServerProcess({
      host: LOOPBACK,
      port,
      dataDir,
      ownsDataDir: owns && !opts.keepData,
      ...(owns && !opts.keepData ? { orphanRemoveDir: dataDir } : {}),
      startTimeoutMs: opts.startTimeoutMs ?? 30_000,
      stopTimeoutMs: opts.stopTimeoutMs ?? 5_000,
      ...(probe ? { probeTls: probe } : {}),
      config: {
        mode: 'standalone',
        java: install.java,
        classpath: opts.tls ? tlsClasspath(install.classpath) : install.classpath,
        mainClass: 'org.apache.zookeeper.server.ZooKeeperServerMain',
        javaOpts: [...FIXED_JAVA_OPTS, ...(opts.javaOpts ?? DEFAULT_JAVA_OPTS)],
        configFile: join(dataDir, 'zoo.cfg'),
        settings,
      },
    });
    try {
      await server.start();
      return server;
    } catch (err) {
      const retry = attempt < attempts && server.portConflict();
      await server.kill();
      if (!retry) {
        if (owns && !opts.keepData) await server.stop();
        throw err;
      }
      await server.stop();
    }
  }
}

function stringify(extra: Record<string, string | number | boolean> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(extra ?? {}).map(([k, v]) => [k, String(v)]));
}

// ---------------------------------------------------------------------------------------------------
// Ensemble
// ---------------------------------------------------------------------------------------------------

/** Ensembles serve plaintext only (TLS-only servers are standalone). */
export interface ZkEnsembleOptions extends Omit<ZkServerOptions, 'port' | 'dataDir' | 'tls'> {
  /** Number of members. @defaultValue 3 */
  size?: number;
  /** Parent dir; member N lives in `<baseDir>/zk-N`. @defaultValue a fresh temp dir, removed on stop() */
  baseDir?: string;
}

export interface ZkEnsembleMember extends ZkServer {
  /** The member's `myid`. */
  readonly id: number;
  readonly peerPort: number;
  readonly electionPort: number;
}

export interface ZkEnsemble {
  readonly members: readonly ZkEnsembleMember[];
  /** All members, comma-separated. */
  readonly connectString: string;
  readonly baseDir: string;
  member(id: number): ZkEnsembleMember;
  stopMember(id: number): Promise<void>;
  killMember(id: number): Promise<void>;
  /** Start the member again; waits until it serves (which needs a quorum). */
  restartMember(id: number): Promise<void>;
  /** The id whose `srvr` says `Mode: leader`, if any running member says so. */
  leaderId(): Promise<number | undefined>;
  stop(): Promise<void>;
}

class EnsembleMember extends ZkServerProcess implements ZkEnsembleMember {
  constructor(
    spec: ServerSpec,
    readonly id: number,
    readonly peerPort: number,
    readonly electionPort: number,
  ) {
    super(spec);
  }
}

/**
 * Start `size` QuorumPeerMain processes on loopback and wait until every member serves
 * (a fresh ensemble whose members all started forms one quorum with all of them).
 */
export async function startZkEnsemble(opts: ZkEnsembleOptions = {}): Promise<ZkEnsemble> {
  const size = opts.size ?? 3;
  checkPositive('size', size);
  const install = findZooKeeper(opts);
  const owns = opts.baseDir === undefined;
  const baseDir =
    opts.baseDir !== undefined ? resolvePath(opts.baseDir) : makeTempDir('zkfarm-ensemble-', !opts.keepData);
  const removeBase = () => {
    if (owns && !opts.keepData) {
      rmSync(baseDir, { recursive: true, force: true });
      ownedTempDirs.delete(baseDir);
    }
  };
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(size * 3);
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    const servers: Record<string, string> = {};
    for (const id of ids) {
      servers[`server.${id}`] = `${LOOPBACK}:${ports[size + id - 1]}:${ports[2 * size + id - 1]}`;
    }
    const members = ids.map((id) => {
      const dataDir = join(baseDir, `zk-${id}`);
      rmSync(dataDir, { recursive: true, force: true });
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(join(dataDir, 'myid'), `${id}\n`);
      const port = ports[id - 1]!;
      const settings = { ...baseSettings(opts, dataDir, port), ...servers, ...stringify(opts.extraConfig) };
      return new EnsembleMember(
        {
          host: LOOPBACK,
          port,
          dataDir,
          ownsDataDir: false,
          ...(owns && !opts.keepData ? { orphanRemoveDir: baseDir } : {}),
          startTimeoutMs: opts.startTimeoutMs ?? 30_000,
          stopTimeoutMs: opts.stopTimeoutMs ?? 5_000,
          config: {
            mode: 'quorum',
            ...install,
            mainClass: 'org.apache.zookeeper.server.quorum.QuorumPeerMain',
            javaOpts: [...FIXED_JAVA_OPTS, ...(opts.javaOpts ?? DEFAULT_JAVA_OPTS)],
            configFile: join(dataDir, 'zoo.cfg'),
            settings,
          },
        },
        id,
        ports[size + id - 1]!,
        ports[2 * size + id - 1]!,
      );
    });
    try {
      for (const m of members) await m.start(false);
      await Promise.all(members.map((m) => m.waitServing()));
      return makeEnsemble(members, baseDir, removeBase);
    } catch (err) {
      const retry = attempt < 2 && members.some((m) => m.portConflict());
      await Promise.all(members.map((m) => m.kill()));
      if (!retry) {
        removeBase();
        throw err;
      }
    }
  }
}

function makeEnsemble(members: EnsembleMember[], baseDir: string, removeBase: () => void): ZkEnsemble {
  const member = (id: number): EnsembleMember => {
    const m = members.find((x) => x.id === id);
    if (!m) {
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `no ensemble member ${id}; ids are ${members.map((x) => x.id).join(', ')}`,
      );
    }
    return m;
  };
  return {
    members,
    baseDir,
    connectString: members.map((m) => m.connectString).join(','),
    member,
    stopMember: (id) => member(id).halt(),
    killMember: (id) => member(id).kill(),
    restartMember: (id) => member(id).restart(),
    async leaderId() {
      const modes = await Promise.all(
        members.map(async (m) => (m.running ? await m.fourLetter('srvr', 1000).catch(() => '') : '')),
      );
      const i = modes.findIndex((s) => /^Mode: leader$/m.test(s));
      return i === -1 ? undefined : members[i]!.id;
    },
    async stop() {
      await Promise.all(members.map((m) => m.halt()));
      removeBase();
    },
  };
}
