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
 * shows any farm from ZooKeeper alone. The parts: the routes (routes.ts), the live feed (event-hub.ts),
 * health (health.ts), the options (dashboard-options.ts).
 *
 * Safety: binds loopback unless told otherwise (with a warning when controls are on elsewhere). On every
 * bind, requests must name this dashboard's own host (a DNS-rebinding page cannot reach it), controls
 * need the token, and so do results when the farm has ACLs (access.ts); POSTs must be JSON (a cross-site
 * form cannot send that without a preflight we never grant) and carry no foreign Origin.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeError, ErrorCodes, ZkfarmError } from '../errors.js';
import type { Logger } from '../zk/connect-options.js';
import type { Session } from '../zk/session.js';
import { connect, type Supervisor } from '../zk/supervisor.js';
import { Access } from './access.js';
import { loadAssets } from './assets.js';
import { checkDashboardOptions, type DashboardOptions } from './dashboard-options.js';
import { EventHub } from './event-hub.js';
import { FarmObserver, type ObserverTick } from './farm-observer.js';
import { HostView } from './host-view.js';
import { HttpError, isLoopback, parseListen, sendError } from './http.js';
import { FarmMetrics } from './metrics.js';
import { RecentEvents } from './recent-events.js';
import { type DashboardContext, handleRequest } from './routes.js';
import { buildSnapshot, type Snapshot } from './snapshot.js';

export type { DashboardOptions } from './dashboard-options.js';

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
const DEFAULT_HTTP = '127.0.0.1:8080';

export async function startDashboard(options: DashboardOptions = {}): Promise<Dashboard> {
  const opts = checkDashboardOptions(options);
  const log: Logger = opts.logger ?? (opts.host?.log as Logger | undefined) ?? silent;
  const listen = parseListen(opts.http ?? DEFAULT_HTTP);
  const connectString = opts.connect ?? opts.host?.settings.connect;
  if (!connectString) {
    throw new ZkfarmError(
      ErrorCodes.INVALID_ARGUMENT,
      'connect: give the ZooKeeper connect string (host:port[/chroot]) of the farm to show',
    );
  }
  const ctx = await dashboardContext(opts, log, connectString);
  const server = createServer((req, res) => {
    handleRequest(ctx, req, res).catch((err) => {
      if (!(err instanceof HttpError))
        log.warn({ err, url: req.url }, `dashboard: ${req.method} ${req.url} failed: ${describeError(err)}`);
      sendError(res, err);
    });
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await listenOn(server, listen, opts.http ?? DEFAULT_HTTP).catch(async (err) => {
    await ctx.supervisor.stop();
    throw err;
  });
  server.on('error', (err) => log.error({ err }, `dashboard server error: ${describeError(err)}`));
  ctx.observer.start();
  ctx.hostView?.start();
  ctx.events?.start();
  // Counters count from the first look at the farm: take it before answering, unless ZooKeeper is slow.
  await Promise.race([
    Promise.all([ctx.observer.ready, ctx.events?.ready]),
    new Promise((r) => setTimeout(r, opts.startWaitMs ?? 5000).unref?.()),
  ]);
  const port = (server.address() as AddressInfo).port;
  ctx.access.listening(listen.host, port);
  const url = announce(ctx, listen.host, port);
  return dashboard(ctx, server, { url, address: { host: listen.host, port } });
}

/** The dashboard's session, its view of the farm and the host, its metrics and its feed, wired together. */
async function dashboardContext(
  opts: DashboardOptions,
  log: Logger,
  connectString: string,
): Promise<DashboardContext> {
  const { host } = opts;
  // What can fail (a bad token, the page's files) comes before the session, which would be left open.
  const access = new Access({
    token: opts.token,
    allowedHosts: opts.allowedHosts,
    protectReads: Boolean(opts.auth ?? host?.settings.auth),
  });
  const assets = await loadAssets();
  const supervisor: Supervisor = connect({
    connect: connectString,
    auth: opts.auth ?? host?.settings.auth,
    tls: opts.tls ?? host?.settings.tls,
    sessionTimeout: opts.sessionTimeout ?? 10_000,
    logger: log,
  });
  const observer = new FarmObserver(supervisor, {
    pollMs: opts.pollMs,
    readsPerSecond: opts.statusReadsPerSecond,
    logger: log,
  });
  const hostView = host ? new HostView(host, opts.pollMs ?? 1000) : undefined;
  const metrics = new FarmMetrics();
  const controls = opts.controls === true;
  const shown = redact(connectString);
  const snapshot = (point?: ObserverTick['point']): Snapshot =>
    buildSnapshot({ observer, hostView, zkState: supervisor.state, connect: shown, controls, point });
  const dashboardRequests = requestCounter(supervisor);
  const hub = new EventHub(opts.maxClients ?? 64, () => snapshot());
  const ctx: DashboardContext = {
    access,
    assets,
    hub,
    events: opts.taskEvents === false ? undefined : new RecentEvents(supervisor.options, hub, log),
    observer,
    hostView,
    metrics,
    supervisor,
    host,
    faults: opts.faults,
    log,
    controls,
    added: new Set<string>(),
    maxAddedWorkers: opts.maxAddedWorkers ?? 8,
    workdir: opts.workdir ?? host?.settings.workdir,
    connect: shown,
    snapshot,
    updateMetrics(s: Snapshot) {
      metrics.update(s, {
        totals: { ...observer.feed.totals, submitted: observer.view().submitted },
        dashboardRequests: dashboardRequests(),
      });
      if (hostView) metrics.updateMasterStats(hostView.stats);
    },
  };
  wireFeed(ctx);
  return ctx;
}

/** Changes go to the live feed; every poll of the farm also updates the metrics. */
function wireFeed(ctx: DashboardContext): void {
  ctx.observer.on('change', ctx.hub.changed);
  ctx.hostView?.on('change', ctx.hub.changed);
  ctx.observer.on('tick', (tick: ObserverTick) => {
    ctx.metrics.observeTick(tick);
    const s = ctx.snapshot(tick.point);
    ctx.updateMetrics(s);
    ctx.hub.broadcast('snapshot', s);
  });
  ctx.supervisor.on('state', ctx.hub.changed);
}

/** The dashboard's own ZooKeeper requests, across its sessions. */
function requestCounter(sup: Supervisor): () => number {
  let requestsBefore = 0;
  let lastSession: Session | undefined;
  return () => {
    const s = sup.session;
    if (s && s !== lastSession) {
      requestsBefore += lastSession?.client.requests ?? 0;
      lastSession = s;
    }
    return requestsBefore + (lastSession?.client.requests ?? 0);
  };
}

/** Listen, or reject with ZKFARM_INVALID_ARGUMENT saying why the address cannot be used. */
function listenOn(server: Server, listen: { host: string; port: number }, given: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? `${given} is in use: pick another port (port 0 picks a free one)`
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
  });
}

