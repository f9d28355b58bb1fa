/**
 * The options of every role kind, defined once (see option-schema.ts): what all roles share, and what
 * masters, workers and submitters add. The role classes check their options against these tables when
 * they are made; the host, its config file and its command line take the same fields (host/options.ts),
 * and docs/configuration.md's tables are generated from them (scripts/options-docs.ts).
 *
 * To add an option: add a field here (type and range, default, description), use it in the role, and
 * run `npm run docs:options`. A field the config file or the flags should take also goes into a table of
 * host/options.ts (usually the same field object).
 */
import type { z } from 'zod';
import { ErrorCodes } from '../errors.js';
import { TASK_DIRS } from '../exec/executor-options.js';
import { isSafeName } from '../exec/names.js';
import { OUTPUT_RETENTION_DEFAULTS } from '../exec/output-retention.js';
import { CONNECT_STRING_EXPECTED, connectStringProblem } from '../zk/connect-string.js';
import type { MasterOptions } from './master.js';
import {
  type CheckHow,
  checkOptions,
  type Field,
  type Fields,
  field,
  group,
  INT32_MAX,
  mappingOf,
  type OptionsOf,
  plain,
  type ResolvedOf,
  type SchemaBuilder,
  wholeNumber,
  withDefaults,
} from './option-schema.js';
import { MAX_WEIGHT, parseServedQueue, QUEUE_NAME_EXPECTED } from './queues.js';
import type { RoleOptions } from './role.js';
import type { SubmitterOptions } from './submitter.js';
import type { WorkerOptions } from './worker.js';

/** A field for each option of T that has one (a compile error if a field's type does not match). */
type FieldsFor<T> = { [K in keyof T]?: Field<NonNullable<T[K]>> };

export const NAME_EXPECTED = 'a name of letters, digits, ".", "_" or "-", starting with a letter or digit';

/** A connect string, checked the one way the zk layer checks it. */
export const connectString: SchemaBuilder<string> = plain(
  (v) => typeof v === 'string' && connectStringProblem(v) === undefined,
  (z) => z.string().refine((s) => connectStringProblem(s) === undefined),
);

const CREDENTIALS = /^[^:\s]+:.+$/;

/** Digest credentials `user:password`. */
export const credentials: SchemaBuilder<string> = plain(
  (v) => typeof v === 'string' && CREDENTIALS.test(v),
  (z) => z.string().regex(CREDENTIALS),
);

/** What every role shares: its name and its ZooKeeper session. */
export const roleFields = {
  name: field((z) => z.string().refine((s) => isSafeName(s)), {
    required: true,
    expected: `${NAME_EXPECTED}, at most 128 characters`,
    description: "the role's name, unique in the farm (it names its znodes and its output directory)",
  }),
  connect: field(connectString, {
    default: '127.0.0.1:2181',
    expected: CONNECT_STRING_EXPECTED,
    description:
      'ZooKeeper connect string, `host:port[,host:port...][/chroot]`; the chroot lets farms share an ensemble',
  }),
  sessionTimeout: field(wholeNumber(1, INT32_MAX), {
    unit: 'ms',
    default: 10_000,
    description:
      'ZooKeeper session timeout: a role that dies is noticed after about this long (the server may negotiate it, by default within 2-20 × its tickTime)',
  }),
  auth: field(credentials, {
    secret: true,
    expected: 'credentials "user:password"',
    defaultText: 'none',
    description: 'digest identity: the nodes the farm creates are readable and writable by it alone',
  }),
  connectTimeout: field(wholeNumber(1), {
    unit: 'ms',
    defaultText: 'none: keep trying',
    description: 'give up starting when ZooKeeper cannot be reached within this long',
  }),
} satisfies FieldsFor<RoleOptions>;

