// @ts-check
// The dashboard's shell: asks for a key when the platform has keys, routes #/... to a page, and
// keeps the page live by polling (paused while the tab is hidden). Each page's render() returns
// its stop function; leaving the page stops its polling.
import { ApiError, call, forgetKey, getKey, onUnauthorized, setKey } from './api.js';
import { h, put } from './dom.js';
import { session } from './live.js';
import * as batches from './batches.js';
import * as datasets from './datasets.js';
import * as jobs from './jobs.js';
import * as models from './models.js';
import * as workers from './workers.js';

const main = document.getElementById('main');
const dialog = /** @type {HTMLDialogElement} */ (document.getElementById('key-dialog'));

/** @type {[RegExp, (m: string[]) => { el: Node, stop?: () => void }][]} */
const ROUTES = [
  [/^#\/models\/([^/]+)\/versions\/(\d+)$/, (m) => models.version(m[1], Number(m[2]))],
  [/^#\/models\/([^/]+)$/, (m) => models.model(m[1])],
  [/^#\/models$/, () => models.list()],
  [/^#\/batches\/([\w-]+)$/, (m) => batches.batch(m[1])],
  [/^#\/batches$/, () => batches.list()],
  [/^#\/jobs\/([\w-]+)$/, (m) => jobs.job(m[1])],
  [/^#\/jobs$/, () => jobs.list()],
  [/^#\/datasets\/([\w-]+)$/, (m) => datasets.dataset(m[1])],
  [/^#\/datasets$/, () => datasets.list()],
  [/^#\/workers$/, () => workers.list()],
];

let stopPage = () => {};

function route() {
  stopPage();
  const hash = location.hash || '#/models';
  for (const a of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('header nav a[data-nav]')))
    a.classList.toggle('active', hash.startsWith(`#/${a.dataset.nav}`));
  for (const [re, page] of ROUTES) {
    const m = re.exec(hash);
    if (m) {
      const { el, stop } = page(m.map(decodeURIComponent));
      put(main, el);
      stopPage = stop ?? (() => {});
      return;
    }
  }
  put(main, h('p', { class: 'error' }, `no page ${hash}`));
  stopPage = () => {};
}

function askForKey(message = '') {
  document.getElementById('key-error').textContent = message;
  if (!dialog.open) dialog.showModal();
  document.getElementById('key-input').focus();
}

async function loadSession() {
  try {
    session.value = await call('/ui/session');
  } catch (e) {
    session.value = null;
    if (e instanceof ApiError && e.status === 401) return false;
    throw e;
  }
  const s = session.value;
  document.getElementById('who').textContent = s.keysRequired ? `tenant ${s.tenant} · ${s.scopes.join(', ')}` : 'open platform (no API keys)';
  document.getElementById('forget-key').hidden = !getKey();
  // Workers and bull-board cover every tenant: shown only to keys that may open them.
  for (const id of ['workers-link', 'queues-link']) document.getElementById(id).hidden = !s.platform;
  return true;
}

document.getElementById('key-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = /** @type {HTMLInputElement} */ (document.getElementById('key-input'));
  setKey(input.value.trim());
  if (await loadSession()) {
    input.value = '';
    dialog.close();
    route();
  } else {
    forgetKey();
    askForKey('That key is not known to this platform.');
  }
});
document.getElementById('forget-key').addEventListener('click', () => {
  forgetKey();
  location.reload();
});
onUnauthorized(() => askForKey(getKey() ? 'The key was refused; enter another.' : ''));
dialog.addEventListener('cancel', (ev) => ev.preventDefault()); // no page works without a key

window.addEventListener('hashchange', route);
if (await loadSession()) route();
else askForKey();
