/**
 * The host's configuration: a YAML or JSON file, checked with a schema, merged with command-line flags
 * into the FarmSpec the host starts from.
 *
 * Precedence, highest first: flags, the config file, defaults. `--masters N` / `--workers N` replace the
 * file's roles of that kind with N generated ones; per-role settings in the file are overridden by the
 * flags that set the same thing for every role (`--capacity`, `--allow-shell`, `--session-timeout`).
 * When the file lists no roles, a kind no flag gives runs its default count (1 master, 2 workers).
 *
 * The file's fields and the flags are defined in options.ts (type, range, default, description); every
 * problem is a ZKFARM_CONFIG_INVALID error whose message is one line naming the file, the field path and
 * what was expected versus what was found, e.g.
 *   farm.yaml: roles[1].type: expected "master" or "worker", got "wroker"
 * Relative paths in a file (handlerModules, workdir) are resolved against the file's directory.
 */
import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { resolveHandlerModule, type TaskDirs } from '../exec/index.js';
import {
  type CheckHow,
  checkOptions,
  describeValue,
  mappingOf,
  type OptionsOf,
  problemLine,
} from '../farm/option-schema.js';
import { parseServiceSpec, type ServiceSpec } from '../services/model.js';
import type { ZkTlsFiles } from '../zk/transport.js';
import {
  DEFAULT_ROLE_COUNTS,
  DEFAULT_WORKDIR,
  fileFields,
  flagName,
  ROLE_ENTRY_EXPECTED,
  roleEntryFields,
  runtimeFlags,
  WORKER_ONLY,
} from './options.js';
import type { FarmSpec, RoleSpec } from './types.js';

export { DEFAULT_ROLE_COUNTS, DEFAULT_WORKDIR } from './options.js';

/** Where the farm's ZooKeeper is when nothing says otherwise. */
export const DEFAULT_CONNECT = '127.0.0.1:2181';

type RawConfig = OptionsOf<typeof fileFields>;
export type ConfigRole = OptionsOf<typeof roleEntryFields> & { type: 'master' | 'worker' };

// ---------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------

function configError(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.CONFIG_INVALID, message.replace(/\s*\n\s*/g, ' '));
}

/** How a problem in a file is told: the file's name first; a role key at the top level says where it goes. */
function fileHow(label: string): CheckHow {
  return {
    code: ErrorCodes.CONFIG_INVALID,
    prefix: `${label}: `,
    unknownKey: (key, path) =>
      path.length === 0 && key in roleEntryFields && !(key in fileFields)
        ? `"${key}" is set per role: put it in an entry of roles`
        : undefined,
  };
}

/** One line for the first schema problem in a file (a role entry that is not a mapping says what one is). */
function fileProblem(label: string, raw: unknown): string | undefined {
  const parsed = mappingOf(fileFields).safeParse(raw);
  if (parsed.success) return undefined;
  const issue = parsed.error.issues[0]!;
  const path = issue.path;
  if (path.length === 2 && path[0] === 'roles' && typeof path[1] === 'number') {
    const entry = (raw as { roles: unknown[] }).roles[path[1]];
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
      return `${label}: roles[${path[1]}]: expected ${ROLE_ENTRY_EXPECTED}, got ${describeValue(entry)}`;
  }
  return problemLine(fileFields, parsed.error, raw, fileHow(label));
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
  /** Services to create, or change to match, once the roles run (checked against the service model). */
  services?: ServiceSpec[];
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
  const problem = fileProblem(label, raw);
  if (problem) throw configError(problem);
  return finishConfig(label, abs, raw as RawConfig);
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
  if (data.services !== undefined) config.services = checkServices(label, data.services);
  if (data.roles !== undefined) {
    config.roles = [];
    for (const [i, role] of (data.roles as ConfigRole[]).entries()) {
      const own = await modules(role.handlerModules, `roles[${i}].handlerModules`);
      config.roles.push(own === undefined ? role : { ...role, handlerModules: own });
    }
  }
  return config;
}

function checkServices(label: string, list: Record<string, unknown>[]): ServiceSpec[] {
  const names = new Set<string>();
  return list.map((raw, i) => {
    let spec: ServiceSpec;
    try {
      spec = parseServiceSpec(raw);
    } catch (err) {
      throw configError(`${label}: services[${i}]: ${(err as Error).message}`);
    }
    if (names.has(spec.name))
      throw configError(`${label}: services[${i}].name: "${spec.name}" is listed twice`);
    names.add(spec.name);
    return spec;
  });
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

// ---------------------------------------------------------------------------------------------------
// Merging with flags
// ---------------------------------------------------------------------------------------------------

/** The command-line flags that shape a farm (all optional; `undefined` means "not given"). */
export type CliFlags = Pick<
  OptionsOf<typeof runtimeFlags>,
  | 'zk'
  | 'masters'
  | 'workers'
  | 'workdir'
  | 'capacity'
  | 'prefetch'
  | 'allowShell'
  | 'taskDirs'
  | 'sessionTimeout'
  | 'namePrefix'
  | 'auth'
>;

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

/** Flags given as an object are checked as on the command line: ZKFARM_CONFIG_INVALID naming the flag. */
function checkFlags(flags: CliFlags): void {
  checkOptions(runtimeFlags, flags, { code: ErrorCodes.CONFIG_INVALID, name: (path) => flagName(path[0]!) });
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
