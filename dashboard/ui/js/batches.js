// @ts-check
// Batches: a tenant's batches (GET /v1/batches) with progress and speed, and a batch page with a
// live progress bar, a rows/s chart over time, the first error lines, downloads and cancel.
import { api, call, downloadLink, firstLines } from './api.js';
import { badge, bar, fmtAge, fmtNum, fmtTime, h, kv, put, table } from './dom.js';
import { lineChart } from './charts.js';
import { currentSession, errorBox, poll } from './live.js';

const FINAL = ['completed', 'failed', 'cancelled', 'expired'];
// An upload still arriving has no total yet (null): the rows scored so far.
const rowsDone = (b) =>
  b.requestCounts.total === null
    ? b.requestCounts.completed + b.requestCounts.failed
    : b.status === 'completed'
      ? b.requestCounts.total
      : Math.round(b.progress * b.requestCounts.total);

/** Average rows/s since the batch started (to its end once it is final). */
function averageRate(b) {
  if (!b.startedAt) return null;
  const end = b.completedAt ? Date.parse(b.completedAt) : Date.now();
  const s = (end - Date.parse(b.startedAt)) / 1000;
  return s > 0 ? rowsDone(b) / s : null;
}

export function list() {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', {}, h('h1', {}, 'Batches'), body);
  const stop = poll(
    1500,
    async () => {
      const { data, total } = await api('/v1/batches?limit=100');
      if (!data.length) return void put(body, h('p', { class: 'muted' }, 'No batches yet: POST /v1/batches with a JSONL or CSV file.'));
      put(
        body,
        h('p', { class: 'muted' }, `${total} batch${total === 1 ? '' : 'es'}${total > data.length ? `, newest ${data.length} shown` : ''}`),
        table(
          ['Batch', 'Status', 'Model', 'Rows', 'Progress', 'rows/s', 'Failed rows', 'Created'],
          data.map((b) =>
            h(
              'tr',
              { 'data-batch': b.id },
              h('td', {}, h('a', { href: `#/batches/${b.id}`, class: 'mono' }, b.id)),
              h('td', {}, badge(b.status)),
              h('td', {}, `${b.model.name}@${b.model.version}`),
              h('td', { class: 'num' }, fmtNum(b.requestCounts.total)),
              h('td', {}, bar(b.progress)),
              h('td', { class: 'num' }, fmtNum(averageRate(b), 3)),
              h('td', { class: 'num' }, fmtNum(b.requestCounts.failed)),
              h('td', {}, fmtAge(b.createdAt)),
            ),
          ),
        ),
      );
    },
    (e) => put(body, errorBox(e)),
  );
  return { el, stop };
}

export function batch(id) {
  const head = h('div');
  const chart = lineChart({ title: 'rows/s', series: [{ label: 'rows/s' }], y: 'rows/s', id: 'chart-rate' });
  const errors = h('div', { 'data-section': 'errors' });
  const note = h('p', { class: 'muted' });
  const el = h(
    'section',
    {},
    h('h1', {}, h('a', { href: '#/batches' }, 'Batches'), ' / ', h('span', { class: 'mono' }, id)),
    head,
    h('h2', {}, 'Speed'),
    note,
    chart.el,
    errors,
  );
  const samples = { t: [], rate: [] };
  let prev = null;
  let errorsShownFor = -1;
  let cancelMessage = null;

  async function cancel(ev) {
    ev.target.disabled = true;
    try {
      await call(`/api/v1/batches/${id}/cancel`, { method: 'POST' });
      cancelMessage = null;
    } catch (e) {
      cancelMessage = errorBox(e);
    }
  }

  const stop = poll(
    1000,
    async () => {
      const b = await api(`/v1/batches/${id}`);
      const now = Date.now() / 1000;
      const done = rowsDone(b);
      if (prev && now > prev.t && (!FINAL.includes(b.status) || done !== prev.done)) {
        samples.t.push(now);
        samples.rate.push((done - prev.done) / (now - prev.t));
        chart.update([samples.t, samples.rate]);
      }
      prev = { t: now, done };
      if (!samples.t.length) chart.update([[], []]);
      note.textContent =
        samples.t.length || !FINAL.includes(b.status) ? '' : 'rows/s is sampled while this page is open; the batch had ended before. Its average is above.';
      const mayCancel = currentSession()?.canSubmit && ['queued', 'running'].includes(b.status);
      const enc = encodeURIComponent(b.model.name);
      put(
        head,
        h(
          'div',
          { class: 'actions' },
          badge(b.status),
          h('span', {}, `model `, h('a', { href: `#/models/${enc}/versions/${b.model.version}` }, `${b.model.name}@${b.model.version}`)),
        ),
        bar(b.progress, true),
        h(
          'div',
          { class: 'actions' },
          downloadLink(`/v1/batches/${id}/output`, 'Output (JSONL)', { 'data-download': 'output' }),
          downloadLink(`/v1/batches/${id}/output?format=csv`, 'Output (CSV)', { 'data-download': 'output-csv' }),
          downloadLink(`/v1/batches/${id}/errors`, 'Errors (JSONL)', { 'data-download': 'errors' }),
          mayCancel ? h('button', { class: 'danger', type: 'button', id: 'cancel', onclick: cancel }, 'Cancel batch') : null,
        ),
        cancelMessage,
        h(
          'div',
          { class: 'grid' },
          kv(
            [
              ['Rows', h('span', { 'data-count': 'total' }, fmtNum(b.requestCounts.total))],
              ['Completed rows', h('span', { 'data-count': 'completed' }, fmtNum(b.requestCounts.completed))],
              ['Failed rows', h('span', { 'data-count': 'failed' }, fmtNum(b.requestCounts.failed))],
              ['Chunks', `${b.chunks.done} / ${b.chunks.total}`],
              ['Average rows/s', fmtNum(averageRate(b), 3)],
            ],
            { 'data-section': 'counts' },
          ),
          kv([
            ['Format', b.format],
            ['Created', fmtTime(b.createdAt)],
            ['Started', fmtTime(b.startedAt)],
            ['Finished', fmtTime(b.completedAt)],
            ['Expires', fmtTime(b.expiresAt)],
            b.error ? ['Error', h('span', { class: 'error' }, b.error)] : null,
            ...Object.entries(b.metadata ?? {}).map(([k, v]) => [`metadata.${k}`, v]),
          ]),
        ),
      );
      // The error file can be large: read its first lines once per change in the failed count.
      if (b.requestCounts.failed > 0 && b.requestCounts.failed !== errorsShownFor) {
        errorsShownFor = b.requestCounts.failed;
        const lines = await firstLines(`/v1/batches/${id}/errors`, 10);
        put(errors, h('h2', {}, `First error lines (${fmtNum(b.requestCounts.failed)} failed rows)`), h('pre', { class: 'lines' }, lines.join('\n')));
      }
    },
    (e) => put(head, errorBox(e)),
  );
  return { el, stop };
}
