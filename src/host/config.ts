/**
 * The host's configuration: a YAML or JSON file, checked with a schema, merged with command-line flags
 * into the FarmSpec the host starts from.
 *
 * Precedence, highest first: flags, the config file, defaults. `--masters N` / `--workers N` replace the
 * file's roles of that kind with N generated ones; per-role settings in the file are overridden by the
 * flags that set the same thing for every role (`--capacity`, `--allow-shell`, `--session-timeout`).
 * When the file lists no roles, a kind no flag gives runs its default count (1 master, 2 workers).
 *
 * Every problem is a ZKFARM_CONFIG_INVALID error whose message is one line naming the file, the field
 * path and what was expected versus what was found, e.g.
 *   farm.yaml: roles[1].type: expected "master" or "worker", got "wroker"
 * Relative paths in a file (handlerModules, workdir) are resolved against the file's directory.
 */
import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { resolveHandlerModule, TASK_DIRS, type TaskDirs } from '../exec/index.js';
import { validateName } from '../farm/protocol.js';
import type { ZkTlsFiles } from '../zk/transport.js';
import type { FarmSpec, RoleSpec } from './types.js';

/** Where the farm's ZooKeeper is when nothing says otherwise. */
export const DEFAULT_CONNECT = '127.0.0.1:2181';
/** Workers' output root when nothing says otherwise (relative to the current directory). */
export const DEFAULT_WORKDIR = 'zkfarm-work';
/** Roles of each kind a host runs when no flag gives that kind's count and the config file lists no roles. */
export const DEFAULT_ROLE_COUNTS = { master: 1, worker: 2 } as const;

const CONNECT_PATTERN = /^[^\s:/,]+:\d{1,5}(,[^\s:/,]+:\d{1,5})*(\/[^/\s]+)*\/?$/;
const AUTH_PATTERN = /^[^:\s]+:.+$/;

// ---------------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------------

const positiveInt = z.number().int().min(1);
const nonNegativeInt = z.number().int().min(0);

const roleSchema = z.strictObject({
  type: z.enum(['master', 'worker']),
  name: z.string().optional(),
  count: positiveInt.optional(),
  capacity: positiveInt.optional(),
  prefetch: z.union([nonNegativeInt, z.literal('auto')]).optional(),
  allowShell: z.boolean().optional(),
  defaultTimeoutMs: nonNegativeInt.optional(),
  taskDirs: z.enum(TASK_DIRS).optional(),
  sessionTimeout: positiveInt.optional(),
  handlerModules: z.array(z.string().min(1)).optional(),
});

const connectString = z.string().regex(CONNECT_PATTERN);
/** `zk: host:port/chroot`, or `zk: {connect, tls}` (tls: true, or the PEM files and a server name). */
const zkSchema = z.union([
  connectString,
  z.strictObject({
    connect: connectString.optional(),
    tls: z
      .union([
        z.boolean(),
        z.strictObject({
          ca: z.string().min(1).optional(),
          cert: z.string().min(1).optional(),
          key: z.string().min(1).optional(),
          servername: z.string().min(1).optional(),
        }),
      ])
      .optional(),
  }),
]);

const configSchema = z.strictObject({
  zk: zkSchema.optional(),
  sessionTimeout: positiveInt.optional(),
  workdir: z.string().min(1).optional(),
  allowShell: z.boolean().optional(),
  taskDirs: z.enum(TASK_DIRS).optional(),
  auth: z.string().regex(AUTH_PATTERN).optional(),
  handlerModules: z.array(z.string().min(1)).optional(),
  retention: z
    .strictObject({
      maxCount: positiveInt.optional(),
      maxAgeMs: positiveInt.optional(),
      intervalMs: positiveInt.optional(),
    })
    .optional(),
  namePrefix: z.string().optional(),
  roles: z.array(roleSchema).optional(),
  outputRetention: z
    .union([
      z.literal(false),
      z.strictObject({
        maxAgeMs: positiveInt.optional(),
        maxCount: nonNegativeInt.optional(),
        maxBytes: positiveInt.optional(),
        intervalMs: positiveInt.optional(),
      }),
    ])
    .optional(),
  httpToken: z.string().min(16).optional(),
});

