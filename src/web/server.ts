/**
 * The dashboard server: one node:http server for the page, its live feed, the metrics and the controls.
 *
 *   GET  /                  the page (web/index.html, app.js, app.css; uPlot under /vendor/)
 *   GET  /events            Server-Sent Events: `hello` (settings and chart history) once, then a
 *                           `snapshot` every second and on every change of masters or workers
 *   GET  /api/state         the current snapshot as JSON (what the page shows)
 *   GET  /api/task/<id>     a task's JSON, status and output files (task-details.ts)
 *   GET  /metrics           Prometheus text format (metrics.ts, services-view.ts)
 *   GET  /api/services      every service's state (services-view.ts)
 *   GET  /healthz           200 once every role of the host runs with a live session, else 503 + reason
 *   POST /api/...           controls (controls.ts): 403 unless `controls` is on
 *
 * Reads the farm through its own ZooKeeper session (FarmObserver); a host, when given, adds its own
 * roles' states and counters, and is what the controls act on. Without a host (`runtime dashboard`) it
 * shows any farm from ZooKeeper alone.
 *
 * Safety: binds loopback unless told otherwise (with a warning when controls are on elsewhere). On every
 * bind, requests must name this dashboard's own host (a DNS-rebinding page cannot reach it), controls
 * need the token, and so do results when the farm has ACLs (access.ts); POSTs must be JSON (a cross-site
 * form cannot send that without a preflight we never grant) and carry no foreign Origin.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import type { Host } from '../host/host.js';
import { connect, type Logger, type Session, type Supervisor, type ZkTlsOptions } from '../zk/index.js';
import { Access } from './access.js';
import { type Asset, loadAssets } from './assets.js';
import { type RoleFaults, runControl } from './controls.js';
import { FarmObserver, type ObserverTick } from './farm-observer.js';
import { HostView } from './host-view.js';
import {
  HttpError,
  isLoopback,
  parseListen,
  readJson,
  SECURITY_HEADERS,
  sendError,
  sendJson,
  WebErrorCodes,
} from './http.js';
import { FarmMetrics } from './metrics.js';
import { readServices, ServiceMetrics } from './services-view.js';
import { buildSnapshot, type Snapshot } from './snapshot.js';
import { taskDetails } from './task-details.js';

export interface DashboardOptions {
  /** Where to listen, `host:port`; port 0 picks a free port. @defaultValue '127.0.0.1:8080' */
  http?: string;
  /** ZooKeeper connect string (`host:port[,...][/chroot]`). @defaultValue the host's, when a host is given */
  connect?: string;
  /** The roles of this process: their states and counters, and what the controls act on. */
  host?: Host;
  /** Allow the POST controls (pause, resume, drain, add workers, submit test tasks). @defaultValue false */
  controls?: boolean;
  /**
   * Fault injection for the Crash control (with `controls`): zkfarm/testing's FaultInjector, the host's
   * `spawn`. Testing machinery, for failover practice: without it the page has no Crash buttons and
   * the endpoint answers 403. @defaultValue none
   */
  faults?: RoleFaults;
  /**
   * The token controls need (and, for a farm with ACLs, the feed and task details), at least 16
   * characters. @defaultValue $ZKFARM_DASHBOARD_TOKEN, else a random one: see `Dashboard.loginUrl`
   */
  token?: string;
  /** Host names besides this machine's own that the dashboard is served under (a proxy's, a DNS name). */
  allowedHosts?: string[];
  /** Most workers the page may add to the host (those still running count). @defaultValue 8 */
  maxAddedWorkers?: number;
  /** ZooKeeper digest identity `user:password` for an access-controlled farm. @defaultValue the host's */
  auth?: string;
  /** TLS to ZooKeeper. @defaultValue the host's, else plain TCP */
  tls?: ZkTlsOptions;
  /** Root of the workers' output on this machine, for a task's files. @defaultValue the host's workdir */
  workdir?: string;
  /** @defaultValue the host's logger, else silent */
  logger?: Logger;
  /** Poll interval of the farm's counts and results (ms). @defaultValue 1000 */
  pollMs?: number;
  /** Most /status reads per second; beyond, a sample is read and counts are scaled. @defaultValue 200 */
  statusReadsPerSecond?: number;
  /** Session timeout of the dashboard's own ZooKeeper session (ms). @defaultValue 10000 */
  sessionTimeout?: number;
  /** Most live-feed connections at once. @defaultValue 64 */
  maxClients?: number;
  /**
   * How long startDashboard waits for its first look at the farm (the baseline its counters count
   * from) before it resolves anyway (ZooKeeper unreachable: the page then says so). @defaultValue 5000
   */
  startWaitMs?: number;
}

