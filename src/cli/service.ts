/**
 * `runtime service create|ls|status|scale|update|restart|rm|endpoints`: services on a running farm
 * (docs/services.md). A service is given by a YAML or JSON file, by flags, or both (flags win); every
 * change goes through the library API (services/api.ts) and the leading master does the rest.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import {
  createService,
  listServices,
  removeService,
  restartService,
  type ServiceSpecInput,
  type ServiceState,
  scaleService,
  serviceEndpoints,
  serviceState,
  updateService,
} from '../services/index.js';
import type { ZkClient } from '../zk/client.js';
import { type ClientCommandFlags, withClient, withClientFlags } from './client-command.js';
import type { Io } from './common.js';

interface ClientOpts extends ClientCommandFlags {
  json?: boolean;
}

interface SpecFlags {
  name?: string;
  cmd?: string;
  handler?: string;
  instances?: string;
  port?: string[];
  env?: string[];
  cwd?: string;
  healthHttp?: string;
  healthTcp?: string;
  healthCmd?: string;
  restart?: string;
  stopGrace?: string;
  maxPerHost?: string;
  queues?: string;
  hosts?: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

function withSpecOptions(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'the service name (letters, digits, "_", "-")')
    .option('--cmd <command>', 'a shell command to keep running (workers need --allow-shell)')
    .option('--handler <name>', 'a handler that runs until its signal fires')
    .option('--instances <n>', 'how many instances')
    .option('--port <name=base>', 'a port: instance n gets base + n (repeatable)', collect)
    .option(
      '--env <KEY=VALUE>',
      'an environment variable ({instance}, {port} are filled in; repeatable)',
      collect,
    )
    .option('--cwd <dir>', 'working directory ({instance} is filled in)')
    .option('--health-http <url>', 'health check: an HTTP URL ({port} is filled in)')
    .option('--health-tcp <port>', 'health check: a TCP port on 127.0.0.1 ({port} is filled in)')
    .option('--health-cmd <command>', 'health check: a command that exits 0 when healthy')
    .option('--restart <policy>', 'always | on-failure')
    .option('--stop-grace <ms>', 'SIGTERM, then SIGKILL after this long')
    .option('--max-per-host <n>', 'at most this many instances on one host')
    .option('--queues <a,b>', 'only on workers serving one of these queues')
    .option('--hosts <h1,h2>', 'only on these hosts');
}

/** The spec a file and flags describe (flags win). */
export function specFromInput(file: string | undefined, f: SpecFlags): Record<string, unknown> {
  let spec: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ZkfarmError(
        ErrorCodes.INVALID_ARGUMENT,
        `cannot read the service file ${file}: ${(err as Error).message}`,
      );
    }
    const parsed = parseYaml(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new ZkfarmError(
        ErrorCodes.INVALID_SERVICE,
        `${file}: expected a service (a YAML or JSON object)`,
      );
    spec = { ...(parsed as Record<string, unknown>) };
  }
  const num = (what: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n))
      throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, `${what}: expected a whole number, got "${v}"`);
    return n;
  };
  const pairs = (what: string, list: string[] | undefined) => {
    if (!list) return undefined;
    return Object.fromEntries(
      list.map((p) => {
        const eq = p.indexOf('=');
        if (eq <= 0)
          throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, `${what}: expected NAME=VALUE, got "${p}"`);
        return [p.slice(0, eq), p.slice(eq + 1)];
      }),
    );
  };
  const set = (key: string, v: unknown) => {
    if (v !== undefined) spec[key] = v;
  };
  set('name', f.name);
  set('cmd', f.cmd);
  set('handler', f.handler);
  set('instances', num('--instances', f.instances));
  set('cwd', f.cwd);
  set('stopGraceMs', num('--stop-grace', f.stopGrace));
  const ports = pairs('--port', f.port);
  if (ports)
    spec['ports'] = {
      ...(spec['ports'] as object),
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, num('--port', v)])),
    };
  const env = pairs('--env', f.env);
  if (env) spec['env'] = { ...(spec['env'] as object), ...env };
  if (f.healthHttp) spec['health'] = { type: 'http', url: f.healthHttp };
  if (f.healthTcp)
    spec['health'] = { type: 'tcp', port: /^\d+$/.test(f.healthTcp) ? Number(f.healthTcp) : f.healthTcp };
  if (f.healthCmd) spec['health'] = { type: 'cmd', cmd: f.healthCmd };
  if (f.restart) spec['restart'] = { ...(spec['restart'] as object), policy: f.restart };
  const placement: Record<string, unknown> = { ...(spec['placement'] as object) };
  if (f.maxPerHost) placement['maxPerHost'] = num('--max-per-host', f.maxPerHost);
  if (f.queues) placement['queues'] = f.queues.split(',').filter(Boolean);
  if (f.hosts) placement['hosts'] = f.hosts.split(',').filter(Boolean);
  if (Object.keys(placement).length > 0) spec['placement'] = placement;
  return spec;
}

