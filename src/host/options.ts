/**
 * The host's options, defined once (see farm/option-schema.ts): the config file's settings and roles,
 * and the flags of `runtime` that shape a farm. Most fields are the roles' own (farm/options.ts); what
 * only a host has (its role list, name prefix, drain timeout, dashboard) is here. The config file parser
 * (config.ts), the command line (cli/start.ts) and docs/configuration.md's tables are made from these.
 *
 * To add a setting: add its field to `fileFields` (the config file's top level), `roleEntryFields` (per
 * role), and/or `runtimeFlags` (a flag, with its `--name <value>`); carry it into FarmSpec in config.ts;
 * run `npm run docs:options` (test/unit/options-docs.test.ts fails until the docs match).
 */
import type { z } from 'zod';
import { ErrorCodes } from '../errors.js';
import { isSafeName } from '../exec/names.js';
import {
  checkOptions,
  type Field,
  type Fields,
  field,
  like,
  list,
  mappingOf,
  type OptionsOf,
  wholeNumber,
} from '../farm/option-schema.js';
import { connectString, masterFields, NAME_EXPECTED, roleFields, workerFields } from '../farm/options.js';
import { CONNECT_STRING_EXPECTED } from '../zk/connect-string.js';
import type { FarmSettings, RoleSpec } from './types.js';

/** pino's levels, for --log-level (here, not in logging.ts, so that checking flags does not load pino). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Workers' output root when nothing says otherwise (relative to the current directory). */
export const DEFAULT_WORKDIR = 'zkfarm-work';
/** Roles of each kind a host runs when no flag gives that kind's count and the config file lists no roles. */
export const DEFAULT_ROLE_COUNTS = { master: 1, worker: 2 } as const;
/** Most roles of one kind a host runs (each is a thread with its own session). */
const MAX_ROLES = 1024;

/** A role name prefix: the shortest name it makes must be a valid name. */
const namePrefix = field((z) => z.string().refine((p) => isSafeName(`${p}-worker-1`)), {
  expected: `a name prefix (letters, digits, ".", "_" or "-"), starting with a letter or digit`,
  defaultText: 'the short host name',
  description: 'generated role names are `<namePrefix>-master-<i>` and `<namePrefix>-worker-<i>`',
});

const zk = field(connectString, {
  expected: CONNECT_STRING_EXPECTED,
  defaultText: 'the embedded ZooKeeper',
  description:
    '`host:port[,host:port...][/chroot]`; the chroot lets several farms share one ensemble. Without it `runtime` starts its embedded ZooKeeper',
});

/** TLS to ZooKeeper: the PEM files and the name its certificates carry (file paths, read at start). */
export const zkTlsFields = {
  ca: field((z) => z.string().min(1), {
    expected: 'the path of a PEM file (the CA certificate)',
    defaultText: "the embedded ZooKeeper's own",
    description: "the CA certificate that signed the servers' certificates",
  }),
  cert: field((z) => z.string().min(1), {
    expected: 'the path of a PEM file (the client certificate)',
    defaultText: 'none',
    description: "this client's certificate, for servers that require one",
  }),
  key: field((z) => z.string().min(1), {
    expected: 'the path of a PEM file (the client key)',
    defaultText: 'none',
    description: 'the private key of `cert`',
  }),
  servername: field((z) => z.string().min(1), {
    expected: "the host name the servers' certificates carry",
    defaultText: 'the connect host',
    description: "the name the servers' certificates must carry",
  }),
};

/** The config file's `zk` as a mapping: the connect string and TLS. */
const zkMappingFields = {
  connect: like(zk, { description: 'the connect string (as `zk` itself would be)' }),
  tls: field(
    (z) =>
      z.union([z.boolean(), mappingOf(zkTlsFields)]) as z.ZodType<boolean | OptionsOf<typeof zkTlsFields>>,
    {
      fields: zkTlsFields,
      expected: 'true, false, or a mapping with ca, cert, key (PEM file paths) and servername',
      defaultText: 'plain TCP',
      description:
        "speak TLS to ZooKeeper's secureClientPort: `true` (the embedded ZooKeeper makes its own certificates), or the files below, relative to the file's directory",
    },
  ),
};

