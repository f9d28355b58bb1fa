/**
 * Where a handler module is: what the user wrote (a path, a file URL, a package name) turned into the
 * file URL a pool thread imports. Apart from the pool (handler-pool.ts) because a role thread resolves
 * its modules without running a pool of its own (it borrows the host's), and should not load Piscina
 * to do it.
 */
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { configError, describeError } from '../errors.js';

/**
 * Turn a handler module as the user wrote it into the one URL a pool thread imports, so that what is
 * checked here is what runs (no second resolution elsewhere):
 * - a `file:` URL → itself;
 * - a path (starts with `.` or `/`, or names a file with a JavaScript or TypeScript extension, such as
 *   `handlers.mjs`) → its file URL, relative paths resolved against `cwd`;
 * - a package name (`my-handlers`, `@org/h/sub`) → resolved from `cwd` as `import()` there would
 *   (ESM resolution: its `exports` with the `import` condition), to the file URL of what it names. A
 *   file in `cwd` with the package's name does not shadow it.
 * A path or package that does not exist is `ZKFARM_CONFIG_INVALID` naming the module.
 */
export async function resolveHandlerModule(specifier: string, cwd: string = process.cwd()): Promise<string> {
  const notFound = (why: string) =>
    configError(
      `handler module ${JSON.stringify(specifier)} not found: ${why}. Check the handlerModules option`,
    );
  if (specifier.startsWith('file:')) {
    const path = fileURLToPath(specifier);
    if (!(await isFile(path))) throw notFound(`no file at ${path}`);
    return specifier;
  }
  if (isPathSpecifier(specifier)) {
    const path = resolve(cwd, specifier);
    if (await isFile(path)) return pathToFileURL(path).href;
    throw notFound(`no file at ${path} (relative paths are resolved against the current directory ${cwd})`);
  }
  // Loaded here, not at the top: a role thread whose handler modules are all paths (or that has none)
  // never pays for the resolver.
  const { resolve: importMetaResolve } = await import('import-meta-resolve');
  let url: string;
  try {
    url = importMetaResolve(specifier, pathToFileURL(join(cwd, 'noop.js')).href);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND')
      throw notFound(`it is neither a file nor a package installed under ${cwd}`);
    throw configError(
      `handler module ${JSON.stringify(specifier)} cannot be resolved from ${cwd}: ${describeError(err)}`,
    );
  }
  if (!url.startsWith('file:') || !(await isFile(fileURLToPath(url))))
    throw notFound(`the package resolves to ${url}, which is not a file`);
  return url;
}

/** A path rather than a package name: relative, absolute, or a file name with a script extension. */
function isPathSpecifier(specifier: string): boolean {
  return /^[./]/.test(specifier) || /\.(?:[cm]?js|[cm]?ts)$/.test(specifier);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
