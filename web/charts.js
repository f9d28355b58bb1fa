// The three charts (uPlot, loaded as a classic script before the modules): queue depth and in flight,
// throughput, latency. Ten minutes of one point a second.

import { $, clock, fmtMs, fmtNum, fmtRate } from './dom.js';
import { state } from './state.js';

const uPlot = globalThis.uPlot;
const HISTORY_SECONDS = 600;

const AXIS = {
  stroke: '#8a99ad',
  grid: { stroke: '#1c2838', width: 1 },
  ticks: { stroke: '#1c2838', width: 1 },
  font: '11px system-ui, sans-serif',
};

function chartOptions(series, yFormat) {
  return {
    width: 400,
    height: 200,
    padding: [8, 8, 0, 0],
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    legend: { live: true },
    scales: {
      x: { time: true },
      y: { range: (_u, _min, max) => [0, Math.max(max * 1.1, yFormat === fmtMs ? 10 : 1)] },
    },
    axes: [
      { ...AXIS, space: 70 },
      { ...AXIS, size: 56, values: (_u, vals) => vals.map((v) => (yFormat ? yFormat(v) : fmtNum(v, 1))) },
    ],
    series: [{ value: (_u, v) => (v ? clock(v * 1000) : '–') }, ...series],
  };
}

function line(label, stroke, extra = {}) {
  return { label, stroke, width: 2, points: { show: false }, spanGaps: false, ...extra };
}

export function makeCharts() {
  if (!uPlot) return;
  const d = state.data;
  const defs = {
    queue: {
      node: $('#chart-queue'),
      series: [
        line('Queued', '#4a9eff', { fill: 'rgba(74,158,255,0.14)', value: (_u, v) => fmtNum(v) }),
        line('In flight', '#2bc4d8', { value: (_u, v) => fmtNum(v) }),
      ],
      data: () => [d.t, d.queue, d.inFlight],
    },
    rate: {
      node: $('#chart-rate'),
      series: [
        line('Finished/s', '#3ecf8e', { fill: 'rgba(62,207,142,0.12)', value: (_u, v) => fmtRate(v) }),
        line('Failed/s', '#ff5d6c', { value: (_u, v) => fmtRate(v) }),
      ],
      data: () => [d.t, d.rate, d.failRate],
    },
    latency: {
      node: $('#chart-latency'),
      series: [
        line('p50', '#3ecf8e', { value: (_u, v) => fmtMs(v) }),
        line('p95', '#f5b841', { value: (_u, v) => fmtMs(v) }),
        line('p99', '#ff5d6c', { value: (_u, v) => fmtMs(v) }),
        line('run p50', '#8a99ad', { dash: [4, 4], width: 1.5, value: (_u, v) => fmtMs(v) }),
      ],
      data: () => [d.t, d.p50, d.p95, d.p99, d.run50],
      format: fmtMs,
    },
  };
  for (const [name, def] of Object.entries(defs)) {
    const chart = new uPlot(chartOptions(def.series, def.format), def.data(), def.node);
    state.charts[name] = { chart, data: def.data, node: def.node };
    sizeChart(state.charts[name]);
  }
  const ro = new ResizeObserver(() => {
    for (const c of Object.values(state.charts)) sizeChart(c);
  });
  for (const c of Object.values(state.charts)) ro.observe(c.node);
}

function sizeChart(c) {
  const legend = c.node.querySelector('.u-legend');
  const h = Math.max(120, c.node.clientHeight - (legend?.offsetHeight ?? 24));
  c.chart.setSize({ width: Math.max(200, c.node.clientWidth), height: h });
}

export function addPoint(p, redraw) {
  const d = state.data;
  if (d.t.length && p.t <= d.t[d.t.length - 1]) return;
  d.t.push(p.t);
  d.queue.push(p.queue);
  d.inFlight.push(p.inFlight);
  d.rate.push(p.rate);
  d.failRate.push(p.failRate);
  d.p50.push(p.p50);
  d.p95.push(p.p95);
  d.p99.push(p.p99);
  d.run50.push(p.run50);
  const cutoff = p.t - HISTORY_SECONDS;
  while (d.t.length && d.t[0] < cutoff) for (const k of Object.keys(d)) d[k].shift();
  if (redraw) redrawCharts();
}

export function redrawCharts() {
  for (const c of Object.values(state.charts)) {
    c.chart.setData(c.data());
    // The legend shows the newest values unless the cursor is over the chart.
    const n = state.data.t.length;
    if (n > 0 && !(c.chart.cursor.left >= 0)) c.chart.setLegend({ idx: n - 1 });
  }
}