/** `zk` in a config file: a connect string, or a mapping with `connect` and `tls`. */
const zkSetting = field(
  (z) =>
    z.union([connectString(z), mappingOf(zkMappingFields)]) as z.ZodType<
      string | OptionsOf<typeof zkMappingFields>
    >,
  {
    fields: zkMappingFields,
    expected: `${CONNECT_STRING_EXPECTED}, or a mapping with connect and tls (true, or ca, cert, key and servername)`,
    defaultText: zk.defaultText,
    description: `${zk.description}. As a mapping, \`zk.connect\` is the connect string and \`zk.tls\` turns TLS on`,
  },
);

/** The TLS flags every command that talks to ZooKeeper takes (the same fields as `zk.tls`). */
export const tlsFlags = {
  zkTls: field((z) => z.boolean(), {
    flag: '--zk-tls',
    defaultText: 'plain TCP',
    description:
      "speak TLS to ZooKeeper's secureClientPort (implied by the --zk-ca/cert/key flags); without --zk, the embedded ZooKeeper serves TLS only, with certificates of its own",
  }),
  zkCa: like(zkTlsFields.ca, {
    flag: '--zk-ca <file>',
    description: `with TLS: ${zkTlsFields.ca.description} (PEM)`,
  }),
  zkCert: like(zkTlsFields.cert, {
    flag: '--zk-cert <file>',
    description: `with TLS: ${zkTlsFields.cert.description} (PEM)`,
  }),
  zkKey: like(zkTlsFields.key, {
    flag: '--zk-key <file>',
    description: 'with TLS: the private key (PEM) of --zk-cert',
  }),
  zkServername: like(zkTlsFields.servername, {
    flag: '--zk-servername <name>',
    defaultText: 'the --zk host',
    description: `with TLS: ${zkTlsFields.servername.description}`,
  }),
} satisfies Record<string, Fields[string] & { flag: string }>;

const workdir: Field<string> = like(workerFields.workdir, {
  default: undefined,
  defaultText: '`./zkfarm-work` (of the current directory)',
  description:
    "workers write `<workdir>/<worker>/<task-id>/` for tasks with output (see `taskDirs`); the embedded ZooKeeper keeps its data in `<workdir>/zookeeper`. In a file, relative to the file's directory",
});

/** One entry of the config file's `roles`: one role, or `count` alike. */
export const roleEntryFields = {
  type: field((z) => z.enum(['master', 'worker']), { required: true, description: 'the kind of role' }),
  name: field(() => roleFields.name.schema, {
    defaultText: 'generated',
    expected: `a role name (${NAME_EXPECTED.replace(/^a name of /, '')}, at most 128 characters)`,
    description: 'a fixed name for one role (not with `count` > 1)',
  }),
  count: field(wholeNumber(1, MAX_ROLES), {
    default: 1,
    description: 'this many roles with generated names',
  }),
  sessionTimeout: like(roleFields.sessionTimeout, { default: undefined, defaultText: 'the top-level one' }),
  capacity: workerFields.capacity,
  prefetch: workerFields.prefetch,
  allowShell: like(workerFields.allowShell, { default: undefined, defaultText: 'the top-level one' }),
  defaultTimeoutMs: workerFields.defaultTimeoutMs,
  taskDirs: like(workerFields.taskDirs, { default: undefined, defaultText: 'the top-level one' }),
  handlerModules: like(workerFields.handlerModules, {
    description: 'handler modules of this worker, added to the top-level ones',
  }),
  queues: workerFields.queues,
  queueOrder: workerFields.queueOrder,
} satisfies Fields;

