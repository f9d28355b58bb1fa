/**
 * The role threads' entry as one file, made after tsc by `npm run build`: zkfarm's own modules of a
 * role thread (workers/role-thread.ts and what it imports) in one ES module, packages left to Node.
 * Each role thread is its own isolate and loads its code itself; loading one file instead of a module
 * graph of our own files takes a role thread about a quarter less CPU (benchmarks/README.md, "A role
 * thread's code in one file").
 *
 * It is written to dist/src/host/, as deep under dist/ as the modules that find files relative to
 * their own `import.meta.url` (exec/handler-pool.ts finds workers/handler-pool.js as
 * `../../workers/...`), so that those paths resolve from the bundle as they do from the module.
 */
import { build } from 'esbuild';

/**
 * The executor's lazy import of the handler pool stays a module of its own: bundled, it and the modules
 * it shares with the rest (errors, failure, names) were wrapped in lazy initialisers, their constants
 * turned into variables, and the farm spent ~14% more CPU per task in an A/B. A role thread never takes
 * that import: a worker with handler modules gets the host's pool (role-runtime.ts), one without needs
 * none.
 */
const lazyPool = {
  name: 'lazy-handler-pool',
  setup(b) {
    b.onResolve({ filter: /^\.\/handler-pool\.js$/ }, (args) =>
      args.kind === 'dynamic-import' ? { path: '../exec/handler-pool.js', external: true } : undefined,
    );
  },
};

await build({
  entryPoints: ['dist/workers/role-thread.js'],
  outfile: 'dist/src/host/role-thread.bundle.js',
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  plugins: [lazyPool],
});
