/**
 * Run the benchmarks standalone: `node --import tsx benchmarks/harness/main.ts [--quick] [--scenario a,b] [--out DIR]`
 * (or `node dist/benchmarks/harness/main.js ...` after `npm run build`). `runtime bench` takes the same options.
 */
import { benchCommand } from './cli.js';

await benchCommand('bench').parseAsync(process.argv);
// A client library or a role thread may keep a handle open: exit with the code the run decided.
process.exit(process.exitCode ?? 0);
