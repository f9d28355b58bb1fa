/**
 * `runtime bench [--quick] [--scenario a,b] ...`: the benchmark harness (benchmarks/harness/), side by side with the
 * raw ZooKeeper ceiling and BullMQ on Redis in the same run. See benchmarks/README.md.
 */
import type { Command } from 'commander';
import { addBenchOptions, type BenchCliOptions, benchAction } from '../../benchmarks/harness/cli.js';
import type { Io } from './common.js';

export function registerBench(program: Command, _io: Io, setExit: (code: number) => void): void {
  const cmd = program
    .command('bench')
    .description(
      'measure the farm on this machine against the raw ZooKeeper ceiling and BullMQ on Redis (benchmarks/README.md)',
    );
  addBenchOptions(cmd).action(async (opts: BenchCliOptions) => {
    setExit(await benchAction(opts));
  });
}
