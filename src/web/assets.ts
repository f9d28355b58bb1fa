/**
 * The page's files: `web/` of the package (plain HTML, CSS and ES modules: no build step) and uPlot's
 * browser build from node_modules. Read once when the dashboard starts and served from memory: every
 * .html, .js, .css, .svg and .png directly in `web/` at `/<name>`, uPlot at `/vendor/`.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, ZkfarmError } from '../errors.js';

export interface Asset {
  body: Buffer;
  type: string;
}

/** Types of the files `web/` may hold; anything else there is not served. */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

const VENDOR_FILES: Record<string, [file: string, type: string]> = {
  '/vendor/uPlot.iife.min.js': ['uPlot.iife.min.js', 'text/javascript; charset=utf-8'],
  '/vendor/uPlot.min.css': ['uPlot.min.css', 'text/css; charset=utf-8'],
};

/** `web/` next to `src/` (from source) or next to `dist/` (built): the first that holds index.html. */
export function webDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '../../web'), join(here, '../../../web')];
  const found = candidates.find((d) => existsSync(join(d, 'index.html')));
  if (!found) {
    throw new ZkfarmError(
      ErrorCodes.CONFIG_INVALID,
      `the dashboard's page files (web/index.html) are missing; looked in ${candidates.join(' and ')}. Reinstall zkfarm`,
    );
  }
  return found;
}

export async function loadAssets(): Promise<Map<string, Asset>> {
  const dir = webDir();
  const require = createRequire(import.meta.url);
  let uplotDist: string;
  try {
    uplotDist = join(dirname(require.resolve('uplot/package.json')), 'dist');
  } catch {
    throw new ZkfarmError(
      ErrorCodes.CONFIG_INVALID,
      'the uplot package is missing (the dashboard draws its charts with it): run npm install',
    );
  }
  const assets = new Map<string, Asset>();
  const load = async (url: string, path: string, type: string) =>
    assets.set(url, { body: await readFile(path), type });
  const pageFiles = (await readdir(dir, { withFileTypes: true })).filter(
    (e) => e.isFile() && TYPES[extname(e.name)],
  );
  await Promise.all([
    ...pageFiles.map((e) => load(`/${e.name}`, join(dir, e.name), TYPES[extname(e.name)]!)),
    ...Object.entries(VENDOR_FILES).map(([url, [file, type]]) => load(url, join(uplotDist, file), type)),
  ]);
  assets.set('/', assets.get('/index.html')!);
  return assets;
}