type RawConfig = z.infer<typeof configSchema>;
export type ConfigRole = z.infer<typeof roleSchema>;

/** Fields only a worker role takes. */
const WORKER_ONLY = [
  'capacity',
  'prefetch',
  'allowShell',
  'defaultTimeoutMs',
  'taskDirs',
  'handlerModules',
] as const;

/** What each field expects, in words (the last name in a field's path picks the entry). */
const EXPECTED: Record<string, string> = {
  zk:
    'a connect string like "127.0.0.1:2181" or "h1:2181,h2:2181/farm-a", or a mapping with connect ' +
    'and tls (true, or ca, cert, key and servername)',
  connect: 'a connect string like "127.0.0.1:2181" or "h1:2181,h2:2181/farm-a"',
  tls: 'true, false, or a mapping with ca, cert, key (PEM file paths) and servername',
  ca: 'the path of a PEM file (the CA certificate)',
  cert: 'the path of a PEM file (the client certificate)',
  key: 'the path of a PEM file (the client key)',
  servername: "the host name the servers' certificates carry",
  sessionTimeout: 'a whole number of milliseconds >= 1',
  workdir: 'a directory path',
  allowShell: 'true or false',
  taskDirs: '"on-demand" or "always"',
  auth: 'credentials "user:password"',
  handlerModules: 'a list of module paths or package names',
  'handlerModules[]': 'a module path or package name',
  retention: 'a mapping with maxCount, maxAgeMs and/or intervalMs',
  maxCount: 'a whole number >= 1',
  maxAgeMs: 'a whole number of milliseconds >= 1',
  intervalMs: 'a whole number of milliseconds >= 1',
  outputRetention: 'false, or a mapping with maxAgeMs, maxCount, maxBytes and/or intervalMs',
  maxBytes: 'a whole number of bytes >= 1',
  httpToken: "the dashboard's token: a string of at least 16 characters",
  namePrefix: 'a name prefix (letters, digits, ".", "_" or "-")',
  roles: 'a list of roles like {type: worker, count: 4}',
  'roles[]': 'a role like {type: worker, count: 4} or {type: master, name: m1}',
  type: '"master" or "worker"',
  name: 'a role name (letters, digits, ".", "_" or "-")',
  count: 'a whole number >= 1',
  capacity: 'a whole number >= 1',
  prefetch: 'a whole number >= 0, or "auto"',
  defaultTimeoutMs: 'a whole number of milliseconds >= 0',
  '': 'a mapping of settings (zk, workdir, roles, ...)',
};

/** The keys each mapping accepts, for "did you mean" hints. */
const KEYS = {
  top: Object.keys(configSchema.shape),
  role: Object.keys(roleSchema.shape),
  retention: ['maxCount', 'maxAgeMs', 'intervalMs'],
  zk: ['connect', 'tls'],
  tls: ['ca', 'cert', 'key', 'servername'],
};

// ---------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------

function configError(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.CONFIG_INVALID, message.replace(/\s*\n\s*/g, ' '));
}

/** `roles[1].type` from `['roles', 1, 'type']`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** A short, readable form of a value someone wrote. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `a list (${value.length} item${value.length === 1 ? '' : 's'})`;
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function expectedFor(path: readonly PropertyKey[]): string | undefined {
  const last = path.at(-1);
  if (typeof last === 'number') {
    const parent = path.at(-2);
    return EXPECTED[`${String(parent)}[]`];
  }
  return EXPECTED[last === undefined ? '' : String(last)];
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
    }
  }
  return d[a.length]![b.length]!;
}

function unknownKeyMessage(key: string, path: readonly PropertyKey[]): string {
  const last = path.at(-1);
  const allowed =
    typeof last === 'number'
      ? KEYS.role
      : last === 'retention' || last === 'zk' || last === 'tls'
        ? KEYS[last]
        : KEYS.top;
  const closest = (keys: string[]) =>
    keys.filter((k) => distance(key, k) <= 2).sort((a, b) => distance(key, a) - distance(key, b))[0];
  const close = closest(allowed);
  const roleKey = allowed === KEYS.top ? closest(KEYS.role.filter((k) => !allowed.includes(k))) : undefined;
  const hint = close
    ? `did you mean "${close}"?`
    : roleKey
      ? `"${roleKey}" is set per role: put it in an entry of roles`
      : `expected one of ${allowed.join(', ')}`;
  return `unknown key "${key}" (${hint})`;
}

/**
 * For a value that fits none of a union's shapes (`zk`: a string or a mapping), the problem of the
 * shape it took (a mapping with a bad field), with its full path.
 */
