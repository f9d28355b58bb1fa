/**
 * The host's config file: YAML or JSON (by extension, else by content), parsed with positions for
 * messages and checked against the file's fields (options.ts: unknown keys refused, with a "did you
 * mean"). Relative paths in it (workdir, handlerModules, zk.tls files) are resolved against the file's
 * directory, and handler modules must exist. Every problem is a ZKFARM_CONFIG_INVALID error whose
 * message is one line naming the file, the field path and what was expected versus what was found, e.g.
 *   farm.yaml: roles[1].type: expected "master" or "worker", got "wroker"
 * The file is merged with the flags into a FarmSpec by config.ts.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { resolveHandlerModule, type TaskDirs } from '../exec/index.js';
import {
  type CheckHow,
  describeValue,
  mappingOf,
  type OptionsOf,
  problemLine,
} from '../farm/option-schema.js';
import { parseServiceSpec, type ServiceSpec } from '../services/model.js';
import type { ZkTlsFiles } from '../zk/transport.js';
import { fileFields, ROLE_ENTRY_EXPECTED, roleEntryFields, WORKER_ONLY } from './options.js';
import type { FarmSpec } from './types.js';

type RawConfig = OptionsOf<typeof fileFields>;
export type ConfigRole = OptionsOf<typeof roleEntryFields> & { type: 'master' | 'worker' };

/** A problem of the configuration: ZKFARM_CONFIG_INVALID, on one line. */
export function configError(message: string): ZkfarmError {
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
  retention?: { maxCount?: number; maxAgeMs?: number; minAgeMs?: number; intervalMs?: number };
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

/** A config file's services, each checked against the service model; a name listed twice is refused. */
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
