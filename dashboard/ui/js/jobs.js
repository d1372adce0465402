// @ts-check
// Jobs: a tenant's training and compression jobs (the dashboard's /ui/jobs index), a training
// job's loss and validation curves per epoch (live while it runs), and a compression job's
// before/after report, all from GET /v1/jobs/{id}.
import { api, call } from './api.js';
import { badge, fmtAge, fmtBytes, fmtNum, fmtTime, h, kv, put, table } from './dom.js';
import { lineChart } from './charts.js';
import { currentSession, errorBox, poll } from './live.js';

const versionLink = (m) =>
  h('a', { href: `#/models/${encodeURIComponent(m.name)}/versions/${m.version}`, 'data-version-link': `${m.name}@${m.version}` }, `${m.name}@${m.version}`);

export function list() {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', {}, h('h1', {}, 'Jobs'), body);
  const stop = poll(
    2000,
    async () => {
      const { data } = await call('/ui/jobs');
      if (!data.length) return void put(body, h('p', { class: 'muted' }, 'No jobs yet: POST /v1/jobs/train or /v1/jobs/compress.'));
      put(
        body,
        table(
          ['Job', 'Kind', 'State', 'From', 'Registers as', 'Progress', 'Result', 'Created'],
          data.map((j) =>
            h(
              'tr',
              { 'data-job': j.id },
              h('td', {}, h('a', { href: `#/jobs/${j.id}`, class: 'mono' }, j.id)),
              h('td', {}, j.kind, j.method ? ` (${j.method})` : ''),
              h('td', {}, badge(j.state)),
              h('td', { class: 'mono' }, j.source ?? '—'),
              h('td', {}, j.registerAs ?? '—'),
              h('td', {}, j.epoch !== undefined ? `epoch ${j.epoch} / ${j.epochs}` : '—'),
              h('td', {}, j.result ? versionLink(j.result) : '—'),
              h('td', {}, fmtAge(j.createdAt)),
            ),
          ),
        ),
      );
    },
    (e) => put(body, errorBox(e)),
  );
  return { el, stop };
}

export function job(id) {
  const head = h('div');
  const detail = h('div');
  const el = h('section', {}, h('h1', {}, h('a', { href: '#/jobs' }, 'Jobs'), ' / ', h('span', { class: 'mono' }, id)), head, detail);
  let view = null;
  const stop = poll(
    1500,
    async () => {
      const j = await api(`/v1/jobs/${id}`);
      const mayCancel = currentSession()?.canSubmit && ['queued', 'active'].includes(j.state);
      put(
        head,
        h(
          'div',
          { class: 'actions' },
          badge(j.state),
          h('span', {}, j.kind),
          mayCancel
            ? h(
                'button',
                {
                  class: 'danger',
                  type: 'button',
                  id: 'cancel',
                  onclick: () => call(`/api/v1/jobs/${id}/cancel`, { method: 'POST' }).catch((e) => alert(e.message)),
                },
                'Cancel job',
              )
            : null,
        ),
        j.error ? h('p', { class: 'error' }, `${j.error.code}: ${j.error.message}`) : null,
        j.lastError ? h('p', { class: 'muted' }, `retrying after: ${j.lastError.message}`) : null,
        kv([
          ['Created', fmtTime(j.createdAt)],
          ['Started', fmtTime(j.startedAt)],
          ['Finished', fmtTime(j.finishedAt)],
          ['Attempts', fmtNum(j.attempts)],
        ]),
      );
      view ??= j.kind === 'train' ? trainView(detail) : compressView(detail);
      view(j);
    },
    (e) => put(head, errorBox(e)),
  );
  return { el, stop };
}

/** Curves per epoch from job.progress.curve (the processor writes it after every epoch). */
function trainView(detail) {
  const loss = lineChart({
    title: 'Loss per epoch',
    series: [{ label: 'training loss' }, { label: 'validation loss' }],
    x: 'epoch',
    y: 'loss',
    id: 'chart-loss',
  });
  const metric = lineChart({ title: 'Validation metric per epoch', series: [{ label: 'validation metric' }], x: 'epoch', id: 'chart-metric' });
  const info = h('div');
  put(detail, h('h2', {}, 'Curves'), h('div', { class: 'grid' }, loss.el, metric.el), info);
  let drawn = -1;
  return (j) => {
    const p = j.progress ?? {};
    const curve = p.curve ?? [];
    if (curve.length !== drawn) {
      drawn = curve.length;
      loss.update([curve.map((c) => c.epoch), curve.map((c) => c.loss), curve.map((c) => c.valLoss)]);
      metric.update([curve.map((c) => c.epoch), curve.map((c) => c.valMetric)]);
      metric.el.querySelector('.u-title').textContent = `Validation ${p.metric ?? 'metric'} per epoch`;
    }
    const hp = j.spec?.hyperparameters ?? {};
    put(
      info,
      h(
        'div',
        { class: 'grid' },
        h(
          'div',
          {},
          h('h2', {}, 'Progress'),
          kv([
            ['Epoch', p.epoch !== undefined ? `${p.epoch} / ${p.epochs}` : '—'],
            ['Best epoch', fmtNum(p.bestEpoch)],
            [`Validation ${p.metric ?? 'metric'}`, fmtNum(p.valMetric)],
            ['Dataset', h('span', { class: 'mono' }, j.spec?.dataset?.id ?? '—')],
            ['Registers as', j.spec?.registerAs ?? '—'],
          ]),
        ),
        j.result
          ? h(
              'div',
              {},
              h('h2', {}, 'Result'),
              kv(
                [
                  ['Version', versionLink(j.result.model)],
                  ...Object.entries(j.result.metrics ?? {}).map(([k, v]) => [k, h('span', { 'data-metric': k, 'data-value': v }, fmtNum(v))]),
                  ['Epochs run', fmtNum(j.result.epochsRun)],
                  ['Stopped early', j.result.stoppedEarly ? 'yes' : 'no'],
                ],
                { 'data-section': 'result' },
              ),
            )
          : null,
      ),
      h('h2', {}, 'Hyperparameters'),
      kv(
        Object.entries(hp).map(([k, v]) => [k, h('span', { class: 'mono', 'data-hp': k }, typeof v === 'object' ? JSON.stringify(v) : String(v))]),
        { 'data-section': 'hyperparameters' },
      ),
    );
  };
}

