/**
 * The service model: what a service is (one zod schema, read from the CLI's flags and files, the host's
 * config file and the library), and the znodes that hold it.
 *
 *   /services/<name>                       persistent  desired state: {"spec", "revision", "updatedAt", "removing"}
 *   /services/<name>/status                persistent  the leader's account: rollout state, failed instances
 *   /services/<name>/instances/<n>         persistent  placement of instance n (leader): {"worker", "revision", ...}
 *   /services/<name>/running/<n>           ephemeral   the fence: held by the session of the worker running n
 *   /services/<name>/endpoints/<n>         ephemeral   discovery: a running, healthy instance's host and ports
 *   /service-placements/<worker>            persistent the worker's placements; its data: the hand-over mark
 *                                                      {"handedOver": true, ...} of a worker that stopped cleanly
 *   /service-placements/<worker>/<name>.<n> persistent what a worker is to run: {"service", "instance", "revision", "spec"}
 *
 * Instance numbers are 0 … instances-1; each number has at most one placement and at most one fence
 * holder, so never more instances run than desired (docs/services.md states the bounds).
 */
import type { z } from 'zod';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { lazily, type Zod } from '../lazy-zod.js';

export const SERVICE_PATHS = {
  services: '/services',
  placements: '/service-placements',
} as const;

export const servicePath = (name: string) => `${SERVICE_PATHS.services}/${name}`;
export const serviceStatusPath = (name: string) => `${servicePath(name)}/status`;
export const instancesDir = (name: string) => `${servicePath(name)}/instances`;
export const instancePath = (name: string, n: number) => `${instancesDir(name)}/${n}`;
export const runningDir = (name: string) => `${servicePath(name)}/running`;
export const runningPath = (name: string, n: number) => `${runningDir(name)}/${n}`;
export const endpointsDir = (name: string) => `${servicePath(name)}/endpoints`;
export const endpointPath = (name: string, n: number) => `${endpointsDir(name)}/${n}`;
export const placementsDir = (worker: string) => `${SERVICE_PATHS.placements}/${worker}`;
export const placementKey = (name: string, n: number) => `${name}.${n}`;
export const placementPath = (worker: string, name: string, n: number) =>
  `${placementsDir(worker)}/${placementKey(name, n)}`;