function unwrapUnion(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const inner = issue.errors.map((list) => list[0]).find((i) => i !== undefined && i.path.length > 0);
  return inner ? unwrapUnion({ ...inner, path: [...issue.path, ...inner.path] } as z.core.$ZodIssue) : issue;
}

/** One line for the first schema problem (and how many more there are). */
function schemaMessage(label: string, error: z.ZodError, raw: unknown): string {
  const issues = error.issues;
  const issue = unwrapUnion(issues[0]!);
  const more =
    issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    return `${label}: ${formatPath([...issue.path, key])}: ${unknownKeyMessage(key, issue.path)}${more}`;
  }
  const where = formatPath(issue.path) || '(top level)';
  const value = valueAt(raw, issue.path);
  const expected = expectedFor(issue.path);
  if (value === undefined) {
    return `${label}: ${where}: missing: expected ${expected ?? issue.message}${more}`;
  }
  const what = expected ? `expected ${expected}` : issue.message;
  return `${label}: ${where}: ${what}, got ${describeValue(value)}${more}`;
}

// ---------------------------------------------------------------------------------------------------
// Loading a file
// ---------------------------------------------------------------------------------------------------

export interface ConfigFile {
  /** Absolute path of the file. */
  path: string;
  /** The file as the user named it (used in messages). */
  label: string;
  zk?: string;
  /** `zk.tls`: TLS on, with these files (absolute) and server name; `{}` when only `tls: true`. */
  zkTls?: Partial<ZkTlsFiles>;
  sessionTimeout?: number;
  /** Absolute (resolved against the file's directory). */
  workdir?: string;
  allowShell?: boolean;
  taskDirs?: TaskDirs;
  auth?: string;
  /** Absolute paths (or package names), checked to exist. */
  handlerModules?: string[];
  retention?: { maxCount?: number; maxAgeMs?: number; intervalMs?: number };
  outputRetention?: FarmSpec['outputRetention'];
  /** The dashboard's token (`runtime --http`). */
  httpToken?: string;
  namePrefix?: string;
  /** Roles, with their handlerModules resolved like the top-level ones. */
  roles?: ConfigRole[];
}

function lineColumn(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, col: offset - before.lastIndexOf('\n') };
}

function parseJson(label: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /at position (\d+)/.exec(msg);
    const lc = pos ? lineColumn(text, Number(pos[1])) : undefined;
    const reason = msg.replace(/\s*\(line \d+ column \d+\)/, '').replace(/ in JSON at position \d+/, '');
    throw configError(`${label}: ${lc ? `line ${lc.line}, column ${lc.col}: ` : ''}bad JSON: ${reason}`);
  }
}

function parseYaml(label: string, text: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const reason = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '').trim();
    throw configError(`${label}: ${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}bad YAML: ${reason}`);
  }
  return doc.toJS();
}

const MODULE_PATH = /^\.{0,2}\/|\.(m|c)?(j|t)s$/;

/** Resolve a handler module named in the file: paths against the file's directory; must exist. */
async function resolveModule(label: string, field: string, spec: string, dir: string): Promise<string> {
  if (spec.startsWith('file:')) return spec;
  if (isAbsolute(spec) || MODULE_PATH.test(spec)) {
    const path = resolve(dir, spec);
    const isFile = await stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!isFile) {
      throw configError(
        `${label}: ${field}: handler module ${JSON.stringify(spec)} not found: no file at ${path}` +
          (isAbsolute(spec) ? '' : " (relative paths are resolved against the config file's directory)"),
      );
    }
    return path;
  }
  try {
    await resolveHandlerModule(spec, dir);
    return spec;
  } catch {
    throw configError(
      `${label}: ${field}: handler module ${JSON.stringify(spec)} not found: no file at ${resolve(dir, spec)} ` +
        `and no package of that name installed from ${dir}`,
    );
  }
}

