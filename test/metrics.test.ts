/**
 * The dashboard's server against real parts: a real ZooKeeper, a host with 1 master and 2 workers in
 * threads, tasks submitted through the public Submitter (some failing on purpose). /metrics is scraped and
 * its counters checked against the tasks run; /healthz follows the roles; the controls answer 403 when off,
 * act when on, and refuse requests from elsewhere; /api/task shows a task and never leaves the workdir.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Submitter } from '../src/farm/submitter.js';
import { createLogger, Host } from '../src/host/index.js';
import { type Dashboard, startDashboard } from '../src/web/index.js';
import { FaultInjector } from './helpers/faults.js';
import { useZooKeeper } from './helpers/zk.js';

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
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-metrics-test-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const logger = createLogger({ level: 'silent', pretty: false });

let root: string;
let host: Host;
/** Makes the roles' threads; crashes one for the health check, and backs the Crash control. */
const faults = new FaultInjector();
let dash: Dashboard;
let sub: Submitter;

/** One farm for the file, started by the first test (the ZooKeeper fixture starts in its own hook). */
let started: Promise<void> | undefined;
const setUp = () => (started ??= startFarm());

async function startFarm(): Promise<void> {
  root = await zk.chroot('metrics');
  host = await Host.start(
    {
      connect: root,
      workdir,
      sessionTimeout: 4000,
      roles: [
        { kind: 'master', name: 'm1' },
        { kind: 'worker', name: 'w1', capacity: 4 },
        { kind: 'worker', name: 'w2', capacity: 4 },
      ],
    },
    { logger, restartDelayMs: 1000, spawn: faults.spawn },
  );
  cleanups.push(() => host.stop({ drain: false }));
  dash = await startDashboard({ http: '127.0.0.1:0', host, controls: true, faults, logger });
  cleanups.push(() => dash.close());
  sub = await Submitter.open({ connect: root });
  cleanups.push(() => sub.close());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Samples of a Prometheus text exposition: name → [{labels, value}]. */
function parseMetrics(text: string): Map<string, Array<{ labels: Record<string, string>; value: number }>> {
  const out = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const list = out.get(m[1]!) ?? [];
    list.push({ labels, value: Number(m[3]) });
    out.set(m[1]!, list);
  }
  return out;
}

async function scrape(d: Dashboard = dash) {
  const res = await fetch(`${d.url}metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const samples = parseMetrics(await res.text());
  /** The value of one sample (labels must match exactly the given ones among its labels). */
  const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
    samples.get(name)?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  const sum = (name: string) => (samples.get(name) ?? []).reduce((n, s) => n + s.value, 0);
  return { samples, value, sum };
}

async function post(path: string, body: unknown, d: Dashboard = dash, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(path, d.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${d.token}`, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await res.json()) as {
      ok?: boolean;
      id?: string;
      name?: string;
      error?: { code: string; message: string };
    },
  };
}

