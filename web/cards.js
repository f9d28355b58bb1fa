// Masters and workers as cards (kept and updated in place), and the recent failures.

import { controlButton, crashRole, drainWorker, pauseToggle } from './controls.js';
import { $, clock, el, fmtMs, fmtNum, setChildren } from './dom.js';
import { taskLink } from './tasks.js';

/** Keep one card element per role and update it in place (buttons keep focus, no flicker). */
function reconcile(container, items, make, update) {
  const seen = new Set();
  for (const item of items) {
    seen.add(item.name);
    let card = container.querySelector(`:scope > [data-role="${CSS.escape(item.name)}"]`);
    if (!card) {
      card = make(item);
      container.append(card);
    }
    update(card, item);
  }
  for (const card of [...container.children]) if (!seen.has(card.dataset.role)) card.remove();
  // Keep the order of `items`.
  items.forEach((item, i) => {
    const card = container.querySelector(`:scope > [data-role="${CSS.escape(item.name)}"]`);
    if (container.children[i] !== card) container.insertBefore(card, container.children[i]);
  });
}

function masterTone(m) {
  if (!m.alive || m.state === 'failed' || m.session === 'lost' || m.session === 'closed') return 'down';
  if (m.leader) return 'leader';
  if (m.state === 'starting' || m.session === 'connecting') return 'starting';
  return 'standby';
}

export function renderMasters(masters) {
  $('#masters-count').textContent = `${masters.filter((m) => m.alive).length} live`;
  reconcile(
    $('#masters'),
    masters,
    (m) =>
      el(
        'div',
        { class: 'card', dataset: { role: m.name, kind: 'master' } },
        el(
          'div',
          { class: 'row' },
          el('span', { class: 'title', text: m.name }),
          el('span', { class: 'badge state' }),
          el('span', { class: 'badge local right' }),
        ),
        el('div', { class: 'meta' }),
        el(
          'div',
          { class: 'actions' },
          controlButton('Crash', 'danger', () => crashRole(m.name, true)),
        ),
      ),
    (card, m) => {
      const tone = masterTone(m);
      card.dataset.tone = tone;
      card.dataset.leader = String(m.leader);
      if (m.assigned !== undefined) card.dataset.assigned = String(m.assigned);
      $('.badge.state', card).textContent =
        tone === 'down' ? (m.state === 'failed' ? 'down · restarting' : 'gone') : tone;
      const local = $('.badge.local', card);
      local.textContent = m.local ? 'this host' : 'remote';
      const meta = $('.meta', card);
      setChildren(
        meta,
        metaItem('session', sessionText(m)),
        m.host ? metaItem('on', `${m.host}${m.pid ? `:${m.pid}` : ''}`) : null,
        m.assigned !== undefined ? metaItem('assigned', fmtNum(m.assigned)) : null,
        m.restarts ? metaItem('restarts', fmtNum(m.restarts)) : null,
      );
      const actions = $('.actions', card);
      actions.hidden = !m.local;
    },
  );
}

function sessionText(r) {
  if (!r.local) return r.alive ? 'live' : 'gone';
  const id = r.sessionId ? ` ${r.sessionId.slice(-6)}` : '';
  return `${r.session}${id}${r.sessions > 1 ? ` (#${r.sessions})` : ''}`;
}

function metaItem(label, value) {
  return el('span', {}, `${label} `, el('b', { text: value }));
}

function workerTone(w) {
  if (
    !w.alive ||
    w.state === 'failed' ||
    w.session === 'lost' ||
    w.session === 'closed' ||
    w.state === 'stopped'
  )
    return 'down';
  if (w.draining || w.state === 'stopping') return 'draining';
  if (w.paused) return 'paused';
  if (w.state === 'starting' || w.session === 'connecting') return 'starting';
  const running = w.running ?? w.inFlight;
  if (w.capacity && running >= w.capacity) return 'busy';
  return 'active';
}

export function renderWorkers(workers) {
  const live = workers.filter((w) => w.alive).length;
  $('#workers-count').textContent =
    `${live} live${workers.length > live ? ` · ${workers.length - live} down` : ''}`;
  reconcile(
    $('#workers'),
    workers,
    (w) =>
      el(
        'div',
        { class: 'card', dataset: { role: w.name, kind: 'worker' } },
        el(
          'div',
          { class: 'row' },
          el('span', { class: 'title', text: w.name }),
          el('span', { class: 'badge state' }),
          el('span', { class: 'badge local right' }),
        ),
        el(
          'div',
          { class: 'bar', title: 'running · held (prefetched) of capacity' },
          el('span', { class: 'run' }),
          el('span', { class: 'held' }),
        ),
        el('div', { class: 'meta counts' }),
        el('div', { class: 'meta session' }),
        el(
          'div',
          { class: 'actions' },
          controlButton('Pause', '', () => pauseToggle(w.name), 'pause'),
          controlButton('Drain', '', () => drainWorker(w.name)),
          controlButton('Crash', 'danger', () => crashRole(w.name, false)),
        ),
      ),
    (card, w) => {
      const tone = workerTone(w);
      card.dataset.tone = tone;
      card.dataset.paused = String(w.paused);
      $('.badge.state', card).textContent =
        tone === 'down' ? (w.state === 'failed' ? 'down · restarting' : 'gone') : tone;
      $('.badge.local', card).textContent = w.local ? 'this host' : 'remote';
      const cap = Math.max(1, w.capacity ?? 1);
      const running = w.running ?? w.inFlight;
      const held = w.running !== undefined ? (w.queued ?? 0) : 0;
      const total = Math.max(cap, running + held);
      $('.bar .run', card).style.width = `${(100 * Math.min(running, total)) / total}%`;
      $('.bar .held', card).style.width = `${(100 * Math.min(held, total - running)) / total}%`;
      setChildren(
        $('.meta.counts', card),
        metaItem('running', `${fmtNum(running)}/${w.capacity ?? '?'}`),
        held ? metaItem('held', fmtNum(held)) : null,
        metaItem('done', fmtNum(w.succeeded)),
        el('span', { class: w.failed ? 'failed-count' : '' }, 'failed ', el('b', { text: fmtNum(w.failed) })),
      );
      setChildren(
        $('.meta.session', card),
        metaItem('session', sessionText(w)),
        w.latency ? metaItem('p95', fmtMs(w.latency.p95)) : null,
        w.restarts ? metaItem('restarts', fmtNum(w.restarts)) : null,
      );
      const pause = $('[data-action="pause"]', card);
      pause.textContent = w.paused ? 'Resume' : 'Pause';
      $('.actions', card).hidden = !w.local;
    },
  );
}

export function renderFailures(failures) {
  $('#failures-count').textContent = failures.length ? `${failures.length} most recent` : '';
  $('#failures-empty').hidden = failures.length > 0;
  $('#failures').replaceChildren(
    ...failures.map((f) =>
      el(
        'tr',
        { dataset: { taskId: f.id } },
        el('td', { text: clock(f.finishedAt), title: new Date(f.finishedAt).toISOString() }),
        el('td', {}, taskLink(f.id)),
        el('td', { text: f.worker ?? '—' }),
        el('td', { text: String(f.attempts) }),
        el('td', {
          class: 'reason',
          text: `${f.errorCode ? `${f.errorCode}: ` : ''}${f.error ?? '(no reason recorded)'}`,
          title: f.error ?? '',
        }),
      ),
    ),
  );
}
