// @ts-check
// What every page shares: the polling loop that keeps it live, the session (who the key is), and
// how an error is shown.
import { ApiError } from './api.js';
import { h } from './dom.js';

/** The dashboard's /ui/session answer: tenant, scopes, whether keys are required. */
export const session = { value: null };
export const currentSession = () => session.value;

/** Calls `tick` now and every `ms` until stopped; a failing tick shows its error and keeps polling. */
export function poll(ms, tick, onError) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    if (stopped) return;
    if (!document.hidden) {
      try {
        await tick();
      } catch (e) {
        if (!stopped) onError?.(e);
      }
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  void run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export function errorBox(e) {
  const msg = e instanceof ApiError ? `${e.status} ${e.code}: ${e.message}` : String(e?.message ?? e);
  return h('p', { class: 'error', 'data-error': e?.code ?? 'error' }, msg);
}