test('/metrics counts the tasks run: from ZooKeeper alone and per role of the host', async () => {
  await setUp();
  await until('/healthz 200', async () => (await fetch(`${dash.url}healthz`)).status === 200);
  const ok = Array.from({ length: 24 }, (_, i) => ({ handler: 'echo', input: i }));
  const failing = Array.from({ length: 6 }, (_, i) => ({
    handler: 'fail',
    input: `planned failure ${i}`,
    maxAttempts: 2,
  }));
  const ids = await sub.submitMany([...ok, ...failing]);
  const results = await sub.waitForAll(ids, { timeoutMs: 120_000 });
  assert.equal(results.filter((r) => r.state === 'succeeded').length, 24);
  assert.equal(results.filter((r) => r.state === 'failed').length, 6);

  // The dashboard polls once a second: wait until it has seen every result.
  const m = await until('the dashboard to see 30 results', async () => {
    const s = await scrape();
    return s.value('zkfarm_tasks_completed_total') === 30 && s.value('zkfarm_tasks_submitted_total') === 30
      ? s
      : undefined;
  });
  // From ZooKeeper alone.
  assert.equal(m.value('zkfarm_tasks_succeeded_total'), 24);
  assert.equal(m.value('zkfarm_tasks_failed_total'), 6);
  assert.equal(m.value('zkfarm_tasks_retried_total'), 6, 'each failing task ran twice');
  assert.equal(m.value('zkfarm_tasks_assigned_total'), 24 + 6 * 2, 'one assignment per run');
  assert.equal(m.value('zkfarm_queue_depth'), 0);
  assert.equal(m.sum('zkfarm_tasks_in_flight'), 0);
  assert.equal(m.value('zkfarm_task_duration_seconds_count'), 30);
  assert.equal(m.value('zkfarm_task_submit_to_status_seconds_count'), 30);
  assert.ok((m.value('zkfarm_task_submit_to_status_seconds_sum') ?? -1) >= 0);
  assert.equal(m.value('zkfarm_dashboard_statuses_read_total'), 30);
  assert.equal(m.value('zkfarm_dashboard_statuses_unread_total'), 0);
  assert.equal(m.value('zkfarm_status_nodes'), 30);
  assert.equal(m.value('zkfarm_workers'), 2);
  assert.equal(m.value('zkfarm_masters'), 1);
  assert.equal(m.value('zkfarm_leader', { master: 'm1' }), 1);
  for (const w of ['w1', 'w2']) {
    assert.equal(m.value('zkfarm_role_up', { role: w, kind: 'worker' }), 1);
    assert.equal(m.value('zkfarm_worker_capacity', { worker: w }), 4);
    assert.equal(m.value('zkfarm_worker_paused', { worker: w }), 0);
  }
  // From the host's roles: exact per-role counters agree with ZooKeeper's totals.
  assert.equal(m.sum('zkfarm_worker_tasks_succeeded_total'), 24);
  assert.equal(m.sum('zkfarm_worker_tasks_failed_total'), 6);
  assert.equal(m.sum('zkfarm_worker_tasks_retried_total'), 6);
  assert.equal(m.value('zkfarm_master_tasks_assigned_total', { master: 'm1' }), 36);
  for (const [role, kind] of [
    ['m1', 'master'],
    ['w1', 'worker'],
    ['w2', 'worker'],
  ] as const) {
    assert.equal(
      m.value('zkfarm_role_session_state', { role, kind, state: 'connected' }),
      1,
      `${role} connected`,
    );
    assert.equal(m.value('zkfarm_role_session_state', { role, kind, state: 'lost' }), 0);
    assert.equal(m.value('zkfarm_role_running', { role, kind }), 1);
    assert.ok((m.value('zkfarm_role_zk_requests_total', { role, kind }) ?? 0) > 0, `${role} sent requests`);
  }
  assert.ok((m.value('zkfarm_dashboard_zk_requests_total') ?? 0) > 0);
  assert.equal(m.value('zkfarm_dashboard_zk_connected'), 1);

  // The page's snapshot says the same.
  const state = (await (await fetch(`${dash.url}api/state`)).json()) as {
    totals: Record<string, number>;
    failures: Array<{ id: string; error: string }>;
    leader: string;
  };
  assert.equal(state.totals['succeeded'], 24);
  assert.equal(state.totals['failed'], 6);
  assert.equal(state.leader, 'm1');
  assert.equal(state.failures.length, 6);
  assert.match(state.failures[0]!.error, /planned failure/);

  // A failed task's details: its status; a handler that wrote no files has no output directory (the
  // page lists files only for tasks that have one: see dashboard.test.ts).
  const failedId = ids[24]!;
  const details = (await (await fetch(`${dash.url}api/task/${failedId}`)).json()) as {
    where: string;
    status: { state: string; error: string };
    files?: unknown[];
    filesNote?: string;
  };
  assert.equal(details.where, 'finished');
  assert.equal(details.status.state, 'failed');
  assert.match(details.status.error, /planned failure 0/);
  assert.equal(details.files, undefined);
  assert.match(details.filesNote ?? '', /wrote no files/);

  // Ids are checked before anything is read.
  for (const bad of [
    'task-1',
    '..%2F..%2Fetc%2Fpasswd',
    'task-0000000001%2F..',
    '%2e%2e%2fm',
    'task-0000000001%00',
  ]) {
    const res = await fetch(`${dash.url}api/task/${bad}`);
    assert.equal(res.status, 400, `${bad} is refused`);
  }
  const unknown = (await (await fetch(`${dash.url}api/task/task-0000099999`)).json()) as { where: string };
  assert.equal(unknown.where, 'unknown');
});