/**
 * Read, parse and check a config file (YAML or JSON: by extension, else by content).
 * Throws ZKFARM_CONFIG_INVALID with one line naming the file, the field and the problem.
 */
export async function loadConfigFile(path: string): Promise<ConfigFile> {
  const label = path;
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw configError(`${label}: cannot read the config file: ${why} (looked at ${abs})`);
  }
  if (text.trim() === '') {
    throw configError(
      `${label}: the file is empty: expected a mapping of settings (zk, workdir, roles, ...)`,
    );
  }
  const ext = extname(abs).toLowerCase();
  const json = ext === '.json' || (ext !== '.yaml' && ext !== '.yml' && text.trimStart().startsWith('{'));
  const raw = json ? parseJson(label, text) : parseYaml(label, text);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw configError(
      `${label}: expected a mapping of settings (zk, workdir, roles, ...) at the top level, got ${describeValue(raw)}`,
    );
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw configError(schemaMessage(label, parsed.error, raw));
  return finishConfig(label, abs, parsed.data);
}

async function finishConfig(label: string, abs: string, data: RawConfig): Promise<ConfigFile> {
  const dir = dirname(abs);
  const roles = data.roles ?? [];
  roles.forEach((role, i) => {
    if (role.name !== undefined && role.count !== undefined && role.count > 1) {
      throw configError(
        `${label}: roles[${i}].count: a role with a name is one role: expected no count (or 1) with name ` +
          `${JSON.stringify(role.name)}, got ${role.count}; drop the name to get generated names`,
      );
    }
    if (role.name !== undefined) checkName(`${label}: roles[${i}].name`, role.name);
    if (role.type === 'master') {
      for (const key of WORKER_ONLY) {
        if (role[key] !== undefined) {
          throw configError(
            `${label}: roles[${i}].${key}: only worker roles take ${key}, and this role is a master`,
          );
        }
      }
    }
  });
  if (data.namePrefix !== undefined) checkName(`${label}: namePrefix`, data.namePrefix, 'prefix');
  const modules = async (list: string[] | undefined, field: string) =>
    list === undefined
      ? undefined
      : Promise.all(list.map((m, i) => resolveModule(label, `${field}[${i}]`, m, dir)));
  const config: ConfigFile = { path: abs, label };
  if (typeof data.zk === 'string') config.zk = data.zk;
  else if (data.zk !== undefined) {
    if (data.zk.connect !== undefined) config.zk = data.zk.connect;
    const tls = zkTlsFrom(data.zk.tls, dir);
    if (tls) config.zkTls = tls;
  }
  if (data.sessionTimeout !== undefined) config.sessionTimeout = data.sessionTimeout;
  if (data.workdir !== undefined) config.workdir = resolve(dir, data.workdir);
  if (data.allowShell !== undefined) config.allowShell = data.allowShell;
  if (data.taskDirs !== undefined) config.taskDirs = data.taskDirs;
  if (data.auth !== undefined) config.auth = data.auth;
  const top = await modules(data.handlerModules, 'handlerModules');
  if (top !== undefined) config.handlerModules = top;
  if (data.retention !== undefined) config.retention = data.retention;
  if (data.outputRetention !== undefined) config.outputRetention = data.outputRetention;
  if (data.httpToken !== undefined) config.httpToken = data.httpToken;
  if (data.namePrefix !== undefined) config.namePrefix = data.namePrefix;
  if (data.roles !== undefined) {
    config.roles = [];
    for (const [i, role] of data.roles.entries()) {
      const own = await modules(role.handlerModules, `roles[${i}].handlerModules`);
      config.roles.push(own === undefined ? role : { ...role, handlerModules: own });
    }
  }
  return config;
}

