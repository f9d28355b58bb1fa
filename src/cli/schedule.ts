/**
 * `runtime schedule create|ls|show|pause|resume|rm`: recurring tasks kept in ZooKeeper
 * (/schedules/<name>); the leading master makes each tick's task (farm/schedules/).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import ms from 'ms';
import { parse as parseYaml } from 'yaml';
import { ErrorCodes, ZkfarmError } from '../errors.js';
import { ScheduleAdmin, type ScheduleInfo } from '../farm/schedules/admin.js';
import type { ScheduleRecord, ScheduleSpec } from '../farm/schedules/model.js';
import type { ZkClient } from '../zk/client.js';
import { type ClientCommandFlags, withClient, withClientFlags } from './client-command.js';
import { type Io, table } from './common.js';
import { duration } from './time-flags.js';

interface CreateFlags extends ClientCommandFlags {
  every?: string;
  cron?: string;
  tz?: string;
  file?: string;
  catchUp?: string;
  grace?: string;
  paused?: boolean;
  replace?: boolean;
  json?: boolean;
}

function usage(message: string): ZkfarmError {
  return new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, message);
}

function parseJson(what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw usage(`${what} is not valid JSON (${(err as Error).message}): ${text.slice(0, 80)}`);
  }
}

/** The spec from a file (YAML or JSON) and/or flags and the task argument; flags win. */
function specFrom(task: string | undefined, f: CreateFlags): ScheduleSpec {
  let spec: Record<string, unknown> = {};
  if (f.file) {
    let text: string;
    try {
      text = readFileSync(f.file, 'utf8');
    } catch (err) {
      throw usage(`--file ${f.file}: cannot read it (${(err as Error).message})`);
    }
    const v = parseYaml(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw usage(`--file ${f.file}: expected a schedule object (every or cron, task, ...)`);
    spec = { ...(v as Record<string, unknown>) };
  }
  if (task !== undefined) spec['task'] = parseJson('the task', task);
  if (f.every !== undefined) spec['every'] = duration('--every', f.every);
  if (f.cron !== undefined) spec['cron'] = f.cron;
  if (f.tz !== undefined) spec['tz'] = f.tz;
  if (f.catchUp !== undefined) spec['catchUp'] = f.catchUp;
  if (f.grace !== undefined) spec['graceMs'] = duration('--grace', f.grace);
  if (f.paused) spec['paused'] = true;
  if (spec['task'] === undefined)
    throw usage('schedule create: give the task as JSON (e.g. \'{"handler":"noop"}\') or in --file');
  return spec as unknown as ScheduleSpec;
}

const when = (r: ScheduleRecord) => (r.cron ? `cron "${r.cron}" ${r.tz ?? 'UTC'}` : `every ${ms(r.every!)}`);
const time = (t: number | null | undefined) =>
  t === undefined || t === null ? '-' : new Date(t).toISOString();

function rows(list: ScheduleInfo[]): string[][] {
  const out = [['SCHEDULE', 'WHEN', 'NEXT', 'LAST', 'TICKS', 'STATE']];
  for (const s of list) {
    const r = s.record;
    if (!r) out.push([s.name, '-', '-', '-', '-', `invalid: ${s.problem}`]);
    else
      out.push([
        s.name,
        when(r),
        r.paused ? '-' : time(r.next),
        time(r.lastTick),
        String(r.ticks ?? 0),
        r.paused ? 'paused' : r.next === null ? 'ended (no more ticks)' : 'active',
      ]);
  }
  return out;
}

export function registerSchedule(program: Command, io: Io, setExit: (code: number) => void): void {
  const cmd = program
    .command('schedule')
    .description('recurring tasks: cron expressions with time zones, or fixed intervals (docs/cli.md)');
  const run =
    (fn: (admin: ScheduleAdmin, flags: CreateFlags, args: string[]) => Promise<void>) =>
    async (...all: unknown[]) => {
      const command = all[all.length - 1] as Command;
      const flags = command.opts() as CreateFlags;
      setExit(await withClient(flags, (c: ZkClient) => fn(new ScheduleAdmin(c), flags, command.args)));
    };
  withClientFlags(
    cmd
      .command('create <name> [task]')
      .description('create a schedule: each tick submits the task (JSON), made once by the leading master')
      .option('--every <duration>', 'a fixed interval: 1500 (ms), 30s, 5m, 2h, 1d (at least 1s)')
      .option('--cron <expression>', 'a cron expression: 5 fields, or 6 with seconds first')
      .option('--tz <zone>', 'the IANA time zone the cron expression is read in (default UTC)')
      .option('--file <file>', 'the schedule as YAML or JSON (every|cron, tz, task, catchUp, graceMs)')
      .option('--catch-up <policy>', 'ticks missed past the grace: skip (default) or once')
      .option('--grace <duration>', 'how late a tick may still run as itself (default 60s)')
      .option('--paused', 'create it paused')
      .option('--replace', 'replace a schedule of that name (its counts are kept)'),
  ).action(
    run(async (admin, f, [name, task]) => {
      const rec = await admin.create(name!, specFrom(task, f), { replace: f.replace === true });
      io.out(
        `schedule ${name} ${f.replace ? 'saved' : 'created'}: ${when(rec)}, next tick ${time(rec.next)}`,
      );
    }),
  );
  withClientFlags(
    cmd.command('ls').description('list the schedules').option('--json', 'one JSON object per line'),
  ).action(
    run(async (admin, f) => {
      const list = await admin.list();
      if (f.json) for (const s of list) io.out(JSON.stringify(s));
      else if (list.length === 0) io.out('no schedules (create one with `runtime schedule create`)');
      else for (const line of table(rows(list))) io.out(line);
    }),
  );
  withClientFlags(cmd.command('show <name>').description("a schedule's record, as JSON")).action(
    run(async (admin, _f, [name]) => io.out(JSON.stringify(await admin.get(name!), null, 2))),
  );
  const simple = (verb: 'pause' | 'resume', what: string) =>
    withClientFlags(cmd.command(`${verb} <name>`).description(what)).action(
      run(async (admin, _f, [name]) => {
        const rec = await admin[verb](name!);
        io.out(`schedule ${name} ${verb === 'pause' ? 'paused' : `resumed: next tick ${time(rec.next)}`}`);
      }),
    );
  simple('pause', 'stop making ticks until resumed');
  simple('resume', 'make ticks again, from the next one after now');
  withClientFlags(cmd.command('rm <name>').description('remove a schedule (tasks it made stay)')).action(
    run(async (admin, _f, [name]) => {
      if (!(await admin.remove(name!)))
        throw new ZkfarmError(
          ErrorCodes.SCHEDULE_NOT_FOUND,
          `no schedule named ${name} (see runtime schedule ls)`,
        );
      io.out(`schedule ${name} removed`);
    }),
  );
}
