#!/usr/bin/env node
// The `runtime` command. Runs the compiled CLI: `npm run build` (or scripts/setup.sh) makes dist/.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(compiled)) {
  process.stderr.write(
    'runtime: zkfarm is not built yet (no dist/src/cli/main.js): run `npm run build` or `bash scripts/setup.sh`\n',
  );
  process.exit(1);
}
const { run } = await import(compiled.href);
await run(process.argv);
