/**
 * The dashboard closed by default (src/web/access.ts), with real HTTP requests against a real host and
 * ZooKeeper: controls need the token on every bind (header or the cookie a `?token=` URL sets), the
 * Host check refuses names that are not the dashboard's (DNS rebinding) whatever the bind address,
 * results of a farm with ACLs need the token, and the page adds at most `maxAddedWorkers` workers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Submitter } from '../src/farm/submitter.js';
import { createLogger, Host } from '../src/host/index.js';
import { hostAllowed } from '../src/web/access.js';
import { type Dashboard, startDashboard } from '../src/web/index.js';
import { sourceThreads } from './helpers/faults.js';
import { useZooKeeper } from './helpers/zk.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
const zk = useZooKeeper();
const workdir = mkdtempSync(join(tmpdir(), 'zkfarm-dash-access-'));
cleanups.push(() => rmSync(workdir, { recursive: true, force: true }));
const logger = createLogger({ level: 'fatal', pretty: false, destination: process.stderr });
const AUTH = 'farm:s3cret';

async function startHost(root: string, auth?: string): Promise<Host> {
  const host = await Host.start(
    {
      connect: root,
      workdir,
      sessionTimeout: 6000,
      ...(auth ? { auth } : {}),
      roles: [
        { kind: 'master', name: 'm1' },
        { kind: 'worker', name: 'w1', capacity: 2 },
      ],
    },
    { logger, spawn: sourceThreads },
  );
  cleanups.push(() => host.stop({ drain: false }));
  return host;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { error?: { code?: string }; [k: string]: unknown };
}

/** One HTTP request with exactly these headers (Host included), to the dashboard's loopback port. */
function http(
  d: Dashboard,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port: d.address.port,
        method,
        path,
        headers: {
          host: `127.0.0.1:${d.address.port}`,
          ...(data ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Answer['body'] = {};
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON (a redirect, the page)
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

test('controls need the token: none or a wrong one is 401, the header or the cookie of a ?token= URL work', async () => {
  const host = await startHost(await zk.chroot('token'));
  const dash = await startDashboard({ http: '127.0.0.1:0', host, controls: true, logger });
  cleanups.push(() => dash.close());
  assert.ok(dash.token.length >= 16 && dash.loginUrl.endsWith(`?token=${dash.token}`));

  const none = await http(dash, 'POST', '/api/roles/w1/pause', {}, {});
  assert.equal(none.status, 401, 'a control without the token is refused on a loopback bind too');
  assert.equal(none.body.error?.code, 'ZKFARM_TOKEN_REQUIRED');
  const wrong = await http(
    dash,
    'POST',
    '/api/roles/w1/pause',
    { authorization: 'Bearer not-the-token-at-all' },
    {},
  );
  assert.equal(wrong.status, 401);
  assert.equal((await host.info('w1')).paused, false, 'nothing happened');

  const bearer = await http(
    dash,
    'POST',
    '/api/roles/w1/pause',
    { authorization: `Bearer ${dash.token}` },
    {},
  );
  assert.equal(bearer.status, 200);
  assert.equal((await host.info('w1')).paused, true);

  // The browser's way: the URL printed at start sets an HttpOnly, SameSite=Strict cookie and drops the token.
  const login = await http(dash, 'GET', `/?token=${dash.token}`);
  assert.equal(login.status, 303);
  assert.equal(login.headers.location, '/');
  const cookie = String(login.headers['set-cookie']);
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  const viaCookie = await http(dash, 'POST', '/api/roles/w1/resume', { cookie: cookie.split(';')[0]! }, {});
  assert.equal(viaCookie.status, 200);
  assert.equal((await http(dash, 'GET', '/?token=guess-guess-guess-guess')).status, 401);
});

test('the token can come from the environment; a short one is refused', async () => {
  const root = await zk.chroot('token-env');
  const before = process.env['ZKFARM_DASHBOARD_TOKEN'];
  process.env['ZKFARM_DASHBOARD_TOKEN'] = 'from-the-environment-0123';
  try {
    const dash = await startDashboard({ http: '127.0.0.1:0', connect: root, controls: true, logger });
    cleanups.push(() => dash.close());
    assert.equal(dash.token, 'from-the-environment-0123');
  } finally {
    if (before === undefined) delete process.env['ZKFARM_DASHBOARD_TOKEN'];
    else process.env['ZKFARM_DASHBOARD_TOKEN'] = before;
  }
  await assert.rejects(
    startDashboard({ http: '127.0.0.1:0', connect: root, token: 'short', logger }),
    /at least 16/,
  );
});

test('a Host that is not the dashboard (DNS rebinding) is refused, whatever the bind address', async () => {
  const dash = await startDashboard({
    http: '127.0.0.1:0',
    connect: await zk.chroot('host'),
    logger,
    allowedHosts: ['farm.example'],
  });
  cleanups.push(() => dash.close());
  const rebound = await http(dash, 'GET', '/api/state', { host: `evil.example:${dash.address.port}` });
  assert.equal(rebound.status, 403);
  assert.equal(rebound.body.error?.code, 'ZKFARM_FORBIDDEN_HOST');
  assert.equal(
    (await http(dash, 'GET', '/api/state', { host: `farm.example:${dash.address.port}` })).status,
    200,
  );
  // The decision for binds this test may not make (tests listen on loopback only): every address.
  const machine = () => ['farmhost', '192.0.2.10'];
  for (const listen of ['0.0.0.0', '::']) {
    assert.equal(hostAllowed('evil.example', listen, [], machine), false, `rebinding on ${listen}`);
    assert.equal(hostAllowed('192.0.2.10', listen, [], machine), true);
    assert.equal(hostAllowed('farmhost', listen, [], machine), true);
    assert.equal(hostAllowed('localhost', listen, [], machine), true);
  }
  assert.equal(hostAllowed('evil.example', '192.0.2.10', [], machine), false);
  assert.equal(hostAllowed('192.0.2.10', '192.0.2.10', [], machine), true);
});

test("a farm with ACLs: its results need the token; the page's files, /metrics and /healthz do not", async () => {
  const root = `${await zk.chroot('acl-results')}/farm`;
  const host = await startHost(root, AUTH);
  const dash = await startDashboard({ http: '127.0.0.1:0', host, logger });
  cleanups.push(() => dash.close());
  const sub = await Submitter.open({ connect: root, auth: AUTH });
  cleanups.push(() => sub.close());
  const id = await sub.submit({ handler: 'echo', input: 'secret result' });
  await sub.waitFor(id, { timeoutMs: 30_000 });
  for (const path of [`/api/task/${id}`, '/api/state', '/api/history', '/events']) {
    const r = await http(dash, 'GET', path);
    assert.equal(r.status, 401, `${path} without the token`);
    assert.equal(r.body.error?.code, 'ZKFARM_TOKEN_REQUIRED');
  }
  const withToken = await http(dash, 'GET', `/api/task/${id}`, { authorization: `Bearer ${dash.token}` });
  assert.equal(withToken.status, 200);
  assert.equal((withToken.body['status'] as { result?: unknown }).result, 'secret result');
  for (const path of ['/', '/app.js', '/metrics', '/healthz'])
    assert.equal((await http(dash, 'GET', path)).status, 200, path);
});

test('the page adds at most maxAddedWorkers workers (429 beyond); a drained one frees its place', async () => {
  const host = await startHost(await zk.chroot('limit'));
  const dash = await startDashboard({
    http: '127.0.0.1:0',
    host,
    controls: true,
    logger,
    maxAddedWorkers: 1,
  });
  cleanups.push(() => dash.close());
  const auth = { authorization: `Bearer ${dash.token}` };
  const first = await http(dash, 'POST', '/api/roles', auth, { kind: 'worker' });
  assert.equal(first.status, 201);
  const second = await http(dash, 'POST', '/api/roles', auth, { kind: 'worker' });
  assert.equal(second.status, 429);
  assert.equal(second.body.error?.code, 'ZKFARM_LIMIT_REACHED');
  await host.removeRole(String(first.body['name']), { drain: false });
  assert.equal((await http(dash, 'POST', '/api/roles', auth, { kind: 'worker' })).status, 201);
});
