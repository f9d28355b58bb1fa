/**
 * Memory per role thread, alone: what one master or worker thread adds to a host's RSS, with each young
 * generation size asked for.
 *
 *   npm run build && node dist/benchmarks/harness/role-memory.js [--roles 8,64] [--young 3,48] [--rounds 3]
 *
 * (`node --import tsx benchmarks/harness/role-memory.ts ...` runs from source, where every thread also
 * carries tsx: the figures are higher.) One standalone ZooKeeper on loopback serves every measurement.
 * Each measurement is the scaling scenario's (scenarios/scaling.ts measureRss) in a fresh process: an
 * empty host's RSS, then R roles (2 masters, R − 2 workers) registered and settled, RSS again; (after −
 * before) ÷ R. `--young` values are the hosts' `roleResourceLimits.maxYoungGenerationSizeMb` (0: V8's
 * own); their order alternates from round to round, so a drift of the machine does not favour one.
 * Bounded: `--rounds` × roles × young measurements, each with a deadline; a second Ctrl-C kills at once.
 */
import { parseArgs } from 'node:util';
import { startZkServer, type ZkServer } from '../../src/zk/index.js';
import { FROM_SOURCE, killChildren, runChild } from './child.js';
import { machineInfo } from './machine.js';
import { PRESETS } from './options.js';
import { rssShape } from './scenarios/scaling.js';
import { num, renderText, sig, spread, spreadCells } from './stats.js';
import type { FarmShape, RssJob, RssResult, Table } from './types.js';

interface Plan {
  roles: number[];
  young: number[];
  rounds: number;
}

/** Most measurements one run makes: a typo in --rounds must not hold the machine for a day. */
const MAX_MEASUREMENTS = 60;
/** The roles' settle time before RSS is read: past their start-up garbage and first session pings. */
const SETTLE_MS = 3000;

function numberList(flag: string, text: string, min: number, max: number): number[] {
  const values = text.split(',').map((s) => Number(s.trim()));
  for (const v of values)
    if (!Number.isInteger(v) || v < min || v > max)
      throw new Error(`--${flag} takes whole numbers from ${min} to ${max}, comma-separated; got ${text}`);
  return values;
}

function parsePlan(argv: string[]): Plan {
  const { values } = parseArgs({
    args: argv,
    options: {
      roles: { type: 'string', default: '8,64' },
      young: { type: 'string', default: '3,48' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const plan = {
    roles: numberList('roles', values.roles, 2, 256),
    young: numberList('young', values.young, 0, 1024),
    rounds: numberList('rounds', values.rounds, 1, 20)[0]!,
  };
  const count = plan.roles.length * plan.young.length * plan.rounds;
  if (count > MAX_MEASUREMENTS)
    throw new Error(`${count} measurements asked for; at most ${MAX_MEASUREMENTS} in one run`);
  return plan;
}

interface Measured {
  roles: number;
  young: number;
  result: RssResult;
}

async function measureAll(plan: Plan, zk: ZkServer, signal: AbortSignal): Promise<Measured[]> {
  const base: FarmShape = { ...PRESETS.full.throughput, sessionTimeout: PRESETS.full.sessionTimeout };
  const out: Measured[] = [];
  let chroot = 0;
  for (let round = 0; round < plan.rounds; round++) {
    const young = round % 2 === 0 ? plan.young : [...plan.young].reverse();
    for (const roles of plan.roles)
      for (const y of young) {
        if (signal.aborted) return out;
        const job: RssJob = {
          kind: 'rss',
          zk: {
            connect: `${zk.connectString}/zkfarm-bench/role-memory-${process.pid}-${++chroot}`,
            pid: zk.pid ?? 0,
          },
          shape: rssShape(base, roles),
          settleMs: SETTLE_MS,
          roleResourceLimits: { maxYoungGenerationSizeMb: y },
        };
        const result = await runChild<RssResult>(job, { timeoutMs: 120_000 + roles * 5000, signal });
        process.stderr.write(
          `round ${round + 1}/${plan.rounds}: ${roles} roles, young ${youngLabel(y)}: ${sig(result.perRoleMb)} MB per role\n`,
        );
        out.push({ roles, young: y, result });
      }
  }
  return out;
}

const youngLabel = (y: number): string => (y === 0 ? "V8's" : `${y} MB`);

function table(plan: Plan, runs: Measured[]): Table {
  const m = machineInfo();
  return {
    title: `RSS per role thread (${FROM_SOURCE ? 'from source under tsx' : 'compiled JS'}; ${m.cores} cores, ${m.cpuModel}, Node ${process.version})`,
    columns: [
      'roles',
      'young gen',
      'runs',
      'min MB',
      'median MB',
      'max MB',
      'empty host MB',
      'with roles MB',
    ],
    rows: plan.roles.flatMap((roles) =>
      plan.young.map((y) => {
        const rs = runs.filter((r) => r.roles === roles && r.young === y).map((r) => r.result);
        const per = spread(rs.map((r) => r.perRoleMb));
        return [
          roles,
          youngLabel(y),
          per.n,
          ...spreadCells(per),
          num(spread(rs.map((r) => r.beforeMb)).median),
          num(spread(rs.map((r) => r.afterMb)).median),
        ];
      }),
    ),
    notes: [
      `Per role: (RSS with the roles registered and settled ${SETTLE_MS / 1000} s − RSS of the empty host) ÷ roles; 2 masters, the rest workers; a fresh process each.`,
    ],
  };
}

async function main(): Promise<number> {
  const plan = parsePlan(process.argv.slice(2));
  const abort = new AbortController();
  let signals = 0;
  const onSignal = () => {
    if (++signals === 1) abort.abort();
    else {
      killChildren();
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const zk = await startZkServer({});
  try {
    const runs = await measureAll(plan, zk, abort.signal);
    process.stdout.write(`\n${renderText(table(plan, runs))}\n`);
    return abort.signal.aborted ? 130 : 0;
  } finally {
    await zk.stop();
  }
}

process.exit(
  await main().catch((err: unknown) => {
    process.stderr.write(`role-memory: ${(err as Error).message}\n`);
    return 1;
  }),
);
