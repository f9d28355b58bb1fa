/**
 * The dashboard's requests, one route per path: the checks every request passes (its Host, and for a
 * POST its Origin and the token), then the table of GET routes (the page's assets, the live feed,
 * health, metrics, the state and history, a task's details, the services) or the controls for a POST. The server
 * (server.ts) answers any error a route throws with its status and stable code (http.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ScheduleAdmin } from '../farm/schedules/admin.js';
import type { Host } from '../host/host.js';
import type { Logger } from '../zk/connect-options.js';
import type { Supervisor } from '../zk/supervisor.js';
import type { Access } from './access.js';
import type { Asset } from './assets.js';
import { type RoleFaults, runControl } from './controls.js';
import type { EventHub } from './event-hub.js';
import type { FarmObserver, ObserverTick } from './farm-observer.js';
import { health } from './health.js';
import type { HostView } from './host-view.js';
import { HttpError, liveClient, readJson, SECURITY_HEADERS, sendJson, WebErrorCodes } from './http.js';
import type { FarmMetrics } from './metrics.js';
import type { RecentEvents } from './recent-events.js';
import { readServices, serviceMetricsFor } from './services-view.js';
import type { Snapshot } from './snapshot.js';
import { taskDetails } from './task-details.js';

/** What the routes serve from and act on. */
export interface DashboardContext {
  access: Access;
  assets: Map<string, Asset>;
  hub: EventHub;
  /** The farm's recent task events (recent-events.ts); undefined when the dashboard's `taskEvents` is off. */
  events: RecentEvents | undefined;
  observer: FarmObserver;
  hostView: HostView | undefined;
  metrics: FarmMetrics;
  supervisor: Supervisor;
  host: Host | undefined;
  faults: RoleFaults | undefined;
  log: Logger;
  /** The POST controls are on. */
  controls: boolean;
  /** Workers the page added (the limit counts them). */
  added: Set<string>;
  maxAddedWorkers: number;
  /** Where task output lives on this machine. */
  workdir: string | undefined;
  /** The connect string as the page may show it. */
  connect: string;
  snapshot(point?: ObserverTick['point']): Snapshot;
  updateMetrics(s: Snapshot): void;
}

type GetRoute = (ctx: DashboardContext, req: IncomingMessage, res: ServerResponse, head: boolean) => unknown;

const GET_ROUTES: ReadonlyMap<string, GetRoute> = new Map<string, GetRoute>([
  ['/events', feed],
  [
    '/healthz',
    async (ctx, _req, res) => {
      const h = await health(ctx);
      sendJson(res, h.ok ? 200 : 503, h.body);
    },
  ],
  ['/metrics', metricsText],
  [
    '/api/state',
    async (ctx, _req, res) => {
      await ctx.hostView?.refresh();
      sendJson(res, 200, ctx.snapshot());
    },
  ],
  ['/api/history', (ctx, _req, res) => sendJson(res, 200, ctx.observer.history.points())],
  ['/api/events', recentEvents],
  [
    '/api/services',
    async (ctx, _req, res) => sendJson(res, 200, await readServices(liveClient(ctx.supervisor))),
  ],
  [
    '/api/schedules',
    async (ctx, _req, res) => sendJson(res, 200, await new ScheduleAdmin(liveClient(ctx.supervisor)).list()),
  ],
]);

function recentEvents(ctx: DashboardContext, _req: IncomingMessage, res: ServerResponse): void {
  if (!ctx.events)
    throw new HttpError(
      404,
      WebErrorCodes.NOT_FOUND,
      'task events are off in this dashboard (option taskEvents)',
    );
  sendJson(res, 200, ctx.events.recent());
}

const TASK_ROUTE = /^\/api\/task\/([^/]+)$/;

/** Answer one request (an error thrown is answered by the caller). */
export async function handleRequest(
  ctx: DashboardContext,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
  const path = url.pathname;
  ctx.access.checkHost(req);
  const method = req.method ?? 'GET';
  if (method === 'POST') return control(ctx, req, res, path);
  if (method !== 'GET' && method !== 'HEAD') {
    throw new HttpError(
      405,
      WebErrorCodes.METHOD_NOT_ALLOWED,
      `${method} is not supported; use GET, or POST for controls`,
    );
  }
  if (ctx.access.login(url, res)) return;
  if (ctx.access.guardsRead(path)) ctx.access.require(req, "this farm's results (it runs with ACLs)");
  const head = method === 'HEAD';
  const asset = ctx.assets.get(path);
  if (asset) return sendAsset(res, asset, head);
  const route = GET_ROUTES.get(path);
  if (route) {
    await route(ctx, req, res, head);
    return;
  }
  const task = TASK_ROUTE.exec(path);
  if (task) return sendTask(ctx, res, safeDecode(task[1]!));
  throw new HttpError(
    404,
    WebErrorCodes.NOT_FOUND,
    `nothing at ${path}: the page is at /, the feed at /events, metrics at /metrics`,
  );
}

/** A control: only from the dashboard's own page, with the token, a JSON body, and controls on. */
async function control(
  ctx: DashboardContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
): Promise<void> {
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
  ctx.access.require(req, 'a control');
  const body = await readJson(req);
  const answer = await runControl(
    {
      enabled: ctx.controls,
      host: ctx.host,
      faults: ctx.faults,
      supervisor: ctx.supervisor,
      log: ctx.log,
      added: ctx.added,
      maxAddedWorkers: ctx.maxAddedWorkers,
    },
    path,
    body,
  );
  if (!answer)
    throw new HttpError(
      404,
      WebErrorCodes.NOT_FOUND,
      `no control at ${path}; see docs/dashboard.md for the endpoints`,
    );
  sendJson(res, answer.status, answer.body);
}

/** `GET /events`: the live feed (a HEAD gets its headers only). */
function feed(ctx: DashboardContext, req: IncomingMessage, res: ServerResponse, head: boolean): void {
  if (head) {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
    });
    res.end();
    return;
  }
  ctx.hub.open(req, res, {
    controls: ctx.controls,
    crash: ctx.controls && ctx.faults !== undefined,
    readOnly: !ctx.host,
    authorized: ctx.access.presented(req),
    connect: ctx.connect,
    history: ctx.observer.history.points(),
  });
}

/** `GET /metrics`: Prometheus text, from a fresh look at the host's roles. */
async function metricsText(
  ctx: DashboardContext,
  _req: IncomingMessage,
  res: ServerResponse,
  head: boolean,
): Promise<void> {
  await ctx.hostView?.refresh();
  ctx.updateMetrics(ctx.snapshot());
  const zk = ctx.supervisor.session?.client;
  if (zk) serviceMetricsFor(ctx.metrics.registry).update(await readServices(zk).catch(() => []));
  const text = await ctx.metrics.metrics();
  res.writeHead(200, {
    'content-type': ctx.metrics.contentType,
    'cache-control': 'no-store',
    ...SECURITY_HEADERS,
  });
  res.end(head ? undefined : text);
}

/** `GET /api/task/<id>`: a task's JSON, status and output files, read through the live session. */
async function sendTask(ctx: DashboardContext, res: ServerResponse, id: string): Promise<void> {
  sendJson(res, 200, await taskDetails(liveClient(ctx.supervisor), id, { workdir: ctx.workdir }));
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
