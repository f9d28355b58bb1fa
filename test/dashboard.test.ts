/**
 * The dashboard in a real browser: Debian's Chromium, driven headless by playwright-core, against a real
 * ZooKeeper, a host with 2 masters and 2 workers, and a stream of tasks in the background (so the charts
 * have something to show). It sees the leader and the workers, submits a task through the page and sees it
 * finish, opens its details, crashes the leader from the page and sees a standby take over. Opened without
 * the dashboard's token, the page asks for it and keeps the controls off until it is given. A read-only
 * dashboard (no host, controls off) shows the same farm and says that controls are off.
 *
 * Saves test-output/dashboard.png; with ZKFARM_SCREENSHOT=1 it also copies it to docs/images/dashboard.png
 * (the README's screenshot), so an ordinary test run leaves the working tree as it was.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import type { Page } from 'playwright-core';
import { QueueAdmin } from '../src/farm/queue-admin.js';
import { ScheduleAdmin } from '../src/farm/schedules/admin.js';
import { Submitter } from '../src/farm/submitter.js';
import { createLogger, Host } from '../src/host/index.js';
import { type Dashboard, startDashboard } from '../src/web/index.js';
import { connect } from '../src/zk/index.js';
import { openBrowser, watchErrors } from './helpers/browser.js';
import { FaultInjector } from './helpers/faults.js';
import { useZooKeeper } from './helpers/zk.js';

/** ZKFARM_SCREENSHOT=1: also copy the page's screenshot to docs/images, after a longer history. */
const SCREENSHOT = process.env['ZKFARM_SCREENSHOT'] === '1';
const zk = useZooKeeper();
const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      // keep cleaning up
    }
  }
});

