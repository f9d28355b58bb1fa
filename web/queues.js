// The queues panel: per queue, what waits (by priority) and runs, its controls, who serves it, and why
// its tasks wait; pause/resume and set its limits (POST /api/queues/<q>/..., controls on only).

import { controlButton, postControl } from './controls.js';
import { $, el, fmtNum, setChildren } from './dom.js';

function depth(q) {
  const parts = Object.entries(q.byPriority)
    .sort((a, b) => Number(b[0]) - Number(a[0]))
    .map(([p, n]) => `p${p}: ${fmtNum(n)}`);
  return parts.length > 1 ? `${fmtNum(q.waiting)} (${parts.join(', ')})` : fmtNum(q.waiting);
}

/** Ask for a limit: a number, "none" to remove it, or nothing (cancel: undefined). */
function askLimit(what, current) {
  const v = prompt(`${what} (a number, or "none")`, current === null ? 'none' : String(current));
  if (v === null) return undefined;
  if (v.trim() === 'none' || v.trim() === '') return null;
  return Number(v);
}

function setLimits(q) {
  const rateLimit = askLimit(
    `Rate limit of ${q.queue}: tasks started per second across the farm`,
    q.controls.rateLimit,
  );
  if (rateLimit === undefined) return;
  const concurrency = askLimit(
    `Concurrency cap of ${q.queue}: its tasks out at once across the farm`,
    q.controls.concurrency,
  );
  if (concurrency === undefined) return;
  return postControl(`/api/queues/${encodeURIComponent(q.queue)}/set`, { rateLimit, concurrency });
}

function row(q) {
  const name = encodeURIComponent(q.queue);
  const why = q.blocked.map((b) => `${fmtNum(b.tasks)}: ${b.reason}`).join('; ');
  return el(
    'tr',
    { dataset: { queue: q.queue } },
    el('td', { text: q.queue }),
    el('td', { text: depth(q) }),
    el('td', { text: fmtNum(q.running) }),
    el('td', { text: q.controls.paused ? 'paused' : 'running', class: q.controls.paused ? 'warn' : '' }),
    el('td', { text: q.controls.rateLimit === null ? '–' : String(q.controls.rateLimit) }),
    el('td', { text: q.controls.concurrency === null ? '–' : String(q.controls.concurrency) }),
    el('td', {
      text: q.servedBy.length ? fmtNum(q.servedBy.length) : 'none',
      title: q.servedBy.length ? q.servedBy.join(', ') : 'no live worker serves this queue: its tasks wait',
      class: q.servedBy.length ? '' : 'warn',
    }),
    el('td', { text: why || (q.problem ? `controls not valid: ${q.problem}` : ''), title: why }),
    el(
      'td',
      { class: 'actions' },
      controlButton(
        q.controls.paused ? 'Resume' : 'Pause',
        '',
        () => postControl(`/api/queues/${name}/${q.controls.paused ? 'resume' : 'pause'}`),
        q.controls.paused ? 'queue-resume' : 'queue-pause',
      ),
      controlButton('Limits', '', () => setLimits(q), 'queue-set'),
    ),
  );
}

export function renderQueues(queues) {
  $('#queues-count').textContent = queues.length ? String(queues.length) : '';
  $('#queues-empty').hidden = queues.length > 0;
  setChildren($('#queues'), ...queues.map(row));
}