/** Fields of a role entry that only workers take. */
export const WORKER_ONLY = [
  'capacity',
  'prefetch',
  'allowShell',
  'defaultTimeoutMs',
  'taskDirs',
  'handlerModules',
  'queues',
  'queueOrder',
] as const satisfies ReadonlyArray<keyof typeof roleEntryFields>;

/** The config file's top level. */
export const fileFields = {
  zk: zkSetting,
  sessionTimeout: like(roleFields.sessionTimeout, {
    description: `${roleFields.sessionTimeout.description}; of every role`,
  }),
  workdir,
  allowShell: workerFields.allowShell,
  taskDirs: workerFields.taskDirs,
  auth: roleFields.auth,
  handlerModules: like(workerFields.handlerModules, {
    description: `${workerFields.handlerModules.description}. Paths (\`./h.mjs\`, anything ending in .js/.mjs/.cjs/.ts) are relative to the file's directory and must exist; other names are packages installed where the file is`,
  }),
  retention: masterFields.retention,
  outputRetention: workerFields.outputRetention,
  httpToken: field((z) => z.string().min(16), {
    secret: true,
    expected: "the dashboard's token: a string of at least 16 characters",
    defaultText: '$ZKFARM_DASHBOARD_TOKEN, else a random one per start',
    description:
      "the dashboard's token for `runtime --http`: its controls need it (see dashboard.md, The token)",
  }),
  namePrefix,
  services: field((z) => z.array(z.record(z.string(), z.unknown())), {
    expected: 'a list of services like {name: web, cmd: "...", instances: 3} (docs/services.md)',
    defaultText: 'none',
    description:
      'services this host makes sure exist once its roles run: each is created, or changed to match the file (see services.md)',
  }),
  roles: list(roleEntryFields, {
    expected: 'a list of roles like {type: worker, count: 4}',
    defaultText: '1 master, 2 workers',
    description: 'the roles this host runs (below)',
  }),
} satisfies Fields;

/** What the elements of the top-level `roles` list are called in messages. */
export const ROLE_ENTRY_EXPECTED = 'a role like {type: worker, count: 4} or {type: master, name: m1}';

/**
 * The flags of `runtime [start]`: each a field, with its flag. Given as an object (CliFlags), a bad value
 * is ZKFARM_CONFIG_INVALID naming the flag; on the command line, commander reports it.
 */
