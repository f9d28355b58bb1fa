/**
 * The dashboard in Chromium, for a task's life: a task submitted from the page runs and its progress
 * shows in its list entry and its panel; the panel's Cancel button stops it, and the page shows the
 * `cancelled` status with who and why (web/tasks.js, src/web/task-controls.ts). The farm runs in this
 * process; the dashboard sees it from ZooKeeper with controls on.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseStatus, statusPath } from '../src/farm/protocol.js';
import { startDashboard } from '../src/web/index.js';
import { openBrowser, watchErrors } from './helpers/browser.js';
import { useCleanups } from './helpers/cleanups.js';
import { captureLogger, useFarm } from './helpers/farm.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const tmp = mkdtempSync(join(tmpdir(), 'zkfarm-dash-cancel-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir: join(tmp, 'work') });

test('the page shows a running task’s progress and cancels it from its panel', async () => {
  const context = await openBrowser(cleanups);
  const root = await zk.chroot('dash-cancel');
  let aborted: unknown;
  await farm.master(root, 'm1');
  // The page's test-task form offers `sleep`; this worker's own `sleep` reports progress and waits to be stopped.
  await farm.worker(root, 'w1', {
    handlers: {
      sleep: async (_ms, ctx) => {
        ctx.progress(40, 'warming up');
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            aborted = ctx.signal.reason;
            resolve();
          }),
        );
        return 'stopped';
      },
    },
  });
  const dash = await startDashboard({
    http: '127.0.0.1:0',
    connect: root,
    controls: true,
    logger: captureLogger(),
  });
  cleanups.push(() => dash.close());

  const page = context.pages()[0] ?? (await context.newPage());
  const errors = watchErrors(page);
  page.setDefaultTimeout(30_000);
  let passed = false;
  cleanups.push(async () => {
    if (passed) return;
    mkdirSync('test-output', { recursive: true });
    await page
      .screenshot({ path: 'test-output/dashboard-cancel-failure.png', fullPage: true })
      .catch(() => {});
  });
  await page.goto(dash.loginUrl);
  await page.waitForURL(dash.url);

  await page.selectOption('#submit-handler', 'sleep');
  await page.fill('#submit-input', '60000');
  await page.click('#submit-button');
  const mine = page.locator('#my-tasks li').first();
  // The list entry shows it running, with its progress.
  await page.locator('#my-tasks li[data-state="assigned"] .state-tag', { hasText: 'warming up' }).waitFor();
  const id = await mine.getAttribute('data-task-id');
  assert.ok(id, 'the entry names its task');

  await page.click(`#my-tasks [data-task-link="${id}"]`);
  await page.locator('#drawer-body [data-progress]').waitFor();
  assert.match((await page.locator('#drawer-body [data-progress]').textContent()) ?? '', /40%.*warming up/);
  assert.equal(await page.locator('#drawer-body progress.task-progress').getAttribute('value'), '40');

  await page.click('#drawer-body [data-action="task-cancel"]');
  await page.locator('#drawer-body .state-tag[data-state="cancelled"]').waitFor();
  const details = (await page.locator('#drawer-body').textContent()) ?? '';
  assert.match(details, /while running, by dashboard: cancelled from the dashboard/);
  await page.locator(`#my-tasks li[data-task-id="${id}"][data-state="cancelled"]`).waitFor();

  // What the page showed is what ZooKeeper holds, and the handler was stopped through its signal.
  const raw = await zk.rawClient(root);
  const status = parseStatus((await raw.getData(statusPath(id))).data);
  assert.equal(status.state, 'cancelled');
  assert.equal(status.cancelledWhile, 'running');
  assert.equal((aborted as { code?: string })?.code, 'ZKFARM_TASK_CANCELLED');
  assert.deepEqual(errors, []);
  passed = true;
});
