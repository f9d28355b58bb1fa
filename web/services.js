// The services panel: every service's instances (where, state, restarts, endpoint, logs, and why one
// cannot be placed), read from /api/services every 2 s. Hidden while the farm has no service.

import { $, ago, el, setChildren } from './dom.js';

async function refresh() {
  const res = await fetch('/api/services').catch(() => undefined);
  if (!res?.ok) return;
  render(await res.json());
}

function render(services) {
  const panel = $('#services-panel');
  panel.hidden = services.length === 0;
  $('#services-count').textContent = services.length ? `${services.length}` : '';
  const rows = [];
  for (const s of services) {
    const rollout = s.status?.rollout;
    const unplaced = s.unplaced?.length ?? 0;
    const note =
      (rollout && rollout.state !== 'done'
        ? ` · update to revision ${rollout.revision} ${rollout.state}`
        : '') + (unplaced ? ` · ${unplaced} cannot be placed` : '');
    rows.push(
      el(
        'tr',
        { class: 'service-row', dataset: { service: s.name } },
        el('th', {
          colspan: 7,
          text: `${s.name}: ${s.healthy}/${s.desired} healthy, ${s.running} running, ${s.restarts} restarts, revision ${s.record.revision}${note}`,
        }),
      ),
    );
    if (rollout?.state === 'failed')
      rows.push(el('tr', {}, el('td', { colspan: 7, class: 'reason', text: rollout.reason ?? '' })));
    for (const i of s.instances) {
      const failed = i.placement?.state === 'failed';
      const run = i.run;
      const state = failed ? 'failed' : (run?.state ?? (i.placement ? 'placed' : 'unplaced'));
      const reason = failed
        ? i.placement.reason
        : i.unplaced
          ? `cannot be placed: ${i.unplaced.reason}`
          : (run?.reason ?? run?.lastExit);
      rows.push(
        el(
          'tr',
          { dataset: { instance: `${s.name}.${i.instance}` } },
          el('td', { text: String(i.instance) }),
          el('td', { text: run ? `${run.worker} on ${run.host}` : (i.placement?.worker ?? '–') }),
          el('td', { class: `state ${state}`, text: state }),
          el('td', { text: String(run?.restarts ?? 0) }),
          el('td', {
            text: i.endpoint
              ? Object.entries(i.endpoint.ports)
                  .map(([k, p]) => `${k} ${p}`)
                  .join(', ') || 'yes'
              : '–',
          }),
          el('td', { class: 'mono', text: run?.logDir ?? '–' }),
          el('td', {
            class: 'reason',
            text: reason ?? (run ? `since ${ago(run.since)}` : ''),
          }),
        ),
      );
    }
  }
  setChildren($('#services'), rows);
}

export function startServicesPanel() {
  void refresh();
  setInterval(() => void refresh(), 2000);
}