test('controls: 403 with a clear error when off; act on the host when on; requests from elsewhere are refused', async () => {
  await setUp();
  const off = await startDashboard({ http: '127.0.0.1:0', host, logger });
  cleanups.push(() => off.close());
  for (const [path, body] of [
    ['/api/roles/w1/pause', {}],
    ['/api/roles/m1/crash', {}],
    ['/api/roles', { kind: 'worker' }],
    ['/api/tasks', { handler: 'echo' }],
  ] as const) {
    const r = await post(path, body, off);
    assert.equal(r.status, 403, `${path} is refused`);
    assert.equal(r.body.error?.code, 'ZKFARM_CONTROLS_DISABLED');
    assert.match(r.body.error?.message ?? '', /controls are off/);
  }
  assert.equal(
    ((await (await fetch(`${off.url}api/state`)).json()) as { controls: boolean }).controls,
    false,
  );
  assert.equal((await host.info('w1')).paused, false, 'nothing happened');

  // On: pause and resume act on the host's worker.
  assert.equal((await post('/api/roles/w1/pause', {})).status, 200);
  assert.equal((await host.info('w1')).paused, true);
  const state = await until('the snapshot to show w1 paused', async () => {
    const s = (await (await fetch(`${dash.url}api/state`)).json()) as {
      workers: Array<{ name: string; paused: boolean }>;
    };
    return s.workers.find((w) => w.name === 'w1')?.paused ? s : undefined;
  });
  assert.ok(state);
  assert.equal((await post('/api/roles/w1/resume', {})).status, 200);
  assert.equal((await host.info('w1')).paused, false);

  // Mistakes get a status and a message that says what to do.
  const master = await post('/api/roles/m1/pause', {});
  assert.equal(master.status, 400);
  assert.match(master.body.error?.message ?? '', /only workers pause/);
  const missing = await post('/api/roles/nobody/pause', {});
  assert.equal(missing.status, 404);
  assert.equal((await post('/api/roles/w1/explode', {})).status, 404);
  const shell = await post('/api/tasks', { cmd: 'id' });
  assert.equal(shell.status, 400);
  assert.match(shell.body.error?.message ?? '', /shell commands/);
  assert.equal((await post('/api/tasks', { handler: '' })).status, 400);
  assert.equal((await post('/api/tasks', '{not json')).status, 400);

  // A test task goes through /tasks like any other.
  const submitted = await post('/api/tasks', { handler: 'echo', input: 'test task' });
  assert.equal(submitted.status, 201);
  const result = await sub.waitFor(submitted.body.id!, { timeoutMs: 60_000 });
  assert.equal(result.state, 'succeeded');
  assert.equal(result.result, 'test task');

  // Add a worker, then drain it away.
  const added = await post('/api/roles', { kind: 'worker', capacity: 2 });
  assert.equal(added.status, 201);
  assert.equal(added.body.name, 'w3');
  assert.equal((await host.info('w3')).capacity, 2);
  assert.equal((await post('/api/roles', { kind: 'master' })).status, 400);
  assert.equal((await post('/api/roles/w3/drain', {})).status, 202);
  await until('w3 to be drained and removed', async () => !(await host.roles()).some((r) => r.name === 'w3'));

  // Cross-site requests: not JSON (a form could send that), a foreign Origin, a foreign Host name.
  const form = await fetch(`${dash.url}api/roles/w1/pause`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', authorization: `Bearer ${dash.token}` },
    body: '{}',
  });
  assert.equal(form.status, 415);
  const foreign = await post('/api/roles/w1/pause', {}, dash, { origin: 'http://evil.example' });
  assert.equal(foreign.status, 403);
  assert.equal(foreign.body.error?.code, 'ZKFARM_FORBIDDEN_ORIGIN');
  const rebound = await rawRequest(dash, '/api/state', { host: `evil.example:${dash.address.port}` });
  assert.equal(rebound.status, 403, 'a DNS-rebound name is refused on a loopback bind');
  assert.equal((await host.info('w1')).paused, false);

  // Controls on a non-loopback address: it says so in the log.
  const warnings: string[] = [];
  const capture = {
    debug() {},
    info() {},
    error() {},
    warn: (_o: object, msg?: string) => void warnings.push(msg ?? ''),
  };
  const exposed = await startDashboard({ http: '0.0.0.0:0', host, controls: true, logger: capture });
  cleanups.push(() => exposed.close());
  assert.ok(
    warnings.some((w) => /controls are on and it listens on 0\.0\.0\.0/.test(w)),
    `a warning, got ${JSON.stringify(warnings)}`,
  );

  // A read-only dashboard (no host) has no roles to act on, even with controls on.
  const ro = await startDashboard({ http: '127.0.0.1:0', connect: root, controls: true, logger });
  cleanups.push(() => ro.close());
  const noHost = await post('/api/roles/w1/pause', {}, ro);
  assert.equal(noHost.status, 409);
  assert.equal(noHost.body.error?.code, 'ZKFARM_NO_HOST');
});