export const runtimeFlags = {
  masters: field(wholeNumber(0, MAX_ROLES), {
    flag: '--masters <n>',
    defaultText: '1',
    description: "masters to run (0 for a host of workers only); replaces the config file's masters",
  }),
  workers: field(wholeNumber(0, MAX_ROLES), {
    flag: '--workers <n>',
    defaultText: '2',
    description: "workers to run; replaces the config file's workers",
  }),
  zk: like(zk, { flag: '--zk <connect>' }),
  config: field((z) => z.string().min(1), {
    flag: '-c, --config <file>',
    expected: 'a file path',
    defaultText: 'none',
    description: 'a YAML or JSON config file (flags override it)',
  }),
  workdir: like(workdir, { flag: '--workdir <dir>' }),
  capacity: like(workerFields.capacity, {
    flag: '--capacity <n>',
    description: `${workerFields.capacity.description}; overrides the config file's per-role values`,
  }),
  prefetch: like(workerFields.prefetch, {
    flag: '--prefetch <n|auto>',
    description:
      "tasks each worker may hold beyond its capacity: a whole number, or `auto` to follow task durations; overrides the config file's per-role values",
  }),
  allowShell: like(workerFields.allowShell, { flag: '--allow-shell' }),
  taskDirs: like(workerFields.taskDirs, { flag: '--task-dirs <when>' }),
  // On the command line, one comma-separated list: `--queues a,b:3` (as an object: the list).
  queues: field(
    (z) =>
      z.union([
        workerFields.queues.schema,
        z
          .string()
          .transform((s) => s.split(',').map((q) => q.trim()))
          .pipe(workerFields.queues.schema as z.ZodType<string[], string[]>),
      ]) as unknown as typeof workerFields.queues.schema,
    {
      flag: '--queues <list>',
      expected: `a comma-separated list of "name" or "name:weight", e.g. a,b:3`,
      defaultText: 'default',
      description: `${workerFields.queues.description}; overrides the config file's per-role values`,
    },
  ),
  queueOrder: like(workerFields.queueOrder, {
    flag: '--queue-order <order>',
    default: undefined,
    defaultText: 'weighted',
    description: `${workerFields.queueOrder.description}; overrides the config file's per-role values`,
  }),
  sessionTimeout: like(roleFields.sessionTimeout, {
    flag: '--session-timeout <ms>',
    description: `${roleFields.sessionTimeout.description}; of every role, overriding per-role values`,
  }),
  namePrefix: like(namePrefix, { flag: '--name-prefix <prefix>' }),
  logLevel: field((z) => z.enum(LOG_LEVELS), {
    flag: '--log-level <level>',
    default: 'info',
    description: 'how much the roles log (on stdout)',
  }),
  auth: like(roleFields.auth, { flag: '--auth <user:password>' }),
  ...tlsFlags,
  drainTimeout: field(wholeNumber(0, 2_147_483_647), {
    flag: '--drain-timeout <ms>',
    unit: 'ms',
    default: 30_000,
    description: 'on stop, how long workers may finish the tasks they run',
  }),
  connectTimeout: like(roleFields.connectTimeout, {
    flag: '--connect-timeout <ms>',
    default: 15_000,
    defaultText: undefined,
    description: 'with --zk: give up (exit 1) when ZooKeeper cannot be reached this long',
  }),
  restart: field((z) => z.boolean(), {
    flag: '--no-restart',
    default: true,
    defaultText: 'restart them',
    description: 'do not restart role threads that die (by default they are restarted, with backoff)',
  }),
  http: field((z) => z.string().min(1), {
    flag: '--http <host:port>',
    expected: 'host:port',
    defaultText: 'none',
    description: 'serve the dashboard, /metrics and /healthz there (loopback unless you say otherwise)',
  }),
  httpControls: field((z) => z.boolean(), {
    flag: '--http-controls',
    default: false,
    description: "let the dashboard pause, drain, add and remove this host's roles",
  }),
  httpChaos: field((z) => z.boolean(), {
    flag: '--http-chaos',
    default: false,
    description:
      'with --http-controls: a Crash button on each role, fault injection to practise failover (zkfarm/testing)',
  }),
} satisfies Record<string, Fields[string] & { flag: string }>;

export type RuntimeFlag = keyof typeof runtimeFlags;

/** The flag of a key (`--drain-timeout` for drainTimeout), for messages. */
export function flagName(key: PropertyKey): string {
  const f = (runtimeFlags as Record<string, { flag: string }>)[String(key)];
  return f ? (/--[a-z-]+/.exec(f.flag)?.[0] ?? String(key)) : String(key);
}

/**
 * A role's spec and the host's settings, checked against the role kind's own fields (farm/options.ts)
 * before its thread starts, with the message and code the role itself would give
 * (ZKFARM_INVALID_ARGUMENT). The thread's master or worker is made of these values, so it takes them as
 * checked (farm/options.ts, trustHostCheckedOptions) and the thread does not load zod to check them again.
 */
export function checkRoleThreadInit(spec: RoleSpec, settings: FarmSettings): void {
  const how = { code: ErrorCodes.INVALID_ARGUMENT };
  const kindFields = spec.kind === 'master' ? masterFields : workerFields;
  checkOptions({ ...roleFields, ...kindFields }, spec, how);
  // The settings name no role: every other field of the role's is checked.
  const { name: _name, ...shared } = roleFields;
  checkOptions({ ...shared, ...kindFields }, settings, how);
}
