/**
 * A real browser for the dashboard tests: Debian's Chromium, headless, driven by playwright-core, with a
 * profile of its own that the clean-ups remove; and a watch that turns page errors and console errors
 * (a CSP violation is one) into a list the test asserts empty.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import type { Cleanup } from './cleanups.js';

export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A headless Chromium context (closed, its profile removed, by `cleanups`). */
export async function openBrowser(cleanups: Cleanup[]): Promise<BrowserContext> {
  assert.ok(
    existsSync(CHROMIUM),
    `Chromium is not installed at ${CHROMIUM}; the dashboard's browser tests need it: run scripts/setup.sh --browser (it installs Debian's chromium package)`,
  );
  const profile = mkdtempSync(join(tmpdir(), 'zkfarm-chromium-'));
  cleanups.push(() => rmSync(profile, { recursive: true, force: true }));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1600, height: 1000 },
    deviceScaleFactor: 1,
    timeout: 60_000,
  });
  cleanups.push(() => context.close());
  return context;
}

/** Page errors and console errors, collected as they come (assert the list empty at the end). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`console error: ${msg.text()}`);
  });
  return errors;
}
