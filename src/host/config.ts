/**
 * The spec a host starts from: the config file (config-file.ts, optional) merged with the command-line
 * flags.
 *
 * Precedence, highest first: flags, the config file, defaults. `--masters N` / `--workers N` replace the
 * file's roles of that kind with N generated ones; per-role settings in the file are overridden by the
 * flags that set the same thing for every role (`--capacity`, `--allow-shell`, `--session-timeout`).
 * When the file lists no roles, a kind no flag gives runs its default count (1 master, 2 workers).
 *
 * The flags are defined in options.ts (type, range, default, description); a bad flag given as an
 * object, a duplicate role name or a farm with no roles is a ZKFARM_CONFIG_INVALID error on one line.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ErrorCodes } from '../errors.js';
import { checkOptions, type OptionsOf } from '../farm/option-schema.js';
import { type ConfigFile, type ConfigRole, configError } from './config-file.js';
import { DEFAULT_CONNECT } from './discovery.js';
import { DEFAULT_ROLE_COUNTS, DEFAULT_WORKDIR, flagName, runtimeFlags } from './options.js';
import type { FarmSpec, RoleSpec } from './types.js';

export { DEFAULT_CONNECT } from './discovery.js';
export { DEFAULT_ROLE_COUNTS, DEFAULT_WORKDIR } from './options.js';

/** The command-line flags that shape a farm (all optional; `undefined` means "not given"). */
export type CliFlags = Pick<
  OptionsOf<typeof runtimeFlags>,
  | 'zk'
  | 'masters'
  | 'workers'
  | 'workdir'
  | 'capacity'
  | 'prefetch'
  | 'queues'
  | 'queueOrder'
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
  const prefix = flags.namePrefix ?? config?.namePrefix ?? defaultNamePrefix(context.hostname);
  const roles = roleSpecs(config, flags, prefix);
  checkRoleNames(roles, config);
  return farmSpec(config, flags, context.cwd ?? process.cwd(), roles);
}

/** A role to run, and where it came from (for duplicate-name messages). */
interface PlacedRole {
  spec: RoleSpec;
  /** `roles[2]`, `--workers` or `the defaults`. */
  origin: string;
  /** `.name` when the role's name was given, else ''. */
  field: string;
}

/** The roles to run: per kind, the flag's count, else the file's entries, else the default count. */
function roleSpecs(config: ConfigFile | undefined, flags: CliFlags, prefix: string): PlacedRole[] {
  const fileRoles = (config?.roles ?? []).map((role, index) => ({ role, index }));
  // A file without roles: each kind no flag gives has its default count.
  const noRolesGiven = fileRoles.length === 0;
  const roles: PlacedRole[] = [];
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
        if (kind === 'worker') servedFrom(spec, flags, {});
        roles.push({ spec, origin: flagCount !== undefined ? `--${kind}s` : 'the defaults', field: '' });
      }
      continue;
    }
    for (const { role, index } of fileRoles) {
      if (role.type !== kind) continue;
      const n = role.name !== undefined ? 1 : (role.count ?? 1);
      for (let i = 0; i < n; i++) {
        const spec = entrySpec(role, flags, role.name ?? generated(kind));
        roles.push({ spec, origin: `roles[${index}]`, field: role.name !== undefined ? '.name' : '' });
      }
    }
  }
  return roles;
}

/** One role of a file's entry, with the flags that override per-role values. */
function entrySpec(role: ConfigRole, flags: CliFlags, name: string): RoleSpec {
  const kind = role.type;
  const spec: RoleSpec = { kind, name };
  const capacity = flags.capacity !== undefined && kind === 'worker' ? flags.capacity : role.capacity;
  if (capacity !== undefined) spec.capacity = capacity;
  const prefetch = flags.prefetch !== undefined && kind === 'worker' ? flags.prefetch : role.prefetch;
  if (prefetch !== undefined) spec.prefetch = prefetch;
  if (role.allowShell !== undefined && flags.allowShell === undefined) spec.allowShell = role.allowShell;
  if (role.defaultTimeoutMs !== undefined) spec.defaultTimeoutMs = role.defaultTimeoutMs;
  if (role.taskDirs !== undefined && flags.taskDirs === undefined) spec.taskDirs = role.taskDirs;
  if (role.sessionTimeout !== undefined && flags.sessionTimeout === undefined) {
    spec.sessionTimeout = role.sessionTimeout;
  }
  if (role.handlerModules !== undefined) spec.handlerModules = role.handlerModules;
  if (kind === 'worker') servedFrom(spec, flags, role);
  return spec;
}

/** Every role needs its own name (generated names are made per kind, so a named role may collide). */
function checkRoleNames(roles: readonly PlacedRole[], config: ConfigFile | undefined): void {
  const label = config?.label ?? 'flags';
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
}

/** The settings every role shares, flags over the file. */
function farmSpec(
  config: ConfigFile | undefined,
  flags: CliFlags,
  cwd: string,
  roles: readonly PlacedRole[],
): FarmSpec {
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

/** A worker's queues and their order: the flags', else its role entry's. */
function servedFrom(spec: RoleSpec, flags: CliFlags, role: Pick<RoleSpec, 'queues' | 'queueOrder'>): void {
  const queues = flags.queues ?? role.queues;
  if (queues !== undefined) spec.queues = queues;
  const order = flags.queueOrder ?? role.queueOrder;
  if (order !== undefined) spec.queueOrder = order;
}
