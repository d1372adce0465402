// @ts-check
// The dashboard's calls: the producer's API through the dashboard's /api proxy and the dashboard's
// own /ui routes, with the user's key (kept in this tab's sessionStorage only) as a bearer token.

const KEY = 'modelq.apiKey';

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (k) => sessionStorage.setItem(KEY, k);
export const forgetKey = () => sessionStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const listeners = new Set();
/** Called with every 401: the page asks for a key. */
export const onUnauthorized = (fn) => listeners.add(fn);

function headers(extra = {}) {
  const key = getKey();
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

/**
 * @param {string} path
 * @param {{ method?: string, body?: unknown, signal?: AbortSignal }} [options]
 */
export async function call(path, { method = 'GET', body, signal } = {}) {
  // x-modelq-ui: the dashboard's proxy passes on calls that change something only with it.
  /** @type {RequestInit} */
  const init = { method, headers: headers({ 'x-modelq-ui': '1', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: reported below */
  }
  if (!res.ok) {
    const e = json?.error;
    const err = new ApiError(res.status, e?.code ?? 'http_' + res.status, e?.message ?? (typeof e === 'string' ? e : text.slice(0, 300)));
    if (res.status === 401) for (const fn of listeners) fn(err);
    throw err;
  }
  return json;
}

/** GET of the producer's API: api('/v1/models') asks the producer's /v1/models. */
export const api = (path, opts) => call(`/api${path}`, opts);

/** The first `max` lines of a (possibly huge) text response, without reading the rest. */
export async function firstLines(path, max) {
  const ctl = new AbortController();
  const res = await fetch(`/api${path}`, { headers: headers(), signal: ctl.signal });
  if (!res.ok) throw new ApiError(res.status, 'http_' + res.status, `${path}: ${res.status}`);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (value) text += dec.decode(value, { stream: true });
    if (done || text.split('\n').length > max) break;
  }
  ctl.abort();
  return text.split('\n').filter(Boolean).slice(0, max);
}

/**
 * A download link. Without keys it is a plain link; with a key, clicking trades the key for a
 * one-minute ticket for this path (a link cannot carry a header) and follows the ticketed URL.
 */
export function downloadLink(path, label, attrs = {}) {
  const a = document.createElement('a');
  a.href = `/api${path}`;
  a.textContent = label;
  a.className = 'button plain';
  a.setAttribute('download', '');
  for (const [k, v] of Object.entries(attrs)) a.setAttribute(k, v);
  a.addEventListener('click', async (ev) => {
    if (!getKey() || a.dataset.ticketed) return;
    ev.preventDefault();
    try {
      const { ticket } = await call('/ui/tickets', { method: 'POST', body: { path: `/api${path.split('?')[0]}` } });
      const go = document.createElement('a');
      go.href = `/api${path}${path.includes('?') ? '&' : '?'}ticket=${encodeURIComponent(ticket)}`;
      go.setAttribute('download', '');
      go.dataset.ticketed = '1';
      document.body.append(go);
      go.click();
      go.remove();
    } catch (e) {
      alert(`download refused: ${e.message}`);
    }
  });
  return a;
}