/** `web.2` → { service: 'web', instance: 2 } (service names may hold dots; the number is last). */
export function parsePlacementKey(key: string): { service: string; instance: number } | undefined {
  const dot = key.lastIndexOf('.');
  const n = Number(key.slice(dot + 1));
  if (dot <= 0 || !Number.isInteger(n) || n < 0) return undefined;
  return { service: key.slice(0, dot), instance: n };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const QUEUE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The schemas of a service (zod, built on their first use: lazy-zod.ts). */
function buildSchemas(z: Zod) {
  const ms = (max: number) => z.number().int().min(0).max(max);

  const healthBase = {
    /** Between probes. */
    intervalMs: ms(3_600_000).default(2000),
    /** One probe's limit. */
    timeoutMs: ms(600_000).default(1000),
    /** Consecutive passes before the instance counts as healthy. */
    healthyThreshold: z.number().int().min(1).max(100).default(1),
    /** Consecutive failures (once healthy, or after the start period) before it is restarted. */
    unhealthyThreshold: z.number().int().min(1).max(100).default(3),
    /** After a start, failures do not count for this long (the program is still starting). */
    startPeriodMs: ms(3_600_000).default(10_000),
  };

  const health = z.discriminatedUnion('type', [
    z.object({ type: z.literal('cmd'), cmd: z.string().min(1), ...healthBase }).strict(),
    z
      .object({
        type: z.literal('tcp'),
        port: z.union([z.number().int().min(1).max(65535), z.string()]),
        host: z.string().default('127.0.0.1'),
        ...healthBase,
      })
      .strict(),
    z.object({ type: z.literal('http'), url: z.string().min(1), ...healthBase }).strict(),
  ]);

  const restart = z
    .object({
      /** `always`: restart whatever the exit; `on-failure`: an exit with code 0 ends the instance. */
      policy: z.enum(['always', 'on-failure']).default('always'),
      /** First restart delay, doubled per restart (src/backoff.ts) up to `maxDelayMs`. */
      initialDelayMs: ms(3_600_000).default(500),
      maxDelayMs: ms(3_600_000).default(30_000),
      /** A run that lasted this long resets the delay. */
      resetAfterMs: ms(86_400_000).default(30_000),
      /** More than `maxRestarts` restarts within `windowMs`: the instance is failed on that worker. */
      maxRestarts: z.number().int().min(0).max(1000).default(5),
      windowMs: ms(86_400_000).default(60_000),
      /** Workers an instance failed on before it is marked failed for good (it moves elsewhere before). */
      maxWorkers: z.number().int().min(1).max(100).default(2),
    })
    .strict();

  const placement = z
    .object({
      /** Only workers serving one of these queues (their `queues` in /workers/<name>). */
      queues: z.array(z.string().regex(QUEUE)).min(1).optional(),
      /** Only workers on these hosts (host names as workers publish them). */
      hosts: z.array(z.string().min(1)).min(1).optional(),
      /** At most this many instances of the service on one host. */
      maxPerHost: z.number().int().min(1).optional(),
    })
    .strict();

  const spec = z
    .object({
      name: z
        .string()
        .regex(NAME, 'letters, digits, "_" and "-", starting with a letter or digit, at most 63'),
      /** A shell command (runs only on workers that allow shell, like shell tasks). */
      cmd: z.string().min(1).optional(),
      /** A handler that runs until its AbortSignal fires. */
      handler: z.string().min(1).optional(),
      input: z.unknown().optional(),
      instances: z.number().int().min(0).max(1000).default(1),
      placement: placement.default({}),
      /** Base ports: instance n gets base + n, in ZKFARM_PORT_<NAME> (and ZKFARM_PORT for the first). */
      ports: z
        .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,31}$/), z.number().int().min(1).max(65535))
        .default({}),
      health: health.optional(),
      restart: restart.default(restart.parse({})),
      /** SIGTERM, then SIGKILL after this long. */
      stopGraceMs: ms(600_000).default(10_000),
      /** A new instance of a rolling update must be healthy within this long, or the update fails. */
      updateTimeoutMs: ms(3_600_000).default(300_000),
      env: z.record(z.string(), z.string()).default({}),
      /** Working directory ({instance} is replaced by the instance number). @defaultValue its log directory */
      cwd: z.string().min(1).optional(),
      logs: z
        .object({
          maxBytes: z
            .number()
            .int()
            .min(1024)
            .default(10 * 1024 * 1024),
          keep: z.number().int().min(0).max(100).default(3),
        })
        .strict()
        .default({ maxBytes: 10 * 1024 * 1024, keep: 3 }),
      /** Changed by `service restart` alone: a new revision that rolls every instance. */
      restartedAt: z.number().optional(),
    })
    .strict()
    .refine((s) => (s.cmd === undefined) !== (s.handler === undefined), {
      message: 'a service names exactly one of "cmd" (a shell command) or "handler" (a handler name)',
    });
  return { health, restart, placement, spec };
}

/**
 * The service schemas, built on first use: a master or worker that reads no service definition never
 * builds them (nor loads zod).
 */
export const serviceSchemas = lazily(buildSchemas);
type Schemas = ReturnType<typeof buildSchemas>;

export type ServiceSpecInput = z.input<Schemas['spec']>;
export type ServiceSpec = z.output<Schemas['spec']>;
export type HealthCheck = z.output<Schemas['health']>;
export type RestartPolicy = z.output<Schemas['restart']>;

