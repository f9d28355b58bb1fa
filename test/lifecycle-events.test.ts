/**
 * Task events (src/farm/task-events.ts, event-stream.ts) on a real farm: a stream sees every transition
 * of 1,000 tasks in order per task (queued, started, progress between started and the result, the
 * result), a failing-then-retried task's retry, and only what its queue or task filter names; a slow
 * consumer overflows with a stable code; `runtime watch --json` prints the same as NDJSON.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Handler } from '../src/exec/index.js';
import { type EventStream, type TaskEvent, watchEvents } from '../src/farm/index.js';
import { startDashboard } from '../src/web/index.js';
import { openBrowser, watchErrors } from './helpers/browser.js';
import { useCleanups } from './helpers/cleanups.js';
import { Cli } from './helpers/cli.js';
import { useFarm } from './helpers/farm.js';
import { until } from './helpers/wait.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups = useCleanups();
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-events-test-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const farm = useFarm(cleanups, { workdir });

const failedOnce = new Set<string>();
let openGate!: () => void;
const gate = new Promise<void>((r) => {
  openGate = r;
});
let release!: () => void;
const hold = new Promise<void>((r) => {
  release = r;
});
/** Parked tasks, by input: the test lets each go. */
const parked = new Map<string, () => void>();
const handlers: Record<string, Handler> = {
  /** Reports progress, then holds a moment so the report is written before the result. */
  report: async (input, ctx) => {
    ctx.progress(50, `half of ${String(input)}`);
    await sleep(150);
    return input;
  },
  /** Waits for the test, then reports progress. */
  gated: async (_input, ctx) => {
    await gate;
    ctx.progress(1, 'released');
    await sleep(150);
    return 'done';
  },
  /** Waits for the test's second gate. */
  held: async () => {
    await hold;
    return 'held';
  },
  /** Waits until the test lets it go. */
  parked: async (input) => {
    await new Promise<void>((r) => parked.set(String(input), r));
    return 'let go';
  },
  /** Fails its first run, succeeds the second. */
  flaky: async (input) => {
    const key = String(input);
    if (!failedOnce.has(key)) {
      failedOnce.add(key);
      throw new Error(`first run of ${key} fails`);
    }
    return key;
  },
};

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Read events until every id in `ids` has its result (bounded by `timeoutMs`); events by task id. */
async function collect(stream: EventStream, ids: readonly string[], timeoutMs: number) {
  const byTask = new Map<string, TaskEvent[]>();
  const open = new Set(ids);
  const timer = setTimeout(() => void stream.close(), timeoutMs);
  try {
    for await (const ev of stream) {
      const list = byTask.get(ev.id) ?? [];
      list.push(ev);
      byTask.set(ev.id, list);
      if (FINAL.has(ev.type)) open.delete(ev.id);
      if (open.size === 0) break;
    }
  } finally {
    clearTimeout(timer);
  }
  assert.equal(open.size, 0, `results seen for every task; missing e.g. ${[...open].slice(0, 3).join(', ')}`);
  return byTask;
}

const types = (evs: readonly TaskEvent[] | undefined) => (evs ?? []).map((e) => e.type).join(' ');