test('/healthz is 503 with the reason while a role is down and 200 once it is back; read-only mode counts from ZooKeeper alone', async () => {
  await setUp();
  const ro = await startDashboard({ http: '127.0.0.1:0', connect: root, logger });
  cleanups.push(() => ro.close());
  // This one may read 2 statuses a tick: beyond that it samples and scales.
  const sampled = await startDashboard({
    http: '127.0.0.1:0',
    connect: root,
    logger,
    statusReadsPerSecond: 2,
  });
  cleanups.push(() => sampled.close());
  assert.equal((await fetch(`${ro.url}healthz`)).status, 200);
  const before = (await scrape(ro)).value('zkfarm_tasks_succeeded_total');
  assert.equal(before, 0, 'counters start when the dashboard starts');

  await faults.crash('w2');
  const down = await fetch(`${dash.url}healthz`);
  assert.equal(down.status, 503);
  const body = (await down.json()) as { status: string; reason: string };
  assert.equal(body.status, 'unavailable');
  assert.match(body.reason, /worker w2 is failed/);
  await until(
    '/healthz 200 after the restart',
    async () => (await fetch(`${dash.url}healthz`)).status === 200,
    90_000,
  );
  const m = await until('the restart to be counted', async () => {
    const s = await scrape();
    return s.value('zkfarm_role_restarts_total', { role: 'w2', kind: 'worker' }) === 1 ? s : undefined;
  });
  assert.equal(m.value('zkfarm_role_running', { role: 'w2', kind: 'worker' }), 1);

  // The read-only dashboard counts new results without any host.
  const ids = await sub.submitMany(Array.from({ length: 20 }, () => ({ handler: 'noop' })));
  await sub.waitForAll(ids, { timeoutMs: 60_000 });
  const r = await until('the read-only dashboard to count 20 results', async () => {
    const s = await scrape(ro);
    // submitted is derived and lags a tick (it ignores one-tick spikes): wait for both.
    return s.value('zkfarm_tasks_succeeded_total') === 20 && s.value('zkfarm_tasks_submitted_total') === 20
      ? s
      : undefined;
  });
  assert.equal(r.value('zkfarm_tasks_completed_total'), 20);
  assert.equal(r.samples.get('zkfarm_role_session_state'), undefined, 'no host: no per-role session metrics');
  assert.equal(r.value('zkfarm_role_up', { role: 'w2', kind: 'worker' }), 1);

  // Sampling: every result is counted, only some are read, and the split is scaled from those.
  const s = await until('the sampling dashboard to count 20 results', async () => {
    const x = await scrape(sampled);
    return x.value('zkfarm_tasks_completed_total') === 20 ? x : undefined;
  });
  const read = s.value('zkfarm_dashboard_statuses_read_total') ?? 0;
  assert.ok(read >= 1 && read < 20, `read ${read} of 20`);
  assert.equal(read + (s.value('zkfarm_dashboard_statuses_unread_total') ?? 0), 20);
  assert.ok(
    Math.abs((s.value('zkfarm_tasks_succeeded_total') ?? 0) - 20) < 1e-6,
    'all succeeded: the scaled count is exact',
  );
  assert.equal(s.value('zkfarm_task_duration_seconds_count'), read, 'histograms hold what was read');
});

function rawRequest(
  d: Dashboard,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: d.address.port, path, headers }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0 });
    });
    req.on('error', reject);
    req.end();
  });
}