/** The compression report: one row per figure, before and after, with the raw values in data-*. */
function compressView(detail) {
  return (j) => {
    const spec = j.spec ?? {};
    const r = j.result?.report;
    const cell = (field, v, fmt = fmtNum) => h('td', { class: 'num', 'data-field': field, 'data-value': v ?? '' }, v === undefined ? '—' : fmt(v));
    const row = (label, before, after, fb, fa, fmt) =>
      h(
        'tr',
        {},
        h('th', {}, label),
        cell(fb, before, fmt),
        cell(fa, after, fmt),
        h('td', { class: 'num' }, before && after !== undefined ? `${fmtNum(after / before, 3)}×` : ''),
      );
    const ds = r?.dataset;
    const data = r?.verdict?.data ?? 'generated';
    // Reports from before verdict.data named generated inputs "samples".
    const on = data === 'dataset' ? 'dataset' : data === 'samples' ? 'uploaded samples' : 'generated inputs';
    const one = (label, field, v) => h('tr', {}, h('th', {}, label), h('td'), cell(field, v), h('td'));
    put(
      detail,
      h('h2', {}, 'Versions'),
      kv([
        ['Parent', spec.model ? versionLink(spec.model) : '—'],
        ['Result', j.result?.model ? versionLink(j.result.model) : '—'],
        ['Method', h('span', { class: 'mono' }, `${spec.method}${spec.options && Object.keys(spec.options).length ? ` ${JSON.stringify(spec.options)}` : ''}`)],
        ['Dataset', spec.dataset ? h('span', { class: 'mono' }, spec.dataset.id) : '—'],
      ]),
      h('h2', {}, 'Report'),
      r?.verdict
        ? h(
            'p',
            { 'data-section': 'measured-on', 'data-data': data, class: data === 'generated' ? 'notice' : 'muted' },
            `Measured on ${r.verdict.source ?? `${fmtNum(r.verdict.rows)} rows of ${on}`}`,
            data === 'generated' ? ': generated inputs, not your data; give a dataset or samples to measure on real rows.' : '.',
          )
        : null,
      r?.verdict?.slower
        ? h(
            'p',
            { class: 'notice', 'data-warning': 'slower' },
            'Slower than its parent at batch 1 and at batch ',
            String(r.batchSize),
            j.spec?.allowSlower ? ': registered because the request set allowSlower.' : '.',
          )
        : null,
      r
        ? h(
            'table',
            { 'data-section': 'report', class: 'kv' },
            h(
              'thead',
              {},
              h('tr', {}, h('th', {}, ''), h('th', { class: 'num' }, 'before'), h('th', { class: 'num' }, 'after'), h('th', { class: 'num' }, 'ratio')),
            ),
            h(
              'tbody',
              {},
              // Agreement on the dataset leads when there is one; the figures on the measuring data
              // say which data that was (generated inputs are not the user's data).
              ds?.accuracyBefore !== undefined
                ? row(`Accuracy (${fmtNum(ds.rows)} dataset rows)`, ds.accuracyBefore, ds.accuracyAfter, 'dataset.accuracyBefore', 'dataset.accuracyAfter')
                : null,
              ds?.rmseBefore !== undefined
                ? row(`RMSE (${fmtNum(ds.rows)} dataset rows)`, ds.rmseBefore, ds.rmseAfter, 'dataset.rmseBefore', 'dataset.rmseAfter')
                : null,
              ds?.argmaxAgreement !== undefined ? one('Argmax agreement (dataset)', 'dataset.argmaxAgreement', ds.argmaxAgreement) : null,
              ds ? one('Max abs diff (dataset)', 'dataset.maxAbsDiff', ds.maxAbsDiff) : null,
              r.argmaxAgreement !== undefined ? one(`Argmax agreement (${on})`, 'argmaxAgreement', r.argmaxAgreement) : null,
              one(`Max abs diff (${on})`, 'maxAbsDiff', r.maxAbsDiff),
              r.cosine !== undefined ? one(`Cosine of outputs (${on})`, 'cosine', r.cosine) : null,
              row('Size', r.bytesBefore, r.bytesAfter, 'bytesBefore', 'bytesAfter', fmtBytes),
              row(`rows/s (batch ${r.batchSize})`, r.rowsPerSecondBefore, r.rowsPerSecondAfter, 'rowsPerSecondBefore', 'rowsPerSecondAfter'),
              r.rowsPerSecondBatch1Before !== undefined
                ? row('rows/s (batch 1)', r.rowsPerSecondBatch1Before, r.rowsPerSecondBatch1After, 'rowsPerSecondBatch1Before', 'rowsPerSecondBatch1After')
                : null,
            ),
          )
        : h('p', { class: 'muted' }, j.state === 'failed' ? 'No report: the job failed.' : 'The report appears when the job completes.'),
    );
  };
}