/** Status retention: the leading master's sweeps of /status. */
export const retentionFields = {
  maxCount: field(wholeNumber(1), {
    default: 10_000,
    description:
      "keep at most this many results in /status, the oldest finishes go first; they are kept in buckets of 10,000 (no listing nears ZooKeeper's 1 MB packet), so the bound is ZooKeeper's memory: each result takes its JSON plus ZooKeeper's per-node overhead (a few hundred bytes of heap)",
  }),
  maxAgeMs: field(wholeNumber(1), {
    unit: 'ms',
    default: 86_400_000,
    description: 'remove results older than this (a day by default)',
  }),
  minAgeMs: field(wholeNumber(0), {
    unit: 'ms',
    default: 10_000,
    description:
      "keep every result at least this long after its task finished, even over maxCount, so that a waiter that starts waiting within it finds it (ages are the leading master's clock against ZooKeeper's)",
  }),
  intervalMs: field(wholeNumber(1), { unit: 'ms', default: 60_000, description: 'how often to sweep' }),
  keyWindowMs: field(wholeNumber(1), {
    unit: 'ms',
    default: 86_400_000,
    description:
      'how long an idempotency key (a task\'s "key") is remembered at least; forgotten within this plus about 16 sweeps',
  }),
};

/** How much task output a worker keeps on disk (defaults: the exec layer's, OUTPUT_RETENTION_DEFAULTS). */
export const outputRetentionFields = {
  maxAgeMs: field(wholeNumber(1), {
    unit: 'ms',
    default: OUTPUT_RETENTION_DEFAULTS.maxAgeMs,
    description:
      "remove the worker's task directories older than this, a running task's never (7 days by default)",
  }),
  maxCount: field(wholeNumber(0), {
    default: OUTPUT_RETENTION_DEFAULTS.maxCount,
    description: 'keep at most this many task directories per worker (the oldest go first)',
  }),
  maxBytes: field(wholeNumber(1), {
    unit: 'bytes',
    default: OUTPUT_RETENTION_DEFAULTS.maxBytes,
    description: 'keep at most this many bytes of task output per worker (10 GiB by default)',
  }),
  intervalMs: field(wholeNumber(1), {
    unit: 'ms',
    default: OUTPUT_RETENTION_DEFAULTS.intervalMs,
    description: 'how often to sweep',
  }),
};

/** What a master adds. */
export const masterFields = {
  batchSize: field(wholeNumber(1), {
    default: 800,
    description: 'most tasks the leader hands out in one round (read together, moved in multis sent at once)',
  }),
  maxLost: field(wholeNumber(1), {
    defaultText: "max(3, the task's maxAttempts)",
    description: 'a task lost with this many workers (crash, expiry) ends failed with ZKFARM_WORKER_LOST',
  }),
  delayThresholdMs: field(wholeNumber(1, INT32_MAX), {
    unit: 'ms',
    default: 10_000,
    description:
      'a task due further ahead than this waits in the due-time area /delayed instead of /tasks, and goes back this long before it is due',
  }),
  retention: group(retentionFields, {
    description: 'status retention (the fields below)',
    defaultText: 'see below',
  }),
} satisfies FieldsFor<MasterOptions>;

/** The largest fixed prefetch: what `auto` reaches for the largest capacity. */
const PREFETCH_MAX = 65_536;

/** What a worker adds. */
export const workerFields = {
  capacity: field(wholeNumber(1, 1024), { default: 4, description: 'tasks the worker runs at once' }),
  prefetch: field((z) => z.union([wholeNumber(0, PREFETCH_MAX)(z), z.literal('auto')]), {
    default: 'auto',
    description:
      "tasks the master may hand it beyond capacity, queued at the worker so it never idles; `auto` follows the tasks' durations (capacity for tasks of 100 ms or more, up to 64 × capacity for sub-millisecond ones), `0` holds only what it runs",
  }),
  workdir: field((z) => z.string().min(1), {
    default: './zkfarm-work',
    expected: 'a directory path',
    description:
      'tasks with output write `<workdir>/<worker>/<task-id>/` (`stdout.log`, `stderr.log`, `result.json`)',
  }),
  allowShell: field((z) => z.boolean(), {
    default: false,
    description:
      'run `{"cmd": ...}` tasks through /bin/sh. Off by default: whoever can write /tasks could otherwise run anything on the worker',
  }),
  handlerModules: field((z) => z.array(z.string().min(1)), {
    defaultText: 'none',
    expected: 'a list of module paths or package names',
    description:
      "modules whose exported functions become handlers, run on a thread pool shared by the host's workers",
  }),
  defaultTimeoutMs: field(wholeNumber(0, INT32_MAX), {
    unit: 'ms',
    default: 0,
    description: 'timeout of tasks that set no `timeoutMs` (0: none)',
  }),
  taskDirs: field((z) => z.enum(TASK_DIRS), {
    default: 'on-demand',
    description:
      'when a task gets its output directory with `result.json`: `on-demand` for shell tasks and handlers that read their `outputDir`, `always` for every task',
  }),
  outputRetention: field(
    (z) =>
      z.union([z.literal(false), mappingOf(outputRetentionFields)]) as z.ZodType<
        false | OptionsOf<typeof outputRetentionFields>
      >,
    {
      fields: outputRetentionFields,
      expected: 'false, or a mapping with maxAgeMs, maxCount, maxBytes and/or intervalMs',
      defaultText: 'see below',
      description:
        'how much task output the worker keeps on disk, by age, count and bytes (the fields below), or `false` to keep everything',
    },
  ),
  retryDelayMs: field(wholeNumber(1, INT32_MAX), {
    unit: 'ms',
    default: 500,
    description: 'first delay before a failed task runs again, doubled per attempt up to 30 s',
  }),
  queues: field((z) => z.array(z.string().refine((s) => parseServedQueue(s) !== undefined)).min(1), {
    default: ['default'],
    expected: `a list of "name" or "name:weight" (${QUEUE_NAME_EXPECTED}; weight 1-${MAX_WEIGHT})`,
    description:
      'the queues the worker takes tasks from, each `name` or `name:weight`; a task of a queue no live worker serves waits',
  }),
  queueOrder: field((z) => z.enum(['weighted', 'strict']), {
    default: 'weighted',
    description:
      '`weighted`: its queues share its slots by weight (smooth weighted round robin over those with a task it may take); `strict`: the first listed queue with such a task wins',
  }),
} satisfies FieldsFor<WorkerOptions>;

