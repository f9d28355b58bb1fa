// Controls: buttons on role cards, add worker, the test-task form. The server refuses them (403)
// unless controls are on; the page disables them then, and says so.

import { $, el, toast } from './dom.js';
import { state } from './state.js';
import { trackTask } from './tasks.js';

const HANDLER_INPUTS = {
  echo: '"hello from the dashboard"',
  sleep: '500',
  noop: '',
  fail: '"failed on purpose"',
};

export function controlButton(label, kind, onclick, action) {
  return el('button', {
    type: 'button',
    class: `btn small ctl ${kind}`,
    text: label,
    onclick,
    dataset: { action: action ?? label.toLowerCase() },
  });
}

export function applyControls() {
  const reason = !state.controls
    ? 'Controls are off on this dashboard'
    : !state.authorized
      ? "Controls need the dashboard's token (see the banner above)"
      : '';
  for (const b of document.querySelectorAll('.ctl')) {
    // The test-task form, the queue, schedule and task controls act through ZooKeeper: they need no host.
    const viaZk = /^(queue|schedule|task)-/.test(b.dataset.action ?? '');
    const needsHost = b.id !== 'submit-button' && !viaZk;
    const off = !state.controls || !state.authorized || (needsHost && state.readOnly);
    b.disabled = off;
    b.title = off ? reason || 'This dashboard runs no roles' : '';
    // Crash is fault injection: shown only when the dashboard was started with it.
    if (b.dataset.action === 'crash') b.hidden = !state.crash;
  }
  $('#add-worker').hidden = state.readOnly;
}

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json.error?.message ?? `${res.status} ${res.statusText}`);
  return json;
}

/** POST a control and show what it answered (a toast). */
export function postControl(path, body) {
  return act(() => post(path, body));
}

async function act(fn) {
  try {
    const r = await fn();
    if (r?.message) toast(r.message, 'ok');
    return r;
  } catch (err) {
    toast(err.message, 'error');
  }
}

export function pauseToggle(name) {
  const w = state.snapshot?.workers.find((x) => x.name === name);
  return act(() => post(`/api/roles/${encodeURIComponent(name)}/${w?.paused ? 'resume' : 'pause'}`));
}

export function drainWorker(name) {
  if (!confirm(`Drain ${name}? It finishes its running tasks, gives back the rest, and leaves the farm.`))
    return;
  return act(() => post(`/api/roles/${encodeURIComponent(name)}/drain`));
}

export function crashRole(name, isMaster) {
  const m = state.snapshot?.masters.find((x) => x.name === name);
  const what = isMaster && m?.leader ? ' It leads: a standby should take over.' : '';
  if (
    !confirm(`Crash ${name}? Its thread dies without clean-up; the host restarts it after a backoff.${what}`)
  )
    return;
  return act(() => post(`/api/roles/${encodeURIComponent(name)}/crash`));
}

$('#add-worker').addEventListener('click', () => act(() => post('/api/roles', { kind: 'worker' })));

$('#submit-handler').addEventListener('change', (e) => {
  $('#submit-input').value = HANDLER_INPUTS[e.target.value] ?? '';
});

$('#submit-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const handler = $('#submit-handler').value;
  const raw = $('#submit-input').value.trim();
  const task = { handler };
  if (raw !== '') {
    try {
      task.input = JSON.parse(raw);
    } catch {
      toast(`The input is not JSON: ${raw.slice(0, 60)} (strings need quotes)`, 'error');
      return;
    }
  }
  const attempts = Number($('#submit-attempts').value);
  if (attempts > 1) task.maxAttempts = attempts;
  const r = await act(() => post('/api/tasks', task));
  if (r?.id) trackTask(r.id, task);
});
