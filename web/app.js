// zkfarm dashboard page. Plain ES modules, no build step. Data arrives over Server-Sent Events
// (/events): `hello` once per connection (settings and chart history), `snapshot` every second.
// Everything shown is set with textContent: task data and error reasons are never parsed as HTML.

import { renderFailures, renderMasters, renderWorkers } from './cards.js';
import { addPoint, makeCharts, redrawCharts } from './charts.js';
import { applyControls } from './controls.js';
import { $, ago, el, fmtMs, fmtNum, fmtRate, msParts } from './dom.js';
import { onTaskEvents, startEventsPanel } from './events.js';
import { renderQueues } from './queues.js';
import { startSchedulesPanel } from './schedules.js';
import { startServicesPanel } from './services.js';
import { state } from './state.js';

let source;
function connectFeed() {
  source?.close();
  setConn('connecting');
  source = new EventSource('/events');
  source.addEventListener('hello', (e) => onHello(JSON.parse(e.data)));
  source.addEventListener('snapshot', (e) => onSnapshot(JSON.parse(e.data)));
  source.addEventListener('task-events', (e) => onTaskEvents(JSON.parse(e.data)));
  source.onopen = () => setConn('live');
  source.onerror = () => {
    setConn('reconnecting');
    // The browser retries by itself unless the server refused the stream; then we start over.
    if (source.readyState === EventSource.CLOSED) {
      void needsToken();
      setTimeout(connectFeed, 3000);
    }
  };
}

// A farm with ACLs serves its feed only with the token: say so instead of reconnecting in silence.
async function needsToken() {
  const res = await fetch('/events', { method: 'HEAD' }).catch(() => undefined);
  if (res?.status !== 401) return;
  $('#token-why').textContent =
    "This farm runs with ACLs: its results are shown only with the dashboard's token.";
  $('#token-banner').hidden = false;
}

$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('#token-input').value.trim();
  if (token) location.href = `${location.pathname}?token=${encodeURIComponent(token)}`;
});

function setConn(s) {
  const pill = $('#conn-pill');
  pill.dataset.state = s;
  pill.className = `pill conn ${s === 'live' ? 'ok' : s === 'stale' ? 'warn' : 'bad'}`;
  pill.textContent =
    s === 'live' ? 'live' : s === 'stale' ? 'stale' : s === 'connecting' ? 'connecting…' : 'reconnecting…';
}

setInterval(() => {
  if (
    state.lastSnapshotAt &&
    Date.now() - state.lastSnapshotAt > 5000 &&
    $('#conn-pill').dataset.state === 'live'
  )
    setConn('stale');
  if (state.snapshot) renderAges();
}, 1000);

function onHello(hello) {
  state.controls = hello.controls;
  state.crash = hello.crash === true;
  state.readOnly = hello.readOnly;
  state.authorized = hello.authorized === true;
  $('#token-banner').hidden = !hello.controls || state.authorized;
  $('#connect').textContent = hello.connect;
  $('#connect').title = `ZooKeeper: ${hello.connect}`;
  const pill = $('#controls-pill');
  if (hello.controls) {
    pill.className = 'pill ok';
    pill.textContent = hello.readOnly ? 'controls on (submit only)' : 'controls on';
  } else {
    pill.className = 'pill off';
    pill.textContent = 'read-only: controls off';
  }
  $('#readonly-banner').hidden = hello.controls;
  for (const k of Object.keys(state.data)) state.data[k] = [];
  for (const p of hello.history) addPoint(p, false);
  redrawCharts();
  applyControls();
}

function onSnapshot(s) {
  state.snapshot = s;
  state.lastSnapshotAt = Date.now();
  if ($('#conn-pill').dataset.state !== 'live') setConn('live');
  if (s.point) {
    addPoint(s.point, true);
  }
  render(s);
}

function render(s) {
  const zk = $('#zk-pill');
  const zkOk = s.zk.state === 'connected' || s.zk.state === 'reconnected';
  zk.className = `pill ${zkOk ? 'ok' : s.zk.state === 'suspended' || s.zk.state === 'connecting' ? 'warn' : 'bad'}`;
  zk.textContent = `ZooKeeper ${s.zk.state}`;

  const leader = $('#leader-name');
  leader.textContent = s.leader ?? 'none';
  leader.classList.toggle('none', !s.leader);
  leader.dataset.leader = s.leader ?? '';

  setStat('#stat-queue', fmtNum(s.queue));
  setStat('#stat-rate', fmtRate(s.rate));
  setStat(
    '#stat-running',
    fmtNum(s.running),
    s.inFlight !== s.running ? `${fmtNum(s.inFlight)} in flight incl. prefetched` : 'on workers now',
  );
  setStat(
    '#stat-failed',
    fmtNum(s.failed5m),
    s.sampling ? 'last 5 minutes (estimated: sampling)' : 'last 5 minutes',
  );
  $('#stat-failed').classList.toggle('alert', s.failed5m > 0);
  const [v, unit] = msParts(s.latency.p95);
  setStat(
    '#stat-latency',
    v,
    s.latency.count
      ? `submit → result · p50 ${fmtMs(s.latency.p50)} · p99 ${fmtMs(s.latency.p99)}`
      : 'submit → result, last minute',
    unit,
  );
  const live = s.workers.filter((w) => w.alive);
  const slots = live.reduce((n, w) => n + (w.paused || w.draining ? 0 : (w.capacity ?? 0)), 0);
  setStat('#stat-workers', fmtNum(live.length), `live · ${fmtNum(slots)} slots open`);

  renderMasters(s.masters);
  renderWorkers(s.workers);
  renderFailures(s.failures);
  renderQueues(s.queues ?? []);
  applyControls();
}

function setStat(id, value, sub, unit) {
  const box = $(id);
  const v = $('.v', box);
  v.textContent = value;
  if (unit) v.append(el('small', { text: unit }));
  if (sub !== undefined) $('.sub', box).textContent = sub;
}

function renderAges() {
  const s = state.snapshot;
  $('#leader-since').textContent = s.leader && s.leaderSince ? `since ${ago(s.leaderSince)}` : '';
  for (const node of document.querySelectorAll('[data-since]'))
    node.textContent = ago(Number(node.dataset.since));
}

makeCharts();
applyControls();
connectFeed();
startServicesPanel();
startSchedulesPanel();
void startEventsPanel();
