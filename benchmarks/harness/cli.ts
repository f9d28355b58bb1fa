/**
 * The `bench` command line (commander), shared by benchmarks/harness/main.ts and `runtime bench`:
 *
 *   bench [--quick | --size tiny|quick|full] [--scenario a,b] [--out DIR] [--repeats N] [--tasks N]
 *         [--redis-persistence none|everysec|always] [--cpu-prof] [--progress auto|bar|lines|none]
 *   bench --render benchmarks/results/latest.json      (regenerate latest.md and the charts only)
 *
 * Exit code: 0 when every scenario completed and every check passed, 1 otherwise, 130 when interrupted.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { describeError } from '../../src/errors.js';
import { type BenchOptions, parseScenarios, runBench } from './index.js';
import type { RunRecord } from './report.js';
import { writeReport } from './report.js';
import { SCENARIOS } from './types.js';

function wholeNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${name} must be a whole number ≥ 1, got "${value}"`);
    }
    return n;
  };
}

function scenarioList(value: string): string[] {
  try {
    return parseScenarios(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^--scenario: /, ''));
  }
}

export interface BenchCliOptions {
  quick?: boolean;
  size?: 'tiny' | 'quick' | 'full';
  scenario?: string[];
  out?: string;
  repeats?: number;
  tasks?: number;
  redisPersistence?: 'none' | 'everysec' | 'always';
  cpuProf?: boolean;
  progress?: 'auto' | 'bar' | 'lines' | 'none';
  render?: string;
}

/** Add the bench options to a command (so `runtime bench` can reuse them). */
export function addBenchOptions(cmd: Command): Command {
  return cmd
    .option('--quick', 'every scenario at reduced sizes (under 3 minutes on 2 cores)')
    .addOption(
      new Option('--size <size>', 'size preset (wins over --quick)').choices(['tiny', 'quick', 'full']),
    )
    .option(
      '--scenario <list>',
      `comma-separated scenarios to run: ${SCENARIOS.join(', ')} (default: all but services, scale and multi-host)`,
      scenarioList,
    )
    .option('--out <dir>', 'directory for the JSON, Markdown and SVG files (default: benchmarks/results)')
    .option(
      '--repeats <n>',
      'repeats of every measurement (default: from the size preset)',
      wholeNumber('--repeats'),
    )
    .option(
      '--tasks <n>',
      'tasks per throughput, peer and scale measurement (default: from the size preset)',
      wholeNumber('--tasks'),
    )
    .addOption(
      new Option('--redis-persistence <mode>', 'durability of the BullMQ peer’s redis-server')
        .choices(['none', 'everysec', 'always'])
        .default('everysec'),
    )
    .option(
      '--cpu-prof',
      'write a CPU profile of every measurement process (all threads) into <out>/profiles',
    )
    .addOption(
      new Option('--progress <mode>', 'progress display')
        .choices(['auto', 'bar', 'lines', 'none'])
        .default('auto'),
    )
    .option('--render <latest.json>', 'only regenerate latest.md and the charts from a latest.json');
}

export function toBenchOptions(o: BenchCliOptions): BenchOptions {
  return {
    quick: o.quick,
    size: o.size,
    scenarios: o.scenario as BenchOptions['scenarios'],
    out: o.out ? resolve(o.out) : undefined,
    repeats: o.repeats,
    tasks: o.tasks,
    redisPersistence: o.redisPersistence,
    cpuProf: o.cpuProf,
    progress: o.progress,
  };
}

/** Run the bench command with parsed options; resolves with the process exit code. */
export async function benchAction(o: BenchCliOptions): Promise<number> {
  if (o.render) {
    const file = resolve(o.render);
    const record = JSON.parse(readFileSync(file, 'utf8')) as RunRecord;
    for (const f of writeReport(record, dirname(file))) process.stdout.write(`wrote ${f}\n`);
    return 0;
  }
  const result = await runBench(toBenchOptions(o));
  if (result.interrupted) return 130;
  return result.ok ? 0 : 1;
}

export function benchCommand(name = 'bench'): Command {
  const cmd = new Command(name).description(
    'Measure the farm on this machine: raw ZooKeeper ceiling, throughput, latency, scaling, failover, and BullMQ on Redis side by side',
  );
  addBenchOptions(cmd).action(async (o: BenchCliOptions) => {
    try {
      process.exitCode = await benchAction(o);
    } catch (err) {
      process.stderr.write(`bench: ${describeError(err)}\n`);
      process.exitCode = 1;
    }
  });
  return cmd;
}