/** What a submitter takes besides its connection (connect, sessionTimeout, auth as for roles). */
export const submitterFields = {
  connect: roleFields.connect,
  sessionTimeout: roleFields.sessionTimeout,
  auth: roleFields.auth,
  connectTimeout: roleFields.connectTimeout,
  maxQueue: field(wholeNumber(1), {
    default: 20_000,
    description:
      'most tasks waiting in /tasks before submitting waits for room (a deeper /tasks is slow for every client to list)',
  }),
  queueWaitMs: field(wholeNumber(0, INT32_MAX), {
    unit: 'ms',
    default: 60_000,
    description: 'how long a submit waits for room before failing with ZKFARM_QUEUE_FULL',
  }),
  batchSize: field(wholeNumber(1), {
    default: 100,
    description:
      "tasks per multi when submitting many (at most 200 are used: ZooKeeper's bounds on one multi)",
  }),
  keyWaitMs: field(wholeNumber(0, INT32_MAX), {
    unit: 'ms',
    default: 60_000,
    description:
      'keyed tasks: how long a submit keeps sending through connection trouble, and waits for the id of a task its key already holds, before failing (ZKFARM_KEY_PENDING)',
  }),
} satisfies FieldsFor<SubmitterOptions>;

const fromCode: CheckHow = { code: ErrorCodes.INVALID_ARGUMENT };

/**
 * Whether this thread's roles take options a host has checked against these same fields. Only a role
 * thread's entry (workers/role-thread.ts) turns it on: its master or worker is made from a spec and
 * settings the host checked before it started the thread (host/options.ts, checkRoleThreadInit), so the
 * role fills in the defaults without building a schema, and the thread never loads zod for it.
 * Masters and workers made anywhere else check their options themselves.
 */
let hostChecked = false;

export function trustHostCheckedOptions(): void {
  hostChecked = true;
}

function checkRole<F extends Fields>(fields: F, options: object): ResolvedOf<F> {
  return hostChecked ? withDefaults(fields, options) : checkOptions(fields, options, fromCode);
}

/** A role's shared options with their defaults; ZKFARM_INVALID_ARGUMENT naming a bad one. */
export function checkRoleOptions(options: RoleOptions): ResolvedOf<typeof roleFields> {
  return checkRole(roleFields, options);
}

export function checkMasterOptions(options: MasterOptions): ResolvedOf<typeof masterFields> {
  return checkRole(masterFields, options);
}

export function checkWorkerOptions(options: WorkerOptions): ResolvedOf<typeof workerFields> {
  return checkRole(workerFields, options);
}

export function checkSubmitterOptions(options: SubmitterOptions): ResolvedOf<typeof submitterFields> {
  return checkOptions(submitterFields, options, fromCode);
}
