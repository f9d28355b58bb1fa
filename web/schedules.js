// The schedules panel: every schedule (when it ticks, its next and last tick, how many it made, paused
// or not), read from /api/schedules every 2 s; pause/resume and remove (POST /api/schedules/<name>/...,
// controls on only). Hidden while the farm has no schedule.

import { applyControls, controlButton, postControl } from './controls.js';
import { $, ago, el, fmtNum, setChildren } from './dom.js';

async function refresh() {
  const res = await fetch('/api/schedules').catch(() => undefined);
  if (!res?.ok) return;
  render(await res.json());
}

const when = (r) => (r.cron ? `cron "${r.cron}" ${r.tz ?? 'UTC'}` : `every ${fmtMs(r.every)}`);

function fmtMs(ms) {
  for (const [unit, n] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ])
    if (ms % n === 0) return `${ms / n}${unit}`;
  return `${ms}ms`;
}

const time = (t) => (t === undefined || t === null ? '–' : new Date(t).toLocaleString());

function row(s) {
  const name = encodeURIComponent(s.name);
  const r = s.record;
  const act = (action) => () => postControl(`/api/schedules/${name}/${action}`).then(refresh);
  const remove = () => {
    if (confirm(`Remove schedule ${s.name}? The tasks it made stay.`)) void act('remove')();
  };
  const buttons = el('td', { class: 'actions' });
  if (r)
    buttons.append(
      controlButton(
        r.paused ? 'Resume' : 'Pause',
        '',
        act(r.paused ? 'resume' : 'pause'),
        r.paused ? 'schedule-resume' : 'schedule-pause',
      ),
    );
  buttons.append(controlButton('Remove', '', remove, 'schedule-remove'));
  if (!r)
    return el(
      'tr',
      { dataset: { schedule: s.name } },
      el('td', { text: s.name }),
      el('td', { colspan: 5, class: 'warn', text: `not a valid schedule: ${s.problem}` }),
      el('td', { class: 'state', text: 'invalid' }),
      buttons,
    );
  const state = r.paused ? 'paused' : r.next === null ? 'ended' : 'active';
  return el(
    'tr',
    { dataset: { schedule: s.name, state } },
    el('td', { text: s.name }),
    el('td', { text: when(r) }),
    el('td', { text: r.paused ? '–' : time(r.next) }),
    el('td', { text: r.lastTick ? `${time(r.lastTick)} (${ago(r.lastTick)})` : '–' }),
    el('td', { text: fmtNum(r.ticks ?? 0) }),
    el('td', {
      text: r.task.handler ? `handler ${r.task.handler}` : `cmd ${r.task.cmd}`,
      title: JSON.stringify(r.task),
    }),
    el('td', { class: `state ${state}`, text: state }),
    buttons,
  );
}

function render(schedules) {
  $('#schedules-panel').hidden = schedules.length === 0;
  $('#schedules-count').textContent = schedules.length ? String(schedules.length) : '';
  setChildren($('#schedules'), ...schedules.map(row));
  applyControls();
}

export function startSchedulesPanel() {
  void refresh();
  setInterval(() => void refresh(), 2000);
}