export interface Dashboard {
  /** `http://host:port/` */
  readonly url: string;
  readonly address: { host: string; port: number };
  /** The token controls need (see DashboardOptions.token). */
  readonly token: string;
  /** `url` with `?token=…`: opening it in a browser lets the page use the controls. */
  readonly loginUrl: string;
  /** The Prometheus registry (to add your own metrics, or to read them in tests). */
  readonly metrics: FarmMetrics;
  /** The current snapshot (what /api/state serves). */
  snapshot(): Promise<Snapshot>;
  /** Stop serving, end the live feeds, close the ZooKeeper session. Safe to call twice. */
  close(): Promise<void>;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export async function startDashboard(options: DashboardOptions = {}): Promise<Dashboard> {
  const opts = checkOptions(options);
  const { host } = opts;
  const log: Logger = opts.logger ?? (host?.log as Logger | undefined) ?? silent;
  const listen = parseListen(opts.http ?? '127.0.0.1:8080');
  const connectString = opts.connect ?? host?.settings.connect;
  if (!connectString) {
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      'connect: give the ZooKeeper connect string (host:port[/chroot]) of the farm to show',
    );
  }
  const controls = opts.controls === true;
  const faults = opts.faults;
  const access = new Access({
    token: opts.token,
    allowedHosts: opts.allowedHosts,
    protectReads: Boolean(opts.auth ?? host?.settings.auth),
  });
  const added = new Set<string>();
  const workdir = opts.workdir ?? host?.settings.workdir;
  const assets = await loadAssets();

  const sup: Supervisor = connect({
    connect: connectString,
    auth: opts.auth ?? host?.settings.auth,
    tls: opts.tls ?? host?.settings.tls,
    sessionTimeout: opts.sessionTimeout ?? 10_000,
    logger: log,
  });
  const observer = new FarmObserver(sup, {
    pollMs: opts.pollMs,
    readsPerSecond: opts.statusReadsPerSecond,
    logger: log,
  });
  const hostView = host ? new HostView(host, opts.pollMs ?? 1000) : undefined;
  const metrics = new FarmMetrics();
  const serviceMetrics = new ServiceMetrics(metrics.registry);
  const clients = new Set<ServerResponse>();
  const maxClients = opts.maxClients ?? 64;
  let closed: Promise<void> | undefined;

  // The dashboard's own ZooKeeper requests, across its sessions.
  let requestsBefore = 0;
  let lastSession: Session | undefined;
  const dashboardRequests = () => {
    const s = sup.session;
    if (s && s !== lastSession) {
      requestsBefore += lastSession?.client.requests ?? 0;
      lastSession = s;
    }
    return requestsBefore + (lastSession?.client.requests ?? 0);
  };

  const snapshot = (point?: ObserverTick['point']): Snapshot =>
    buildSnapshot({
      observer,
      hostView,
      zkState: sup.state,
      connect: redact(connectString),
      controls,
      point,
    });

  const updateMetrics = (s: Snapshot) => {
    metrics.update(s, {
      totals: { ...observer.feed.totals, submitted: observer.view().submitted },
      dashboardRequests: dashboardRequests(),
    });
    if (hostView) metrics.updateMasterStats(hostView.stats);
  };

