/**
 * zod, loaded on first use. Every module of zkfarm takes zod from here and imports it otherwise only as
 * types (`import type { z } from 'zod'`).
 *
 * Why: each role thread is its own V8 isolate, and zod with the farm's schemas costs a thread about 5 MB
 * (benchmarks/README.md, "Memory per role thread") while a started role needs none of it: its options
 * were checked by the host, and plain tasks are settled by task-schema.ts's field-by-field check. So
 * schemas are built the first time something is checked against them (`lazily`), and zod is loaded then.
 *
 * Why `require`: the checks are synchronous, and an `import()` is not. The CommonJS build is the only
 * copy of zod any isolate loads (a static `import { z } from 'zod'` anywhere would load the ES module
 * build beside it, and schemas of two copies must not meet in one union).
 */
import { createRequire } from 'node:module';
import type { z } from 'zod';

/** zod's `z`, as a type: what a schema builder is given. */
export type Zod = typeof z;

const requireHere = createRequire(import.meta.url);
let loaded: Zod | undefined;

/** zod's `z`, loaded on the first call (synchronously). */
export function zod(): Zod {
  loaded ??= (requireHere('zod') as { z: Zod }).z;
  return loaded;
}

/** A value made with zod (a schema, a set of schemas) on the first call, then kept. */
export function lazily<T>(build: (z: Zod) => T): () => T {
  let value: { built: T } | undefined;
  return () => {
    value ??= { built: build(zod()) };
    return value.built;
  };
}
