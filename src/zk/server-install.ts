/**
 * Where Java and the ZooKeeper jars are, for the server launcher (server.ts, ensemble.ts): an explicit
 * classpath, `$ZOOKEEPER_HOME` (an unpacked Apache release), or Debian's `/usr/share/java/zookeeper.jar`,
 * in that order. A missing piece is ZKFARM_ZK_NOT_FOUND with how to install it.
 *
 * Debian's jar names its dependencies in its manifest but ships no SLF4J binding, so without one the
 * server logs nothing: `slf4j-simple` (stderr) is added when the classpath has no binding.
 */
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { ErrorCodes, ZkfarmError } from '../errors.js';

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