  const broadcast = (event: string, data: unknown) => {
    if (clients.size === 0) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of clients) {
      // A client that stopped reading is dropped rather than buffered without end.
      if (res.writableLength > 4 * 1024 * 1024) {
        res.destroy();
        clients.delete(res);
        continue;
      }
      res.write(frame);
    }
  };

  let changeTimer: NodeJS.Timeout | undefined;
  const onChange = () => {
    if (changeTimer || clients.size === 0) return;
    changeTimer = setTimeout(() => {
      changeTimer = undefined;
      broadcast('snapshot', snapshot());
    }, 150);
    changeTimer.unref?.();
  };
  observer.on('change', onChange);
  hostView?.on('change', onChange);
  observer.on('tick', (tick: ObserverTick) => {
    metrics.observeTick(tick);
    const s = snapshot(tick.point);
    updateMetrics(s);
    broadcast('snapshot', s);
  });
  sup.on('state', onChange);

  const health = async (): Promise<{ ok: boolean; body: Record<string, unknown> }> => {
    if (host) {
      const roles = await host.roles();
      const reason = hostView!.unhealthy(roles);
      const list = roles.map((r) => ({ name: r.name, kind: r.kind, state: r.state, session: r.session }));
      return reason
        ? { ok: false, body: { status: 'unavailable', reason, roles: list } }
        : { ok: true, body: { status: 'ok', roles: list } };
    }
    const live = sup.state === 'connected' || sup.state === 'reconnected';
    return live
      ? { ok: true, body: { status: 'ok', zk: sup.state } }
      : {
          ok: false,
          body: {
            status: 'unavailable',
            reason: `the dashboard has no ZooKeeper session (${sup.state}) to ${redact(connectString)}`,
            zk: sup.state,
          },
        };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    const path = url.pathname;
    access.checkHost(req);
    const method = req.method ?? 'GET';
    if (method === 'POST') {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`) {
        throw new HttpError(
          403,
          WebErrorCodes.FORBIDDEN_ORIGIN,
          `controls answer only to the dashboard's own page (Origin ${JSON.stringify(origin)} is not http://${req.headers.host})`,
        );
      }
      if (!path.startsWith('/api/'))
        throw new HttpError(405, WebErrorCodes.METHOD_NOT_ALLOWED, `${path} does not take POST`);
      access.require(req, 'a control');
      const body = await readJson(req);
      const ctx = {
        enabled: controls,
        host,
        faults,
        supervisor: sup,
        log,
        added,
        maxAddedWorkers: opts.maxAddedWorkers ?? 8,
      };
      const answer = await runControl(ctx, path, body);
      if (!answer)
        throw new HttpError(
          404,
          WebErrorCodes.NOT_FOUND,
          `no control at ${path}; see docs/dashboard.md for the endpoints`,
        );
      sendJson(res, answer.status, answer.body);
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      throw new HttpError(
        405,
        WebErrorCodes.METHOD_NOT_ALLOWED,
        `${method} is not supported; use GET, or POST for controls`,
      );
    }
    if (access.login(url, res)) return;
    if (access.guardsRead(path)) access.require(req, "this farm's results (it runs with ACLs)");
    const asset = assets.get(path);
    if (asset) return sendAsset(res, asset, method === 'HEAD');
    if (path === '/events') {
      if (method === 'HEAD') {
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
        });
        res.end();
        return;
      }
      return openFeed(req, res, access.presented(req));
    }
    if (path === '/healthz') {
      const h = await health();
      return sendJson(res, h.ok ? 200 : 503, h.body);
    }
    if (path === '/metrics') {
      await hostView?.refresh();
      updateMetrics(snapshot());
      const zk = sup.session?.client;
      if (zk) serviceMetrics.update(await readServices(zk).catch(() => []));
      const text = await metrics.metrics();
      res.writeHead(200, {
        'content-type': metrics.contentType,
        'cache-control': 'no-store',
        ...SECURITY_HEADERS,
      });
      res.end(method === 'HEAD' ? undefined : text);
      return;
    }
    if (path === '/api/state') {
      await hostView?.refresh();
      return sendJson(res, 200, snapshot());
    }
    if (path === '/api/history') return sendJson(res, 200, observer.history.points());
    if (path === '/api/services') {
      const zk = sup.session?.client;
      if (!zk)
        throw new HttpError(
          503,
          WebErrorCodes.NOT_CONNECTED,
          `the dashboard has no ZooKeeper session right now (${sup.state}); try again in a moment`,
        );
      return sendJson(res, 200, await readServices(zk));
    }
    const task = /^\/api\/task\/([^/]+)$/.exec(path);
    if (task) {
      const client = sup.session?.client;
      if (!client)
        throw new HttpError(
          503,
          WebErrorCodes.NOT_CONNECTED,
          `the dashboard has no ZooKeeper session right now (${sup.state}); try again in a moment`,
        );
      return sendJson(res, 200, await taskDetails(client, safeDecode(task[1]!), { workdir }));
    }
    throw new HttpError(
      404,
      WebErrorCodes.NOT_FOUND,
      `nothing at ${path}: the page is at /, the feed at /events, metrics at /metrics`,
    );
  };

  const openFeed = (req: IncomingMessage, res: ServerResponse, authorized: boolean) => {
    if (clients.size >= maxClients) {
      throw new HttpError(
        503,
        WebErrorCodes.BAD_REQUEST,
        `too many live dashboards open (${maxClients}); close one`,
      );
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    const hello = {
      controls,
      crash: controls && faults !== undefined,
      readOnly: !host,
      authorized,
      connect: redact(connectString),
      history: observer.history.points(),
    };
    res.write(`event: hello\ndata: ${JSON.stringify(hello)}\n\n`);
    res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot())}\n\n`);
    clients.add(res);
    req.socket.setNoDelay(true);
    const drop = () => clients.delete(res);
    req.on('close', drop);
    res.on('error', drop);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!(err instanceof HttpError))
        log.warn({ err, url: req.url }, `dashboard: ${req.method} ${req.url} failed: ${describeError(err)}`);
      sendError(res, err);
    });
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? `${opts.http ?? '127.0.0.1:8080'} is in use: pick another port (port 0 picks a free one)`
          : err.code === 'EADDRNOTAVAIL'
            ? `${listen.host} is not an address of this machine`
            : err.code === 'EACCES'
              ? `not allowed to listen on port ${listen.port} (ports below 1024 need privileges)`
              : describeError(err);
      reject(
        new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, `the dashboard cannot listen: ${why}`, { cause: err }),
      );
    };
    server.once('error', onError);
    server.listen(listen.port, listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  }).catch(async (err) => {
    await sup.stop();
    throw err;
  });
  server.on('error', (err) => log.error({ err }, `dashboard server error: ${describeError(err)}`));

  observer.start();
  hostView?.start();
  // Counters count from the first look at the farm: take it before answering, unless ZooKeeper is slow.
  await Promise.race([observer.ready, new Promise((r) => setTimeout(r, opts.startWaitMs ?? 5000).unref?.())]);
  const port = (server.address() as AddressInfo).port;
  access.listening(listen.host, port);
  const urlHost = listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host === '::' ? '::1' : listen.host;
  const url = `http://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${port}/`;
  if (controls && !isLoopback(listen.host)) {
    log.warn(
      { http: `${listen.host}:${port}` },
      `dashboard controls are on and it listens on ${listen.host}, not loopback: anyone who can reach port ${port} can pause${faults ? ', crash' : ''} and add roles and submit tasks`,
    );
  }
  const loginUrl = `${url}?token=${access.token}`;
  log.info(
    { url, controls, readOnly: !host },
    `dashboard at ${url}${controls ? ' (controls on)' : ''}${access.generated ? '; its token is in the URL printed at start' : ''}`,
  );
  const connectWarn = setTimeout(() => {
    if (sup.state === 'connecting')
      log.warn(
        { connect: redact(connectString) },
        `dashboard: still no ZooKeeper session to ${redact(connectString)}; is the server up?`,
      );
  }, 10_000);
  connectWarn.unref?.();

  return {
    url,
    address: { host: listen.host, port },
    token: access.token,
    loginUrl,
    metrics,
    async snapshot() {
      await hostView?.refresh();
      return snapshot();
    },
    close() {
      closed ??= (async () => {
        clearTimeout(changeTimer);
        clearTimeout(connectWarn);
        observer.stop();
        hostView?.stop();
        for (const res of clients) res.end();
        clients.clear();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await sup.stop();
      })();
      return closed;
    },
  };
}

