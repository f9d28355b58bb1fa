// The recent task events panel: the last events of the farm's tasks (queued, started, progress, results),
// newest first. The page reads /api/events once, then takes each `task-events` batch from the live feed.
// A `gap` says the dashboard's stream stopped and started again: events were missed meanwhile.

import { $, el, setChildren } from './dom.js';

const SHOWN = 50;
let events = [];

function row(ev) {
  const what = [
    ev.worker ? `on ${ev.worker}` : '',
    ev.value !== undefined ? String(ev.value) : '',
    ev.message ?? '',
    ev.errorCode ?? '',
    ev.error ? ev.error.split('\n')[0].slice(0, 120) : '',
  ]
    .filter(Boolean)
    .join(' · ');
  return el(
    'tr',
    { dataset: { task: ev.id, type: ev.type }, title: ev.seen ? '' : 'inferred after a reconnection' },
    el('td', { text: new Date(ev.at).toLocaleTimeString() }),
    el('td', { class: 'mono', text: ev.id }),
    el('td', {}, el('span', { class: `event-type ${ev.type}`, text: ev.type })),
    el('td', { text: ev.queue ?? '' }),
    el('td', { class: 'reason', text: what }),
  );
}

function render() {
  const shown = events.slice(-SHOWN).reverse();
  setChildren($('#events'), shown.map(row));
  $('#events-empty').hidden = shown.length > 0;
}

/** A batch from the live feed: `{gap, events}`. */
export function onTaskEvents(batch) {
  events = events.concat(batch.events).slice(-SHOWN);
  $('#events-gap').hidden = !batch.gap && $('#events-gap').hidden;
  render();
}

export async function startEventsPanel() {
  const res = await fetch('/api/events').catch(() => undefined);
  // 404: the dashboard runs without task events (option taskEvents): no panel.
  if (res?.status === 404) $('.task-events').hidden = true;
  if (!res?.ok) return;
  events = (await res.json()).concat(events).slice(-SHOWN);
  render();
}
