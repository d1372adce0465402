// @ts-check
// Tiny DOM and formatting helpers for the dashboard's pages: h() builds elements (text is always
// text, never parsed as HTML, so names and error lines from the API cannot inject markup).

export function h(tag, attrs = {}, ...children) {
  const ns = tag.startsWith('svg:') ? 'http://www.w3.org/2000/svg' : null;
  const el = ns ? document.createElementNS(ns, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const table = (head, rows, attrs = {}) =>
  h(
    'table',
    attrs,
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        head.map((c) => (typeof c === 'string' ? h('th', {}, c) : c)),
      ),
    ),
    h('tbody', {}, rows),
  );

/** A two-column table of label -> value. */
export const kv = (pairs, attrs = {}) =>
  h(
    'table',
    { class: 'kv', ...attrs },
    h(
      'tbody',
      {},
      pairs.filter(Boolean).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v ?? '—'))),
    ),
  );

export const badge = (s) => h('span', { class: `badge ${s}`, 'data-status': s }, s);

export function bar(fraction, big = false) {
  const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
  return h(
    'div',
    { class: `bar${big ? ' big' : ''}`, 'data-progress': (fraction || 0).toFixed(4) },
    h('span', { style: `width:${pct.toFixed(1)}%` }),
    h('em', {}, `${pct.toFixed(pct < 10 && pct > 0 ? 1 : 0)}%`),
  );
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function fmtNum(n, digits = 4) {
  if (n === undefined || n === null || Number.isNaN(n)) return '—';
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return Number(n.toPrecision(digits)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

export function fmtAge(iso) {
  if (!iso) return '—';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export const shortSha = (sha) => h('code', { title: sha, 'data-sha256': sha }, `${sha.slice(0, 12)}…`);

export const signature = (tensors) => tensors.map((t) => `${t.name}: ${t.datatype}[${t.shape.map((d) => (d < 0 ? '?' : d)).join(',')}]`).join(', ');

/** Replaces the children of `el` with `nodes`. */
export function put(el, ...nodes) {
  el.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  return el;
}