test('a stream sees every transition of 1,000 tasks in order per task, a retry, and only what its filters name', async () => {
  const root = await zk.chroot('events');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlers, queues: ['default', 'q2'], capacity: 8 });
  await farm.worker(root, 'w2', { handlers, queues: ['default', 'q2'], capacity: 8 });
  const sub = await farm.submitter(root);

  const all = sub.events();
  const q2 = sub.events({ queue: 'q2' });
  await Promise.all([all.ready, q2.ready]);

  const gated = await sub.submit({ handler: 'gated' });
  const one = sub.events({ task: gated });
  await one.ready;
  const plain = await sub.submitMany(Array.from({ length: 959 }, (_, i) => ({ handler: 'noop', input: i })));
  const reporting = await sub.submitMany(
    Array.from({ length: 20 }, (_, i) => ({ handler: 'report', input: i })),
  );
  const inQ2 = await sub.submitMany(
    Array.from({ length: 19 }, (_, i) => ({ handler: 'noop', input: i, queue: 'q2' })),
  );
  const retried = await sub.submit({
    handler: 'flaky',
    input: 'x',
    maxAttempts: 2,
    retry: { delayMs: 50, backoff: 'fixed' },
  });
  openGate();
  const ids = [...plain, ...reporting, ...inQ2, retried, gated];
  assert.equal(ids.length, 1000);

  const [seen, seenQ2] = await Promise.all([collect(all, ids, 60_000), collect(q2, inQ2, 60_000)]);

  for (const id of [...plain, ...inQ2]) assert.equal(types(seen.get(id)), 'queued started succeeded', id);
  for (const id of reporting) assert.equal(types(seen.get(id)), 'queued started progress succeeded', id);
  assert.equal(types(seen.get(retried)), 'queued started retrying started succeeded');
  assert.equal(types(seen.get(gated)), 'queued started progress succeeded');

  const evs = seen.get(retried)!;
  assert.match(evs[2]!.error ?? '', /first run of x fails/, 'the retry says why the run failed');
  assert.deepEqual(
    evs.map((e) => e.attempt),
    [1, 1, 2, 2, 2],
    'the run each event concerns',
  );
  for (const list of seen.values()) {
    for (const ev of list) {
      assert.equal(ev.seen, true, 'reported as it happened');
      if (ev.type === 'started') assert.match(ev.worker ?? '', /^w[12]$/);
      assert.equal(ev.queue, inQ2.includes(ev.id) ? 'q2' : 'default');
    }
  }
  const progress = seen.get(reporting[3]!)!.find((e) => e.type === 'progress')!;
  assert.equal(progress.value, 50);
  assert.equal(progress.message, 'half of 3');

  assert.deepEqual([...seenQ2.keys()].sort(), [...inQ2].sort(), 'the queue filter sees its queue only');
  for (const id of inQ2) assert.equal(types(seenQ2.get(id)), 'queued started succeeded', id);

  // The task filter began after its task was queued: it sees what came after, and no other task.
  const only = await collect(one, [gated], 30_000);
  assert.deepEqual([...only.keys()], [gated]);
  assert.match(types(only.get(gated)), /^(started )?progress succeeded$/);
});

test('a consumer that falls behind its buffer gets ZKFARM_EVENTS_OVERFLOW after the events it had', async () => {
  const root = await zk.chroot('events-overflow');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlers });
  const sub = await farm.submitter(root);
  const stream = sub.events({ bufferSize: 20 });
  await stream.ready;
  // 15 events wait in the buffer, unread; then a burst of 90 more cannot fit.
  const first = await sub.submitMany(Array.from({ length: 5 }, (_, i) => ({ handler: 'noop', input: i })));
  await sub.waitForAll(first, { timeoutMs: 20_000 });
  await sleep(1000);
  await sub.submitMany(Array.from({ length: 30 }, (_, i) => ({ handler: 'noop', input: i })));
  await sleep(1000);
  const got: TaskEvent[] = [];
  await assert.rejects(
    (async () => {
      for await (const ev of stream) got.push(ev);
    })(),
    (err: Error & { code?: string }) =>
      err.code === 'ZKFARM_EVENTS_OVERFLOW' && /fell more than 20 events behind/.test(err.message),
  );

  assert.ok(got.length >= 15 && got.length <= 20, `the buffered events first (${got.length})`);
  assert.deepEqual(new Set(got.slice(0, 15).map((e) => e.id)), new Set(first), 'the first five tasks');
});

