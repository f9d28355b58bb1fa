// Tasks: following the test tasks submitted from the page, and the details panel of any task.

import { applyControls, controlButton, postControl } from './controls.js';
import { $, ago, el, fmtMs, fmtNum } from './dom.js';
import { state } from './state.js';

export function trackTask(id, task) {
  const item = el(
    'li',
    { dataset: { taskId: id, state: 'queued' } },
    taskLink(id),
    el('span', {
      class: 'what',
      text: `${task.handler}${task.input !== undefined ? ` ${JSON.stringify(task.input)}` : ''}`,
    }),
    el('span', { class: 'state-tag', dataset: { state: 'queued' }, text: 'queued' }),
  );
  $('#my-tasks').prepend(item);
  while ($('#my-tasks').children.length > 20) $('#my-tasks').lastElementChild.remove();
  const started = Date.now();
  const poll = async () => {
    try {
      const res = await fetch(`/api/task/${id}`);
      if (res.ok) {
        const d = await res.json();
        const s = d.where === 'finished' ? (d.status?.state ?? 'finished') : d.where;
        item.dataset.state = s;
        const tag = $('.state-tag', item);
        tag.dataset.state = s;
        const p = d.progress;
        const how = p
          ? ` · ${p.value !== undefined ? fmtNum(p.value) : ''}${p.message ? ` ${p.message}` : ''}`
          : '';
        tag.textContent = s === 'assigned' ? `running on ${d.worker}${how}` : s;
        if (state.openTask === id) renderTask(d);
        if (d.where === 'finished') return;
      }
    } catch {
      // the feed shows connection trouble; keep trying
    }
    if (Date.now() - started < 10 * 60_000) setTimeout(poll, 500);
  };
  poll();
}

export function taskLink(id) {
  return el('button', {
    type: 'button',
    class: 'task-link',
    text: id,
    onclick: () => openTask(id),
    dataset: { taskLink: id },
  });
}

async function openTask(id) {
  state.openTask = id;
  $('#drawer-title').textContent = id;
  $('#drawer-body').replaceChildren(el('p', { class: 'empty', text: 'Loading…' }));
  $('#task-drawer').hidden = false;
  try {
    const res = await fetch(`/api/task/${encodeURIComponent(id)}`);
    const d = await res.json();
    if (!res.ok) throw new Error(d.error?.message ?? res.statusText);
    if (state.openTask !== id) return;
    renderTask(d);
    // A task still on its way: look again while its panel is open (its progress, then its result).
    if (d.where === 'queued' || d.where === 'assigned')
      setTimeout(() => {
        if (state.openTask === id) openTaskAgain(id);
      }, 1000);
  } catch (err) {
    $('#drawer-body').replaceChildren(
      el('p', { class: 'empty', text: `Could not load ${id}: ${err.message}` }),
    );
  }
}

async function openTaskAgain(id) {
  try {
    const res = await fetch(`/api/task/${encodeURIComponent(id)}`);
    const d = await res.json();
    if (!res.ok || state.openTask !== id) return;
    renderTask(d);
    if (d.where === 'queued' || d.where === 'assigned') setTimeout(() => openTaskAgain(id), 1000);
  } catch {
    if (state.openTask === id) setTimeout(() => openTaskAgain(id), 2000);
  }
}

/** A running task's progress: its number (a percentage shown with a bar when it is one) and message. */
function progressView(p) {
  const parts = [];
  if (typeof p.value === 'number') {
    if (p.value >= 0 && p.value <= 100)
      parts.push(el('progress', { max: '100', value: String(p.value), class: 'task-progress' }));
    parts.push(el('span', { text: ` ${fmtNum(p.value)}${p.value >= 0 && p.value <= 100 ? '%' : ''}` }));
  }
  if (p.message) parts.push(el('span', { class: 'progress-message', text: ` ${p.message}` }));
  parts.push(el('span', { class: 'size', text: ` (${ago(p.at)})` }));
  return el('span', { dataset: { progress: '' } }, ...parts);
}

function renderTask(d) {
  const body = $('#drawer-body');
  const status = d.status ?? {};
  const where = d.where === 'finished' ? status.state : d.where;
  const rows = [
    ['State', el('span', { class: 'state-tag', dataset: { state: where }, text: where })],
    ['Worker', d.worker ?? '—'],
    d.progress ? ['Progress', progressView(d.progress)] : null,
    d.since
      ? [
          d.where === 'finished' ? 'Recorded' : 'Since',
          `${new Date(d.since).toLocaleString()} (${ago(d.since)})`,
        ]
      : null,
    status.attempts !== undefined ? ['Attempts', String(status.attempts)] : null,
    status.startedAt && status.finishedAt ? ['Ran for', fmtMs(status.finishedAt - status.startedAt)] : null,
    status.exitCode !== undefined && status.exitCode !== null ? ['Exit code', String(status.exitCode)] : null,
    status.error ? ['Error', `${status.errorCode ? `${status.errorCode}: ` : ''}${status.error}`] : null,
    status.state === 'cancelled' ? ['Cancelled', cancelledText(status)] : null,
  ].filter(Boolean);
  const parts = [
    el(
      'dl',
      { class: 'kv' },
      rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]),
    ),
  ];
  if (d.task !== undefined)
    parts.push(section('Task JSON', el('pre', { text: JSON.stringify(d.task, null, 2) })));
  if (d.status !== undefined)
    parts.push(section('Status', el('pre', { text: JSON.stringify(d.status, null, 2) })));
  if (d.files?.length) {
    parts.push(
      section(
        `Output files (${d.files.length})`,
        ...d.files.map((f) =>
          el(
            'div',
            { class: 'file' },
            el(
              'div',
              { class: 'file-name' },
              f.name,
              el('span', {
                class: 'size',
                text: `${fmtNum(f.size)} bytes${f.truncated ? ', preview truncated' : ''}`,
              }),
            ),
            el('pre', { text: f.preview ?? '(binary file)' }),
          ),
        ),
      ),
    );
  }
  if (d.filesNote) parts.push(el('p', { class: 'empty', text: d.filesNote }));
  if (d.where === 'unknown')
    parts.push(
      el('p', {
        class: 'empty',
        text: 'No such task now: never submitted, or its status was removed by retention.',
      }),
    );
  // A task not finished yet can be cancelled from its panel (POST /api/tasks/<id>/cancel).
  const open = d.where === 'queued' || d.where === 'assigned';
  if (open) parts.unshift(el('div', { class: 'drawer-actions' }, cancelButton(d.id)));
  body.replaceChildren(...parts);
  if (open) applyControls();
}

function cancelButton(id) {
  return controlButton(
    'Cancel task',
    'danger',
    async (e) => {
      e.target.disabled = true;
      await postControl(`/api/tasks/${encodeURIComponent(id)}/cancel`, {
        reason: 'cancelled from the dashboard',
      });
      if (state.openTask === id) openTaskAgain(id);
    },
    'task-cancel',
  );
}

/** `while running, by dashboard: why` */
function cancelledText(s) {
  const who = s.cancelledBy ? `, by ${s.cancelledBy}` : '';
  const why = s.reason ? `: ${s.reason}` : '';
  return `while ${s.cancelledWhile ?? 'queued'}${who}${why}`;
}

function section(title, ...children) {
  return el('section', {}, el('h3', { text: title }), ...children);
}

$('#drawer-close').addEventListener('click', () => {
  state.openTask = null;
  $('#task-drawer').hidden = true;
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') $('#drawer-close').click();
});
