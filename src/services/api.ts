/**
 * The services library API (what the CLI and the dashboard call): create, change, scale, restart and
 * remove services, and read their state and endpoints. Every change is a version-checked write of
 * /services/<name> (read, change, setData(version)); the leading master does the rest (reconciler.ts).
 */
import { ErrorCodes, ZkfarmError } from '../errors.js';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import {
  decode,
  type Endpoint,
  encodeJson,
  endpointsDir,
  type InstanceRecord,
  instancesDir,
  parseServiceSpec,
  type RunRecord,
  runningDir,
  SERVICE_PATHS,
  type ServiceRecord,
  type ServiceSpec,
  type ServiceSpecInput,
  type ServiceStatus,
  servicePath,
  serviceStatusPath,
  type Unplaced,
} from './model.js';

/** Create a service; ZKFARM_SERVICE_CONFLICT when one of that name exists. */
export async function createService(client: ZkClient, input: ServiceSpecInput): Promise<ServiceRecord> {
  const spec = parseServiceSpec(input);
  const record: ServiceRecord = { spec, revision: 1, updatedAt: Date.now() };
  await client.ensurePath(SERVICE_PATHS.services);
  const tx = client.transaction();
  tx.create(servicePath(spec.name), encodeJson(record));
  for (const dir of [instancesDir(spec.name), runningDir(spec.name), endpointsDir(spec.name)]) tx.create(dir);
  try {
    await tx.commit();
  } catch (err) {
    if (isZkError(err, 'NODE_EXISTS'))
      throw new ZkfarmError(
        ErrorCodes.SERVICE_CONFLICT,
        `a service named "${spec.name}" exists already: change it with \`service update\`, or remove it first`,
      );
    throw err;
  }
  return record;
}

async function readRecord(
  client: ZkClient,
  name: string,
): Promise<{ record: ServiceRecord; version: number }> {
  try {
    const r = await client.getData(servicePath(name));
    const record = decode<ServiceRecord>(r.data);
    if (!record?.spec)
      throw new ZkfarmError(ErrorCodes.INVALID_SERVICE, `${servicePath(name)} does not hold a service`);
    return { record, version: r.stat.version };
  } catch (err) {
    if (isZkError(err, 'NO_NODE'))
      throw new ZkfarmError(ErrorCodes.SERVICE_NOT_FOUND, `no service named "${name}" (see \`service ls\`)`);
    throw err;
  }
}

/**
 * Change a service: `change` gets the current spec and returns the new one (checked). A change of
 * anything but `instances` is a new revision (rolled out one instance at a time). Retried when the
 * service changed meanwhile.
 */
export async function changeService(
  client: ZkClient,
  name: string,
  change: (spec: ServiceSpec) => ServiceSpecInput,
): Promise<ServiceRecord> {
  for (let attempt = 0; ; attempt++) {
    const { record, version } = await readRecord(client, name);
    if (record.removing)
      throw new ZkfarmError(ErrorCodes.SERVICE_NOT_FOUND, `service "${name}" is being removed`);
    const spec = parseServiceSpec({ ...change(record.spec), name });
    const { instances: _a, ...before } = record.spec;
    const { instances: _b, ...after } = spec;
    const revision = JSON.stringify(before) === JSON.stringify(after) ? record.revision : record.revision + 1;
    const next: ServiceRecord = { spec, revision, updatedAt: Date.now() };
    try {
      await client.setData(servicePath(name), encodeJson(next), version);
      return next;
    } catch (err) {
      if (!isZkError(err, 'BAD_VERSION') || attempt >= 5) throw err;
    }
  }
}

export const updateService = (client: ZkClient, name: string, input: Partial<ServiceSpecInput>) =>
  changeService(client, name, (spec) => ({ ...spec, ...input }));

export const scaleService = (client: ZkClient, name: string, instances: number) =>
  changeService(client, name, (spec) => ({ ...spec, instances }));

/** Restart every instance, one at a time (a new revision of the same spec). */
export const restartService = (client: ZkClient, name: string) =>
  changeService(client, name, (spec) => ({ ...spec, restartedAt: Date.now() }));