/** `zk.tls` of a file: its PEM paths resolved against the file's directory; undefined when off. */
function zkTlsFrom(
  tls: boolean | { ca?: string; cert?: string; key?: string; servername?: string } | undefined,
  dir: string,
): Partial<ZkTlsFiles> | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return {};
  const out: Partial<ZkTlsFiles> = {};
  for (const key of ['ca', 'cert', 'key'] as const)
    if (tls[key] !== undefined) out[key] = resolve(dir, tls[key]);
  if (tls.servername !== undefined) out.servername = tls.servername;
  return out;
}

function checkName(where: string, name: string, what: 'name' | 'prefix' = 'name'): void {
  try {
    // A prefix is checked as the shortest name it makes.
    validateName('role', what === 'prefix' ? `${name}-worker-1` : name);
  } catch {
    throw configError(
      `${where}: expected ${what === 'prefix' ? EXPECTED['namePrefix'] : EXPECTED['name']}, ` +
        `starting with a letter or digit, at most 128 characters, got ${describeValue(name)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// Merging with flags
// ---------------------------------------------------------------------------------------------------

/** The command-line flags that shape a farm (all optional; `undefined` means "not given"). */
export interface CliFlags {
  zk?: string;
  masters?: number;
  workers?: number;
  workdir?: string;
  capacity?: number;
  prefetch?: number | 'auto';
  allowShell?: boolean;
  taskDirs?: TaskDirs;
  sessionTimeout?: number;
  namePrefix?: string;
  auth?: string;
}

export interface ResolveContext {
  /** Relative `--workdir` and the default workdir are resolved against it. @defaultValue process.cwd() */
  cwd?: string;
  /** The default name prefix comes from it. @defaultValue os.hostname() */
  hostname?: string;
}

/** This machine's short host name, made safe for a role name. */
export function defaultNamePrefix(host: string = hostname()): string {
  const short = (host.split('.')[0] ?? '').replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return short.slice(0, 100) || 'zkfarm';
}

function checkFlag(flag: string, value: number | undefined, min: number): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= min)) {
    throw configError(`${flag}: expected a whole number >= ${min}, got ${describeValue(value)}`);
  }
}

function checkFlags(flags: CliFlags): void {
  checkFlag('--masters', flags.masters, 0);
  checkFlag('--workers', flags.workers, 0);
  checkFlag('--capacity', flags.capacity, 1);
  if (flags.prefetch !== 'auto') checkFlag('--prefetch', flags.prefetch, 0);
  checkFlag('--session-timeout', flags.sessionTimeout, 1);
  if (flags.zk !== undefined && !CONNECT_PATTERN.test(flags.zk)) {
    throw configError(`--zk: expected ${EXPECTED['zk']}, got ${describeValue(flags.zk)}`);
  }
  if (flags.auth !== undefined && !AUTH_PATTERN.test(flags.auth)) {
    throw configError(`--auth: expected ${EXPECTED['auth']}, got a value without ":"`);
  }
  if (flags.namePrefix !== undefined) checkName('--name-prefix', flags.namePrefix, 'prefix');
}

/** The connect string flags or file name, or undefined when neither does (then `runtime` embeds one). */
export function configuredConnect(config: ConfigFile | undefined, flags: CliFlags): string | undefined {
  return flags.zk ?? config?.zk;
}

/**
 * Merge a config file (optional) and flags into the spec a host starts from. See the module comment
 * for precedence. Throws ZKFARM_CONFIG_INVALID (one line) on a bad flag, a duplicate role name, or a
 * farm with no roles.
 */
export function resolveFarmSpec(
  config: ConfigFile | undefined,
  flags: CliFlags,
  context: ResolveContext = {},
): FarmSpec {
  checkFlags(flags);
  const cwd = context.cwd ?? process.cwd();
  const label = config?.label ?? 'flags';
  const prefix = flags.namePrefix ?? config?.namePrefix ?? defaultNamePrefix(context.hostname);

  const fileRoles = (config?.roles ?? []).map((role, index) => ({ role, index }));
  // A file without roles: each kind no flag gives has its default count.
  const noRolesGiven = fileRoles.length === 0;

  /** Each role with where it came from, for duplicate-name messages. */
  const roles: { spec: RoleSpec; origin: string; field: string }[] = [];
  const counters = { master: 0, worker: 0 };
  const generated = (kind: 'master' | 'worker') => `${prefix}-${kind}-${++counters[kind]}`;

  for (const kind of ['master', 'worker'] as const) {
    const flagCount = kind === 'master' ? flags.masters : flags.workers;
    if (flagCount !== undefined || noRolesGiven) {
      const n = flagCount ?? DEFAULT_ROLE_COUNTS[kind];
      for (let i = 0; i < n; i++) {
        const spec: RoleSpec = { kind, name: generated(kind) };
        if (kind === 'worker' && flags.capacity !== undefined) spec.capacity = flags.capacity;
        if (kind === 'worker' && flags.prefetch !== undefined) spec.prefetch = flags.prefetch;
        roles.push({ spec, origin: flagCount !== undefined ? `--${kind}s` : 'the defaults', field: '' });
      }
      continue;
    }
    for (const { role, index } of fileRoles) {
      if (role.type !== kind) continue;
      const n = role.name !== undefined ? 1 : (role.count ?? 1);
      for (let i = 0; i < n; i++) {
        const spec: RoleSpec = { kind, name: role.name ?? generated(kind) };
        const capacity = flags.capacity !== undefined && kind === 'worker' ? flags.capacity : role.capacity;
        if (capacity !== undefined) spec.capacity = capacity;
        const prefetch = flags.prefetch !== undefined && kind === 'worker' ? flags.prefetch : role.prefetch;
        if (prefetch !== undefined) spec.prefetch = prefetch;
        if (role.allowShell !== undefined && flags.allowShell === undefined)
          spec.allowShell = role.allowShell;
        if (role.defaultTimeoutMs !== undefined) spec.defaultTimeoutMs = role.defaultTimeoutMs;
        if (role.taskDirs !== undefined && flags.taskDirs === undefined) spec.taskDirs = role.taskDirs;
        if (role.sessionTimeout !== undefined && flags.sessionTimeout === undefined) {
          spec.sessionTimeout = role.sessionTimeout;
        }
        if (role.handlerModules !== undefined) spec.handlerModules = role.handlerModules;
        roles.push({ spec, origin: `roles[${index}]`, field: role.name !== undefined ? '.name' : '' });
      }
    }
  }

  // Generated names are made per kind, so a named role may collide with one.
  const seen = new Map<string, string>();
  for (const { spec, origin, field } of roles) {
    const where = origin.startsWith('roles[') ? `${label}: ${origin}${field}` : origin;
    checkName(where, spec.name);
    const first = seen.get(spec.name);
    if (first !== undefined) {
      throw configError(
        `${where}: duplicate role name ${JSON.stringify(spec.name)} (also made by ${first}); ` +
          `every role needs its own name: ${field === '.name' ? 'rename one' : 'rename the named role, or set namePrefix'}`,
      );
    }
    seen.set(spec.name, origin);
  }
  if (roles.length === 0) {
    throw configError(
      `${config ? `${label}: roles` : '--masters/--workers'}: no roles to run: expected at least one master or worker, ` +
        'got none (for example --masters 1 --workers 2)',
    );
  }

  const spec: FarmSpec = {
    connect: configuredConnect(config, flags) ?? DEFAULT_CONNECT,
    workdir:
      flags.workdir !== undefined
        ? resolve(cwd, flags.workdir)
        : (config?.workdir ?? resolve(cwd, DEFAULT_WORKDIR)),
    allowShell: flags.allowShell ?? config?.allowShell ?? false,
    roles: roles.map((r) => r.spec),
  };
  const sessionTimeout = flags.sessionTimeout ?? config?.sessionTimeout;
  if (sessionTimeout !== undefined) spec.sessionTimeout = sessionTimeout;
  const auth = flags.auth ?? config?.auth;
  if (auth !== undefined) spec.auth = auth;
  if (config?.handlerModules !== undefined) spec.handlerModules = config.handlerModules;
  if (config?.retention !== undefined) spec.retention = config.retention;
  if (config?.outputRetention !== undefined) spec.outputRetention = config.outputRetention;
  const taskDirs = flags.taskDirs ?? config?.taskDirs;
  if (taskDirs !== undefined) spec.taskDirs = taskDirs;
  return spec;
}