/** Log where the dashboard is (and warn of controls off loopback); returns its URL. */
function announce(ctx: DashboardContext, host: string, port: number): string {
  const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const url = `http://${urlHost.includes(':') ? `[${urlHost}]` : urlHost}:${port}/`;
  if (ctx.controls && !isLoopback(host)) {
    ctx.log.warn(
      { http: `${host}:${port}` },
      `dashboard controls are on and it listens on ${host}, not loopback: anyone who can reach port ${port} can pause${ctx.faults ? ', crash' : ''} and add roles and submit tasks`,
    );
  }
  ctx.log.info(
    { url, controls: ctx.controls, readOnly: !ctx.host },
    `dashboard at ${url}${ctx.controls ? ' (controls on)' : ''}${ctx.access.generated ? '; its token is in the URL printed at start' : ''}`,
  );
  return url;
}

/** The running dashboard: its address, and close() for everything it started. */
function dashboard(
  ctx: DashboardContext,
  server: Server,
  where: { url: string; address: { host: string; port: number } },
): Dashboard {
  const { supervisor: sup, log } = ctx;
  const connectWarn = setTimeout(() => {
    if (sup.state === 'connecting')
      log.warn(
        { connect: ctx.connect },
        `dashboard: still no ZooKeeper session to ${ctx.connect}; is the server up?`,
      );
  }, 10_000);
  connectWarn.unref?.();
  let closed: Promise<void> | undefined;
  return {
    ...where,
    token: ctx.access.token,
    loginUrl: `${where.url}?token=${ctx.access.token}`,
    metrics: ctx.metrics,
    async snapshot() {
      await ctx.hostView?.refresh();
      return ctx.snapshot();
    },
    close() {
      closed ??= (async () => {
        clearTimeout(connectWarn);
        ctx.hub.close();
        ctx.observer.stop();
        await ctx.events?.close();
        ctx.hostView?.stop();
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

/** A connect string carries no secrets, but keep only hosts and chroot in what we show. */
function redact(connect: string): string {
  return connect.replace(/[^\w.:,/[\]-]/g, '');
}