const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-dashboard-test-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const logLines: string[] = [];
const logger = createLogger({
  level: 'info',
  pretty: false,
  destination: new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  }),
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Tasks in the background until stopped: bursts of short sleeps, a few failing, so the charts move. */
function backgroundLoad(sub: Submitter): { stop(): Promise<void>; submitted: () => number } {
  let stopped = false;
  let submitted = 0;
  let burst = 0;
  const done = (async () => {
    while (!stopped) {
      burst++;
      const n = 30 + ((burst * 17) % 50);
      const tasks = Array.from({ length: n }, (_, i) =>
        (burst * n + i) % 37 === 0
          ? { handler: 'fail', input: `simulated failure in burst ${burst}`, maxAttempts: 2 }
          : { handler: 'sleep', input: 20 + ((i * 29 + burst * 13) % 160) },
      );
      try {
        submitted += (await sub.submitMany(tasks)).length;
      } catch {
        // a submit may fail while sessions churn; the test does not count these tasks
      }
      await sleep(1000);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
    },
    submitted: () => submitted,
  };
}

let passed = false;
const leaderOf = (page: Page) => page.locator('#leader-name').getAttribute('data-leader');

test('the dashboard in Chromium: leader and workers, a task submitted from the page, failover after crashing the leader', async () => {
  const context = await openBrowser(cleanups);
  const root = await zk.chroot('dashboard');
  // The page's Crash control is fault injection: the dashboard gets the injector that made the threads.
  const faults = new FaultInjector();
  const host = await Host.start(
    {
      connect: root,
      workdir,
      taskDirs: 'always', // so the page's test task (a built-in handler) has output files to show
      sessionTimeout: 4000,
      roles: [
        { kind: 'master', name: 'm1' },
        { kind: 'master', name: 'm2' },
        { kind: 'worker', name: 'w1', capacity: 4 },
        { kind: 'worker', name: 'w2', capacity: 4 },
      ],
    },
    // The crashed leader stays down for a minute before the host restarts it: a master restarted at once
    // could win the election again (it races the standby once its old session expires), and this test
    // wants to see the standby take over.
    { logger, restartDelayMs: 60_000, spawn: faults.spawn },
  );
  cleanups.push(() => host.stop({ drain: false }));
  const dash: Dashboard = await startDashboard({ http: '127.0.0.1:0', host, controls: true, faults, logger });
  cleanups.push(() => dash.close());
  const sub = await Submitter.open({ connect: root });
  cleanups.push(() => sub.close());
  const load = backgroundLoad(sub);
  cleanups.push(() => load.stop());

  const page = context.pages()[0] ?? (await context.newPage());
  // On failure: a screenshot and the end of the log, to see what the page and the farm were doing.
  cleanups.push(async () => {
    if (passed) return;
    mkdirSync('test-output', { recursive: true });
    await page.screenshot({ path: 'test-output/dashboard-failure.png', fullPage: true }).catch(() => {});
    console.error(
      `dashboard test failed; screenshot in test-output/dashboard-failure.png; last log lines:\n${logLines.slice(-40).join('')}`,
    );
  });
  const errors = watchErrors(page);
  page.on('dialog', (d) => void d.accept());
  page.setDefaultTimeout(60_000);
  await page.goto(dash.url);

  // Opened without its token: the page shows the farm, keeps the controls off and asks for the token;
  // given it, the dashboard sets its cookie and the controls work.
  await page.locator('#token-banner').waitFor();
  assert.equal(await page.locator('#add-worker').isDisabled(), true, 'no controls without the token');
  await page.fill('#token-input', dash.token);
  await page.click('#token-button');
  await page.waitForURL(dash.url);
  await page.locator('#token-banner').waitFor({ state: 'hidden' });

  // The leader in the header and on its card; both workers as live cards.
  await page.waitForFunction(() => document.querySelector<HTMLElement>('#leader-name')?.dataset['leader']);
  const first = await leaderOf(page);
  assert.ok(first === 'm1' || first === 'm2', `a master leads, got ${first}`);
  await page.locator(`#masters [data-role="${first}"][data-tone="leader"]`).waitFor();
  for (const w of ['w1', 'w2']) {
    await page.locator(`#workers [data-role="${w}"]:is([data-tone="active"], [data-tone="busy"])`).waitFor();
  }
  assert.equal(await page.locator('#controls-pill').textContent(), 'controls on');
  assert.equal(await page.locator('#readonly-banner').isHidden(), true);

  // Submit a task through the page; it finishes; its details show the result and its output file.
  await page.selectOption('#submit-handler', 'echo');
  await page.fill('#submit-input', '{"greeting": "from the browser"}');
  await page.click('#submit-button');
  const mine = page.locator('#my-tasks li').first();
  await page.locator('#my-tasks li[data-state="succeeded"]').first().waitFor();
  const id = await mine.getAttribute('data-task-id');
  assert.match(id ?? '', /^task-\d{10}$/);
  await mine.locator('.task-link').click();
  await page.locator('#drawer-body pre').first().waitFor();
  const details = await page.locator('#drawer-body').textContent();
  assert.ok(details?.includes('from the browser'), 'the details show the task result');
  assert.ok(details?.includes('result.json'), 'the details list the output files');
  mkdirSync('test-output', { recursive: true });
  await page.screenshot({ path: 'test-output/dashboard-task.png' });
  await page.click('#drawer-close');

  // Pause and resume a worker from its card.
  await page.click('#workers [data-role="w2"] [data-action="pause"]');
  await page.locator('#workers [data-role="w2"][data-tone="paused"]').waitFor();
  assert.equal(await page.locator('#workers [data-role="w2"] [data-action="pause"]').textContent(), 'Resume');
  await page.click('#workers [data-role="w2"] [data-action="pause"]');
  await page.locator('#workers [data-role="w2"]:is([data-tone="active"], [data-tone="busy"])').waitFor();

  // The queues panel: the default queue (the background load's) with its workers; pause it from the
  // page (stored in /queues/default, so every host's leader holds it), then resume it.
  const row = '#queues tr[data-queue="default"]';
  await page.locator(row).waitFor();
  assert.equal(await page.locator(`${row} td:nth-child(7)`).textContent(), '2', 'both workers serve it');
  await page.click(`${row} [data-action="queue-pause"]`);
  await page.locator(`${row} [data-action="queue-resume"]`).waitFor();
  assert.equal(await page.locator(`${row} td:nth-child(4)`).textContent(), 'paused');
  const sup = connect({ connect: root, sessionTimeout: 10_000 });
  cleanups.push(() => sup.stop());
  const stored = await new QueueAdmin((await sup.ready).client).controls('default');
  assert.equal(stored.paused, true, 'the pause is stored in ZooKeeper');
  await page.click(`${row} [data-action="queue-resume"]`);
  await page.locator(`${row} [data-action="queue-pause"]`).waitFor();

  // The schedules panel: a schedule made by the library appears with its ticks; pause it, then remove it
  // from the page (a confirm dialog), and both reach ZooKeeper.
  const schedules = new ScheduleAdmin((await sup.ready).client);
  await schedules.create('beat', { every: 1000, task: { handler: 'noop' } });
  const srow = '#schedules tr[data-schedule="beat"]';
  await page.locator(`${srow}[data-state="active"]`).waitFor();
  await page.waitForFunction(
    (sel) => Number(document.querySelector(`${sel} td:nth-child(5)`)?.textContent) > 0,
    srow,
  );
  assert.equal(await page.locator(`${srow} td:nth-child(2)`).textContent(), 'every 1s');
  await page.click(`${srow} [data-action="schedule-pause"]`);
  await page.locator(`${srow}[data-state="paused"]`).waitFor();
  assert.equal((await schedules.get('beat')).record?.paused, true, 'the pause is stored in ZooKeeper');
  await page.click(`${srow} [data-action="schedule-remove"]`);
  await page.locator('#schedules-panel').waitFor({ state: 'hidden' });
  assert.equal((await schedules.list()).length, 0, 'the schedule is removed from ZooKeeper');

  // Let the charts gather some history under load (a full one only for the docs' screenshot).
  await page.waitForFunction(() => Number(document.querySelector('#stat-rate .v')?.textContent) > 0);
  await sleep(SCREENSHOT ? 8000 : 2000);

  // Crash the leader from the page: a standby takes over.
  await page.click(`#masters [data-role="${first}"] [data-action="crash"]`);
  const standby = first === 'm1' ? 'm2' : 'm1';
  await page.waitForFunction(
    (name) => document.querySelector<HTMLElement>('#leader-name')?.dataset['leader'] === name,
    standby,
    { timeout: 90_000 },
  );
  const second = await leaderOf(page);
  assert.equal(second, standby, `the standby leads after the crash (was ${first})`);
  await page.locator(`#masters [data-role="${second}"][data-tone="leader"]`).waitFor();
  // The crashed master shows as down, waiting for its restart.
  await page.locator(`#masters [data-role="${first}"][data-tone="down"]`).waitFor();
  // The new leader hands out tasks (its own counter, shown on its card).
  await page.waitForFunction(
    (name) =>
      Number(
        document.querySelector<HTMLElement>(`#masters [data-role="${name}"]`)?.dataset['assigned'] ?? 0,
      ) > 0,
    standby,
    { timeout: 90_000 },
  );

  // More history after the failover, then the screenshot (with the failure list filled in).
  await page.locator('#failures tr').first().waitFor({ timeout: 90_000 });
  await sleep(SCREENSHOT ? 10_000 : 1000);
  mkdirSync('test-output', { recursive: true });
  await page.screenshot({ path: 'test-output/dashboard.png', fullPage: true });
  if (SCREENSHOT) {
    mkdirSync('docs/images', { recursive: true });
    copyFileSync('test-output/dashboard.png', 'docs/images/dashboard.png');
  }

  // A read-only dashboard of the same farm: ZooKeeper alone, controls off, and the page says so.
  const ro = await startDashboard({ http: '127.0.0.1:0', connect: root, logger });
  cleanups.push(() => ro.close());
  const page2 = await context.newPage();
  const errors2 = watchErrors(page2);
  page2.setDefaultTimeout(60_000);
  await page2.goto(ro.url);
  await page2.locator('#workers [data-role="w1"]').waitFor();
  await page2.waitForFunction(() => document.querySelector<HTMLElement>('#leader-name')?.dataset['leader']);
  assert.equal(await leaderOf(page2), second);
  assert.equal(await page2.locator('#readonly-banner').isVisible(), true);
  assert.equal(await page2.locator('#controls-pill').textContent(), 'read-only: controls off');
  assert.equal(await page2.locator('#submit-button').isDisabled(), true);
  assert.equal(await page2.locator('#workers [data-role="w1"] .badge.local').textContent(), 'remote');
  await page2.close();

  await load.stop();
  assert.deepEqual([...errors, ...errors2], [], 'no errors in the page');
  passed = true;
});