function sendAsset(res: ServerResponse, asset: Asset, head: boolean): void {
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': asset.type,
    'content-length': asset.body.length,
    'cache-control': 'no-cache',
  });
  res.end(head ? undefined : asset.body);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A connect string carries no secrets, but keep only hosts and chroot in what we show. */
function redact(connect: string): string {
  return connect.replace(/[^\w.:,/[\]-]/g, '');
}

function checkOptions(o: DashboardOptions): DashboardOptions {
  if (typeof o !== 'object' || o === null)
    throw new ZkfarmError(ErrorCodes.INVALID_ARGUMENT, 'startDashboard: expected an options object');
  const bad = (name: string, expected: string, got: unknown) =>
    new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      `dashboard option ${name}: expected ${expected}, got ${JSON.stringify(got)}`,
    );
  if (o.maxAddedWorkers !== undefined && !(Number.isInteger(o.maxAddedWorkers) && o.maxAddedWorkers >= 0))
    throw bad('maxAddedWorkers', 'a whole number ≥ 0', o.maxAddedWorkers);
  if (
    o.allowedHosts !== undefined &&
    !(Array.isArray(o.allowedHosts) && o.allowedHosts.every((h) => typeof h === 'string' && h !== ''))
  )
    throw bad('allowedHosts', 'an array of host names', o.allowedHosts);
  if (o.controls !== undefined && typeof o.controls !== 'boolean')
    throw bad('controls', 'true or false', o.controls);
  if (o.faults !== undefined && typeof o.faults?.crash !== 'function')
    throw bad('faults', "zkfarm/testing's FaultInjector (something with crash(name))", typeof o.faults);
  if (o.connect !== undefined && (typeof o.connect !== 'string' || o.connect.trim() === ''))
    throw bad('connect', 'a connect string like 127.0.0.1:2181[/chroot]', o.connect);
  for (const key of [
    'pollMs',
    'statusReadsPerSecond',
    'sessionTimeout',
    'maxClients',
    'startWaitMs',
  ] as const) {
    const v = o[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0))
      throw bad(key, 'a positive number', v);
  }
  if (o.pollMs !== undefined && o.pollMs < 100) throw bad('pollMs', 'at least 100 (ms)', o.pollMs);
  return o;
}
