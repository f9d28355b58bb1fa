// DOM and formatting helpers. Everything is set with textContent: task data never becomes HTML.

export const $ = (sel, root = document) => root.querySelector(sel);

/** replaceChildren without the nulls of optional items. */
export function setChildren(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

/** Make an element: el('div', {class: 'x', dataset: {a: 1}, onclick}, child, 'text', ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  if (Math.abs(n) >= 10_000) return `${(n / 1000).toFixed(n >= 100_000 ? 0 : 1)}k`;
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function fmtRate(n) {
  if (n === null || n === undefined) return '–';
  return n >= 100 ? fmtNum(Math.round(n)) : fmtNum(n, n >= 10 ? 1 : 2);
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms === 0) return '0';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${(ms / 60_000).toFixed(1)} min`;
}

/** A latency as a value and a unit, for the big number. */
export function msParts(ms) {
  if (ms === null || ms === undefined) return ['–', ''];
  if (ms < 1000) return [String(Math.round(ms)), 'ms'];
  if (ms < 60_000) return [(ms / 1000).toFixed(ms < 10_000 ? 2 : 1), 's'];
  return [(ms / 60_000).toFixed(1), 'min'];
}

export function ago(ms) {
  if (!ms) return '';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour12: false });
}

export function toast(message, kind = '') {
  const t = el('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', text: message });
  $('#toasts').append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}