test('runtime watch --json prints one event a line for a queue and stops after --count or --until-done; the line form stops on Ctrl-C', async () => {
  const root = await zk.chroot('events-cli');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlers, queues: ['default', 'mail'] });
  const sub = await farm.submitter(root);
  const env = { ...process.env };
  delete env['ZKFARM_ZK'];
  const watch = new Cli(['watch', '--zk', root, '--queue', 'mail', '--json', '--count', '15'], { env });
  await watch.waitForErr(/watching/, 30_000);
  await sub.submitMany(Array.from({ length: 5 }, (_, i) => ({ handler: 'noop', input: i })));
  const mail = await sub.submitMany(
    Array.from({ length: 5 }, (_, i) => ({ handler: 'noop', input: i, queue: 'mail' })),
  );
  const r = await watch.exit(30_000);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as TaskEvent);
  assert.equal(lines.length, 15);
  for (const id of mail) {
    assert.equal(types(lines.filter((e) => e.id === id)), 'queued started succeeded', id);
  }
  assert.ok(
    lines.every((e) => e.queue === 'mail'),
    'only the queue asked for',
  );

  // Until the named tasks are done.
  const waiting = await sub.submit({ handler: 'parked', input: 'cli' });
  const untilDone = new Cli(['watch', '--zk', root, '--task', waiting, '--until-done', '--json'], { env });
  await untilDone.waitForErr(/watching/, 30_000);
  await until(() => parked.has('cli'), 20_000, 'the parked task running');
  parked.get('cli')!();
  const u = await untilDone.exit(30_000);
  assert.equal(u.code, 0, u.stderr);
  const uLines = u.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as TaskEvent);
  assert.deepEqual(new Set(uLines.map((e) => e.id)), new Set([waiting]));
  assert.match(types(uLines), /^(queued )?(started )?succeeded$/, 'its result, and then it stopped');

  // The human form, until Ctrl-C.
  const human = new Cli(['watch', '--zk', root], { env });
  await human.waitForErr(/watching/, 30_000);
  const id = await sub.submit({ handler: 'noop' });
  await human.waitForOut(new RegExp(`${id} {2}succeeded`), 30_000);
  human.proc.kill('SIGINT');
  const h = await human.exit(30_000);
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, new RegExp(`^\\S+Z {2}${id} {2}queued {5}attempt 1$`, 'm'));
  assert.match(h.stdout, new RegExp(`^\\S+Z {2}${id} {2}started {4}on w1 {2}attempt 1$`, 'm'));
});

test('after a reconnection and after a lost session, the stream infers what it missed, in order, with seen: false', async () => {
  const root = await zk.chroot('events-catchup');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlers });
  const sub = await farm.submitter(root);
  const link = await farm.proxied(root);
  const stream = watchEvents({ connect: link.connect, sessionTimeout: 4000 });
  cleanups.push(() => stream.close());
  await stream.ready;
  const got: TaskEvent[] = [];
  const reading = (async () => {
    for await (const ev of stream) got.push(ev);
  })();
  const eventsOf = (id: string) => got.filter((e) => e.id === id);
  const a = await sub.submit({ handler: 'held' });
  await until(() => types(eventsOf(a)) === 'queued started', 20_000, 'a running');

  // Cut for less than the session timeout: the same session resumes; what happened meanwhile is inferred.
  link.proxy.cut();
  release();
  const [b, c] = await sub.submitMany([{ handler: 'noop' }, { handler: 'noop' }]);
  await sub.waitForAll([a, b!, c!], { timeoutMs: 20_000 });
  link.proxy.restore();
  await until(
    () => [a, b!, c!].every((id) => eventsOf(id).some((e) => FINAL.has(e.type))),
    30_000,
    'results',
  );
  assert.deepEqual(
    eventsOf(a).map((e) => [e.type, e.seen]),
    [
      ['queued', true],
      ['started', true],
      ['succeeded', false],
    ],
  );
  for (const id of [b!, c!]) {
    assert.deepEqual(
      eventsOf(id).map((e) => [e.type, e.seen, e.worker]),
      [
        ['queued', false, undefined],
        ['started', false, 'w1'],
        ['succeeded', false, 'w1'],
      ],
      id,
    );
  }

  // Cut for longer than the session timeout: the session is lost; a new one watches again and catches up.
  link.proxy.cut();
  const d = await sub.submit({ handler: 'noop' });
  await sub.waitFor(d, { timeoutMs: 20_000 });
  await sleep(7000);
  link.proxy.restore();
  await until(() => eventsOf(d).some((e) => FINAL.has(e.type)), 30_000, 'the result after a new session');
  assert.equal(types(eventsOf(d)), 'queued started succeeded');
  assert.ok(eventsOf(d).every((e) => !e.seen));

  // And it goes on reporting as things happen.
  const e = await sub.submit({ handler: 'noop' });
  await until(() => eventsOf(e).some((x) => FINAL.has(x.type)), 20_000, 'a live result');
  assert.deepEqual(
    eventsOf(e).map((x) => [x.type, x.seen]),
    [
      ['queued', true],
      ['started', true],
      ['succeeded', true],
    ],
  );
  await stream.close();
  await reading;
});