/** Check a service definition; ZKFARM_INVALID_SERVICE naming every problem. */
export function parseServiceSpec(input: unknown): ServiceSpec {
  const r = serviceSchemas().spec.safeParse(input);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.join('.') || 'service'}: ${i.message}`).join('; ');
  throw new ZkfarmError(ErrorCodes.INVALID_SERVICE, `invalid service definition: ${problems}`);
}

/** /services/<name>: the desired state, written by clients (version-checked). */
export interface ServiceRecord {
  spec: ServiceSpec;
  /** Incremented by every change of the spec; instances run one revision each. */
  revision: number;
  updatedAt: number;
  /** `service rm`: the leader stops every instance, then deletes the service. */
  removing?: boolean;
}

/** /services/<name>/instances/<n>: written by the leader alone. */
export interface InstanceRecord {
  worker: string;
  revision: number;
  placedAt: number;
  /** Workers this instance crash-looped on (it moves away from them). */
  failedOn: string[];
  /** `failed`: given up (crash-looped on `restart.maxWorkers` workers, or a failed update). */
  state: 'placed' | 'failed';
  reason?: string;
  /** The worker's session timeout when it was placed (with the stop grace: how long it may outlive it). */
  sessionTimeout?: number;
}

export type RunState = 'starting' | 'running' | 'healthy' | 'unhealthy' | 'backoff' | 'exited' | 'failed';

/** /services/<name>/running/<n>: written by the worker that holds the fence. */
export interface RunRecord {
  worker: string;
  host: string;
  revision: number;
  state: RunState;
  pid?: number;
  /** Restarts on this worker since the placement. */
  restarts: number;
  since: number;
  lastExit?: string;
  reason?: string;
  /** Where its stdout.log / stderr.log are, on its host. */
  logDir?: string;
  /** The worker session's negotiated timeout: with the stop grace, how long it may outlive an expiry. */
  sessionTimeout?: number;
}

/** /services/<name>/endpoints/<n>: what a client or a load balancer connects to. */
export interface Endpoint {
  service: string;
  instance: number;
  host: string;
  ports: Record<string, number>;
  worker: string;
  revision: number;
}

/** Why the leader cannot place an instance now (plan.ts): a stable code and a sentence. */
export type UnplaceableCode = 'no-workers' | 'no-match' | 'no-room' | 'max-per-host';
export interface Unplaced {
  instance: number;
  code: UnplaceableCode;
  reason: string;
}

/** /services/<name>/status: the leader's account of the service. */
export interface ServiceStatus {
  rollout?: { revision: number; state: 'rolling' | 'done' | 'failed'; reason?: string; instance?: number };
  /** Instances the leader cannot place now, and why (absent when every instance has a place). */
  unplaced?: Unplaced[];
  updatedAt: number;
}

/**
 * The data of /service-placements/<worker> once the worker stopped cleanly: every instance of its
 * session was stopped and its fence given up, so the leader moves them at once instead of waiting
 * out the fence bound. Cleared (empty data) by the worker's next session before it runs anything.
 */
export interface HandOver {
  handedOver: true;
  /** The session that stopped (hex id). */
  session: string;
  at: number;
}

/** /service-placements/<worker>/<name>.<n> */
export interface Placement {
  service: string;
  instance: number;
  revision: number;
  spec: ServiceSpec;
}

/** A service runs shell commands (its program or its health check): only workers with allowShell take it. */
export const needsShell = (spec: ServiceSpec) => spec.cmd !== undefined || spec.health?.type === 'cmd';

/** The ports of instance n: each base port + n. */
export function instancePorts(spec: ServiceSpec, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, base] of Object.entries(spec.ports)) out[k] = base + n;
  return out;
}

/** Replace `{instance}`, `{port}` (the first port) and `{port:<name>}` in a string of the spec. */
export function expand(text: string, n: number, ports: Record<string, number>): string {
  const first = Object.values(ports)[0];
  return text
    .replaceAll('{instance}', String(n))
    .replace(/\{port(?::([A-Za-z0-9_]+))?\}/g, (whole, name: string | undefined) => {
      const v = name === undefined ? first : ports[name];
      return v === undefined ? whole : String(v);
    });
}

/** Parse JSON data of a service node; undefined when it is not JSON. */
export function decode<T>(data: Buffer | null | undefined): T | undefined {
  if (!data || data.length === 0) return undefined;
  try {
    return JSON.parse(data.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

export const encodeJson = (v: unknown) => Buffer.from(JSON.stringify(v));