/** Stop every instance and remove the service (the leader deletes it once nothing of it runs). */
export async function removeService(client: ZkClient, name: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const { record, version } = await readRecord(client, name);
    try {
      await client.setData(
        servicePath(name),
        encodeJson({ ...record, removing: true, updatedAt: Date.now() }),
        version,
      );
      return;
    } catch (err) {
      if (!isZkError(err, 'BAD_VERSION') || attempt >= 5) throw err;
    }
  }
}

export async function listServices(client: ZkClient): Promise<string[]> {
  try {
    return (await client.getChildren(SERVICE_PATHS.services)).sort();
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return [];
    throw err;
  }
}

export interface InstanceState {
  instance: number;
  /** The leader's placement. */
  placement?: Omit<InstanceRecord, 'spec'>;
  /** What the worker that runs it reports. */
  run?: RunRecord;
  endpoint?: Endpoint;
  /** The leader cannot place it (anew) now: why. */
  unplaced?: Omit<Unplaced, 'instance'>;
}

export interface ServiceState {
  name: string;
  record: ServiceRecord;
  status?: ServiceStatus;
  desired: number;
  running: number;
  healthy: number;
  restarts: number;
  /** Instances the leader cannot place now, and why (from its status). */
  unplaced: Unplaced[];
  instances: InstanceState[];
}

async function readChildren<T>(client: ZkClient, dir: string): Promise<Map<number, T>> {
  let names: string[];
  try {
    names = await client.getChildren(dir);
  } catch (err) {
    if (isZkError(err, 'NO_NODE')) return new Map();
    throw err;
  }
  const nums = names.map(Number).filter((n) => Number.isInteger(n) && n >= 0);
  const data = await client.getDataMany(nums.map((n) => `${dir}/${n}`));
  const out = new Map<number, T>();
  nums.forEach((n, i) => {
    const d = data[i];
    const v = d && !(d instanceof Error) ? decode<T>(d.data) : undefined;
    if (v) out.set(n, v);
  });
  return out;
}

/** One service's desired state, placements, runs and endpoints. */
export async function serviceState(client: ZkClient, name: string): Promise<ServiceState> {
  const { record } = await readRecord(client, name);
  const [placed, runs, eps, status] = await Promise.all([
    readChildren<InstanceRecord & { spec?: unknown }>(client, instancesDir(name)),
    readChildren<RunRecord>(client, runningDir(name)),
    readChildren<Endpoint>(client, endpointsDir(name)),
    client.getData(serviceStatusPath(name)).then(
      (r) => decode<ServiceStatus>(r.data),
      () => undefined,
    ),
  ]);
  const desired = record.removing ? 0 : record.spec.instances;
  const unplaced = (status?.unplaced ?? []).filter((u) => u.instance < desired);
  const why = new Map(unplaced.map(({ instance, ...u }) => [instance, u]));
  const numbers = [...new Set([...placed.keys(), ...runs.keys(), ...eps.keys(), ...why.keys()])].sort(
    (a, b) => a - b,
  );
  const instances = numbers.map((n) => {
    const p = placed.get(n);
    let placement: InstanceState['placement'];
    if (p) {
      const { spec: _spec, ...rest } = p;
      placement = rest;
    }
    return { instance: n, placement, run: runs.get(n), endpoint: eps.get(n), unplaced: why.get(n) };
  });
  const live = (r?: RunRecord) => r && ['starting', 'running', 'healthy', 'unhealthy'].includes(r.state);
  return {
    name,
    record,
    status,
    desired,
    running: instances.filter((i) => live(i.run)).length,
    healthy: instances.filter((i) => i.run?.state === 'healthy').length,
    restarts: instances.reduce((sum, i) => sum + (i.run?.restarts ?? 0), 0),
    unplaced,
    instances,
  };
}

/** The running, healthy instances of a service: where to connect. */
export async function serviceEndpoints(client: ZkClient, name: string): Promise<Endpoint[]> {
  await readRecord(client, name);
  return [...(await readChildren<Endpoint>(client, endpointsDir(name))).values()].sort(
    (a, b) => a.instance - b.instance,
  );
}