test('the dashboard keeps the recent task events (GET /api/events) and sends new ones on its live feed', async () => {
  const root = await zk.chroot('events-dashboard');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlers });
  const dash = await startDashboard({ http: '127.0.0.1:0', connect: root });
  cleanups.push(() => dash.close());
  const feed = new AbortController();
  cleanups.push(() => feed.abort());
  const res = await fetch(new URL('/events', dash.url), { signal: feed.signal });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  let text = '';
  const sub = await farm.submitter(root);
  const id = await sub.submit({ handler: 'report', input: 'page' });
  await sub.waitFor(id, { timeoutMs: 20_000 });

  // The live feed: `task-events` frames with the task's events, in order.
  const fromFeed: TaskEvent[] = [];
  await until(
    async () => {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
      fromFeed.length = 0;
      for (const m of text.matchAll(/event: task-events\ndata: (.*)\n/g))
        fromFeed.push(...(JSON.parse(m[1]!) as { events: TaskEvent[] }).events.filter((e) => e.id === id));
      return fromFeed.some((e) => e.type === 'succeeded');
    },
    20_000,
    'the task events on the live feed',
  );
  assert.equal(types(fromFeed), 'queued started progress succeeded');

  const recent = (await (await fetch(new URL('/api/events', dash.url))).json()) as TaskEvent[];
  assert.equal(types(recent.filter((e) => e.id === id)), 'queued started progress succeeded');
  assert.equal(recent.find((e) => e.type === 'progress')?.message, 'half of page');
  feed.abort();

  // The page's panel shows them (a real browser: Debian's Chromium, headless).
  const browser = await openBrowser(cleanups);
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(dash.url);
  await page.locator(`#events tr[data-task="${id}"][data-type="succeeded"]`).waitFor({ timeout: 30_000 });
  const later = await sub.submit({ handler: 'noop' });
  await page.locator(`#events tr[data-task="${later}"][data-type="succeeded"]`).waitFor({ timeout: 30_000 });
  assert.deepEqual(
    await page
      .locator(`#events tr[data-task="${later}"]`)
      .evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset['type'])),
    ['succeeded', 'started', 'queued'],
    'newest first, live from the feed',
  );
  assert.deepEqual(errors, []);

  const off = await startDashboard({ http: '127.0.0.1:0', connect: root, taskEvents: false });
  cleanups.push(() => off.close());
  const none = await fetch(new URL('/api/events', off.url));
  assert.equal(none.status, 404, 'no stream, no events: said so');
  assert.match(await none.text(), /task events are off/);
});

test('on a slow link, tasks gone before their nodes are read still make their events, with their queue', async () => {
  const root = await zk.chroot('events-slow');
  await farm.master(root, 'm1');
  await farm.worker(root, 'w1', { handlers, queues: ['default', 'q2'], capacity: 8 });
  const sub = await farm.submitter(root);
  const link = await farm.proxied(root);
  // Every read leaves 2 × 60 ms after the change it follows: the leader has moved the task by then.
  const stream = watchEvents({ connect: link.connect, sessionTimeout: 10_000 }, { queue: 'q2' });
  cleanups.push(() => stream.close());
  // And one of every queue: a task read gone gets its queue from its next node there too.
  const all = watchEvents({ connect: link.connect, sessionTimeout: 10_000 });
  cleanups.push(() => all.close());
  await Promise.all([stream.ready, all.ready]);
  link.proxy.setDelay(60);
  const other = await sub.submitMany(Array.from({ length: 10 }, (_, i) => ({ handler: 'noop', input: i })));
  const q2 = await sub.submitMany(
    Array.from({ length: 10 }, (_, i) => ({ handler: 'noop', input: i, queue: 'q2' })),
  );
  const [seen, every] = await Promise.all([
    collect(stream, q2, 30_000),
    collect(all, [...other, ...q2], 30_000),
  ]);
  assert.deepEqual([...seen.keys()].sort(), [...q2].sort(), `only q2 (not ${other[0]}...)`);
  for (const id of q2) {
    assert.equal(types(seen.get(id)), 'queued started succeeded', id);
    assert.ok(seen.get(id)!.every((e) => e.queue === 'q2'));
  }
  // Every event names its run and its queue, also a `started` whose assignment was gone when read.
  for (const id of [...other, ...q2]) {
    assert.equal(types(every.get(id)), 'queued started succeeded', id);
    const queue = q2.includes(id) ? 'q2' : 'default';
    assert.deepEqual(
      every.get(id)!.map((e) => [e.attempt, e.queue]),
      [
        [1, queue],
        [1, queue],
        [1, queue],
      ],
      `${id}: ${JSON.stringify(every.get(id))}`,
    );
  }
});