export function registerService(program: Command, io: Io, setExit: (code: number) => void): void {
  const svc = program
    .command('service')
    .description('long-running programs kept alive across the farm (docs/services.md)');
  const run =
    (fn: (c: ZkClient, opts: ClientOpts & SpecFlags, args: string[]) => Promise<void>) =>
    async (...all: unknown[]) => {
      const command = all[all.length - 1] as Command;
      const opts = command.opts() as ClientOpts & SpecFlags;
      setExit(await withClient(opts, (c) => fn(c, opts, command.args)));
    };

  withClientFlags(
    withSpecOptions(
      svc.command('create [file]').description('create a service from a YAML/JSON file and/or flags'),
    ),
  ).action(
    run(async (c, opts, [file]) => {
      const rec = await createService(c, specFromInput(file, opts) as ServiceSpecInput);
      io.out(`service ${rec.spec.name} created: ${rec.spec.instances} instance(s), revision ${rec.revision}`);
    }),
  );
  withClientFlags(
    svc.command('ls').description('list the services').option('--json', 'one JSON object'),
  ).action(
    run(async (c, opts) => {
      const states = await Promise.all((await listServices(c)).map((n) => serviceState(c, n)));
      if (opts.json) return io.out(JSON.stringify(states.map(summary)));
      if (states.length === 0) return io.out('no services');
      for (const line of table([
        ['SERVICE', 'DESIRED', 'RUNNING', 'HEALTHY', 'RESTARTS', 'REVISION', 'ROLLOUT'],
        ...states.map(row),
      ]))
        io.out(line);
    }),
  );
  withClientFlags(
    svc
      .command('status <name>')
      .description("a service's instances: where, health, restarts, logs")
      .option('--json', 'one JSON object'),
  ).action(
    run(async (c, opts, [name]) => {
      const s = await serviceState(c, name!);
      if (opts.json) return io.out(JSON.stringify(s));
      for (const line of renderService(s)) io.out(line);
    }),
  );
  withClientFlags(
    svc.command('scale <name> <instances>').description('change the number of instances'),
  ).action(
    run(async (c, _opts, [name, n]) => {
      const count = Number(n);
      if (!Number.isInteger(count) || count < 0)
        throw new ZkfarmError(
          ErrorCodes.INVALID_ARGUMENT,
          `instances: expected a whole number ≥ 0, got "${n}"`,
        );
      await scaleService(c, name!, count);
      io.out(`service ${name} scaled to ${count}`);
    }),
  );
  withClientFlags(
    withSpecOptions(
      svc.command('update <name> [file]').description('change a service (rolled out one instance at a time)'),
    ),
  ).action(
    run(async (c, opts, [name, file]) => {
      const rec = await updateService(c, name!, specFromInput(file, opts) as Partial<ServiceSpecInput>);
      io.out(`service ${name} updated: revision ${rec.revision}`);
    }),
  );
  withClientFlags(svc.command('restart <name>').description('restart every instance, one at a time')).action(
    run(async (c, _opts, [name]) => {
      const rec = await restartService(c, name!);
      io.out(`service ${name} restarting: revision ${rec.revision}`);
    }),
  );
  withClientFlags(svc.command('rm <name>').description('stop every instance and remove the service')).action(
    run(async (c, _opts, [name]) => {
      await removeService(c, name!);
      io.out(`service ${name} is being removed`);
    }),
  );
  withClientFlags(
    svc
      .command('endpoints <name>')
      .description('the running, healthy instances: host and ports')
      .option('--json', 'one JSON array'),
  ).action(
    run(async (c, opts, [name]) => {
      const eps = await serviceEndpoints(c, name!);
      if (opts.json) return io.out(JSON.stringify(eps));
      for (const e of eps)
        io.out(
          `${e.instance}\t${e.host}\t${
            Object.entries(e.ports)
              .map(([k, p]) => `${k}=${p}`)
              .join(' ') || '-'
          }\t${e.worker}`,
        );
    }),
  );
}

const summary = (s: ServiceState) => ({
  name: s.name,
  desired: s.desired,
  running: s.running,
  healthy: s.healthy,
  restarts: s.restarts,
  revision: s.record.revision,
  rollout: s.status?.rollout,
  unplaced: s.unplaced,
});

const row = (s: ServiceState) => [
  s.name + (s.record.removing ? ' (removing)' : ''),
  String(s.desired),
  String(s.running),
  String(s.healthy),
  String(s.restarts),
  String(s.record.revision),
  s.status?.rollout ? `${s.status.rollout.state} (revision ${s.status.rollout.revision})` : '-',
];

export function renderService(s: ServiceState): string[] {
  const lines = [
    `service   ${s.name}${s.record.removing ? ' (being removed)' : ''}: ${s.record.spec.cmd ? `cmd ${s.record.spec.cmd}` : `handler ${s.record.spec.handler}`}`,
    `instances ${s.desired} desired, ${s.running} running, ${s.healthy} healthy, ${s.restarts} restarts; revision ${s.record.revision}`,
  ];
  const r = s.status?.rollout;
  if (r) lines.push(`rollout   revision ${r.revision} ${r.state}${r.reason ? `: ${r.reason}` : ''}`);
  for (const u of s.unplaced)
    lines.push(`unplaced  instance ${u.instance} cannot be placed (${u.code}): ${u.reason}`);
  lines.push('');
  const rows = [['#', 'WORKER', 'HOST', 'STATE', 'REV', 'RESTARTS', 'ENDPOINT', 'LOGS', 'NOTE']];
  for (const i of s.instances) {
    const failed = i.placement?.state === 'failed';
    const note = failed
      ? i.placement?.reason
      : i.unplaced
        ? `cannot be placed: ${i.unplaced.reason}`
        : (i.run?.reason ?? i.run?.lastExit);
    rows.push([
      String(i.instance),
      i.run?.worker ?? i.placement?.worker ?? '-',
      i.run?.host ?? '-',
      failed ? 'failed' : (i.run?.state ?? (i.placement ? 'placed' : 'unplaced')),
      String(i.run?.revision ?? i.placement?.revision ?? '-'),
      String(i.run?.restarts ?? 0),
      i.endpoint ? Object.values(i.endpoint.ports).join(',') || 'yes' : '-',
      i.run?.logDir ?? '-',
      note ?? '',
    ]);
  }
  lines.push(...table(rows));
  return lines;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
