// @ts-check
// Models: the registry's models and versions (GET /v1/models...), a model's serving config and
// readiness, and a version page with its metrics, signature, download, model card and lineage graph.
import { api, downloadLink } from './api.js';
import { badge, fmtAge, fmtBytes, fmtNum, fmtTime, h, kv, put, shortSha, signature, table } from './dom.js';
import { cardSection } from './card.js';
import { lineageGraph } from './lineage.js';
import { pipelineGraph } from './pipeline.js';
import { liveSection, rolloutsSection, splitText } from './rollouts.js';
import { errorBox, poll } from './live.js';

const versionHref = (name, v) => `#/models/${encodeURIComponent(name)}/versions/${v}`;
const aliasesOf = (m, v) =>
  Object.entries(m.aliases)
    .filter(([, n]) => n === v)
    .map(([a]) => a);

export function list() {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', {}, h('h1', {}, 'Models'), body);
  const stop = poll(
    3000,
    async () => {
      const { models } = await api('/v1/models');
      if (!models.length)
        return void put(body, h('p', { class: 'muted' }, 'No models yet: upload one (POST /v1/models/{name}/versions) or train one (POST /v1/jobs/train).'));
      put(
        body,
        table(
          ['Model', 'Versions', 'latest', 'Aliases', 'Size (latest)', 'Created (latest)', 'Owner'],
          models.map((m) => {
            const latest = m.versions.find((v) => v.version === m.aliases.latest) ?? m.versions.at(-1);
            return h(
              'tr',
              { 'data-model': m.name },
              h('td', {}, h('a', { href: `#/models/${encodeURIComponent(m.name)}` }, m.name)),
              h('td', { class: 'num' }, m.versions.length),
              h('td', {}, latest ? h('a', { href: versionHref(m.name, latest.version) }, `v${latest.version}`) : '—'),
              h(
                'td',
                {},
                Object.entries(m.aliases)
                  .map(([a, v]) => `${a}→v${v}`)
                  .join(', '),
              ),
              h('td', { class: 'num' }, latest ? fmtBytes(latest.bytes) : '—'),
              h('td', {}, latest ? fmtAge(latest.createdAt) : '—'),
              h('td', {}, m.owner, m.shared ? ' (shared)' : ''),
            );
          }),
        ),
      );
    },
    (e) => put(body, errorBox(e)),
  );
  return { el, stop };
}

export function model(name) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', {}, h('h1', {}, h('a', { href: '#/models' }, 'Models'), ' / ', name), body);
  const stop = poll(
    3000,
    async () => {
      const enc = encodeURIComponent(name);
      const [m, config, ready, rollouts] = await Promise.all([
        api(`/v1/models/${enc}`),
        api(`/v1/models/${enc}/config`),
        api(`/v2/models/${enc}/ready`).then(
          () => ({ ready: true, why: '' }),
          (e) => ({ ready: false, why: e.message }),
        ),
        rolloutsSection(name).catch((e) => [h('h2', {}, 'Rollouts'), errorBox(e)]),
      ]);
      const live = await liveSection(name, m).catch((e) => [h('h2', {}, 'Live comparison'), errorBox(e)]);
      put(
        body,
        h(
          'div',
          { class: 'grid' },
          kv(
            [
              ['Owner', `${m.owner}${m.shared ? ' (shared with every tenant)' : ' (private)'}`],
              ['Readiness', h('span', {}, badge(ready.ready ? 'ready' : 'no'), ready.why ? h('span', { class: 'muted' }, ` ${ready.why}`) : '')],
              [
                'Aliases',
                Object.keys(m.aliases)
                  .map((a) => `${a} → ${splitText(m, a)}`)
                  .join('; ') || '—',
              ],
            ],
            { 'data-section': 'model' },
          ),
          kv(
            [
              ['Serving: maxBatch', fmtNum(config.maxBatch)],
              ['Serving: maxDelayMs', fmtNum(config.maxDelayMs)],
              ['Serving: instances', fmtNum(config.instances)],
            ],
            { 'data-section': 'serving' },
          ),
        ),
        h('h2', {}, 'Versions'),
        table(
          ['Version', 'Aliases', 'sha256', 'Size', 'Created', 'Signature', 'Source'],
          [...m.versions].reverse().map((v) =>
            h(
              'tr',
              { 'data-version': v.version },
              h('td', {}, h('a', { href: versionHref(name, v.version) }, `v${v.version}`)),
              h(
                'td',
                {},
                aliasesOf(m, v.version).map((a) => badge(a)),
              ),
              h('td', {}, shortSha(v.sha256)),
              h('td', { class: 'num' }, fmtBytes(v.bytes)),
              h('td', {}, fmtTime(v.createdAt)),
              h('td', { class: 'mono' }, `in: ${signature(v.inputs)}`, h('br'), `out: ${signature(v.outputs)}`),
              h('td', {}, sourceOf(v)),
            ),
          ),
        ),
        live,
        rollouts,
      );
    },
    (e) => put(body, errorBox(e)),
  );
  return { el, stop };
}

function sourceOf(v) {
  const l = v.lineage ?? {};
  if (l.parent) return `${l.method ?? 'derived'} of ${l.parent.name}@${l.parent.version}`;
  if (l.source === 'train') return `trained on ${l.dataset}`;
  return l.source ?? '—';
}

/** Where a compression's agreement figures were measured, in words ('generated' ones are not the user's data). */
export const measuredOn = (verdict) =>
  verdict?.data === 'dataset' ? 'on the dataset' : verdict?.data === 'samples' ? 'on uploaded samples' : 'on generated inputs';

/** Metrics as rows; a compression report gets its own table on the job page, here its headline figures. */
function metricRows(metrics = {}) {
  const rows = [];
  for (const [k, v] of Object.entries(metrics)) {
    if (k === 'compression' && v && typeof v === 'object') {
      // Agreement on the dataset leads when there is one; other figures say what they were measured on.
      if (v.dataset?.argmaxAgreement !== undefined)
        rows.push(['argmax agreement (dataset)', h('span', { 'data-metric': 'dataset.argmaxAgreement' }, fmtNum(v.dataset.argmaxAgreement))]);
      if (v.dataset?.accuracyBefore !== undefined)
        rows.push(['accuracy before → after (dataset)', `${fmtNum(v.dataset.accuracyBefore)} → ${fmtNum(v.dataset.accuracyAfter)}`]);
      if (v.argmaxAgreement !== undefined && !(v.dataset && v.verdict?.data === 'dataset'))
        rows.push([
          `argmax agreement (${measuredOn(v.verdict).replace(/^on /, '')})`,
          h('span', { 'data-metric': 'argmaxAgreement' }, fmtNum(v.argmaxAgreement)),
        ]);
      if (v.verdict?.source) rows.push(['measured on', h('span', { 'data-metric': 'source' }, v.verdict.source)]);
      rows.push(['bytes before → after', `${fmtBytes(v.bytesBefore)} → ${fmtBytes(v.bytesAfter)}`]);
      rows.push(['rows/s before → after', `${fmtNum(v.rowsPerSecondBefore)} → ${fmtNum(v.rowsPerSecondAfter)}`]);
    } else {
      rows.push([k, typeof v === 'number' ? h('span', { 'data-metric': k, 'data-value': v }, fmtNum(v)) : JSON.stringify(v)]);
    }
  }
  return rows;
}

/**
 * A compression registered although slower than its parent (allowSlower): the worker measured it
 * slower at batch 1 and at its batch size, and says so in verdict.slower.
 */
function slowerNotice(c) {
  if (!c?.verdict?.slower) return null;
  const b1 = c.rowsPerSecondBatch1Before !== undefined ? `, ${fmtNum(c.rowsPerSecondBatch1Before)} → ${fmtNum(c.rowsPerSecondBatch1After)} at batch 1` : '';
  return h(
    'p',
    { class: 'notice', 'data-warning': 'slower' },
    `Slower than its parent: ${fmtNum(c.rowsPerSecondBefore)} → ${fmtNum(c.rowsPerSecondAfter)} rows/s at batch ${c.batchSize}${b1}. `,
    'It was registered because the request set allowSlower.',
  );
}

/** Input drift of sampled online traffic against the version's reference (GET .../drift). */
function driftSection(d) {
  return [
    h('h2', {}, 'Input drift'),
    h(
      'p',
      { class: 'muted' },
      `${fmtNum(d.rows)} sampled rows (window ${fmtNum(d.window)}, sample ${d.sample}); warn at ${d.thresholds.warn}, alert at ${d.thresholds.alert}`,
    ),
    h(
      'div',
      { 'data-section': 'drift' },
      table(
        ['Feature', 'Metric', 'Score', 'Level'],
        d.features.map((f) =>
          h(
            'tr',
            { 'data-drift-feature': f.name },
            h('td', {}, f.name),
            h('td', {}, f.metric === 'psi' ? 'PSI' : 'Jensen-Shannon'),
            h('td', { class: 'num' }, f.score === null ? '—' : fmtNum(f.score)),
            h('td', {}, badge(f.level)),
          ),
        ),
      ),
    ),
  ];
}

export function version(name, n) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const el = h(
    'section',
    {},
    h('h1', {}, h('a', { href: '#/models' }, 'Models'), ' / ', h('a', { href: `#/models/${encodeURIComponent(name)}` }, name), ` / v${n}`),
    body,
  );
  let drawn = '';
  const graphBox = h('div', { 'data-section': 'lineage' });
  const stop = poll(
    3000,
    async () => {
      const enc = encodeURIComponent(name);
      const [v, m] = await Promise.all([api(`/v1/models/${enc}/versions/${n}`), api(`/v1/models/${enc}`)]);
      const all = await api('/v1/models').then(
        (r) => r.models,
        () => [m],
      );
      const drift = v.explain?.reference ? await api(`/v1/models/${enc}/versions/${n}/drift`).catch(() => null) : null;
      const card = await api(`/v1/models/${enc}/versions/${n}/card`).catch(() => null);
      put(
        body,
        slowerNotice(v.metrics?.compression),
        // A pipeline has no ONNX file of its own: its steps are drawn instead.
        v.pipeline
          ? [h('h2', {}, 'Pipeline'), h('div', { 'data-section': 'pipeline' }, pipelineGraph(v.pipeline).svg)]
          : h('div', { class: 'actions' }, downloadLink(`/v1/models/${enc}/versions/${n}/onnx`, `Download ${name}-v${n}.onnx`, { 'data-download': 'onnx' })),
        h(
          'div',
          { class: 'grid pair' },
          kv(
            [
              ['sha256', h('code', { 'data-sha256': v.sha256 }, v.sha256)],
              ['Size', `${fmtBytes(v.bytes)} (${fmtNum(v.bytes)} bytes)`],
              ['Created', fmtTime(v.createdAt)],
              ['Aliases', aliasesOf(m, n).map((a) => badge(a))],
              ['Inputs', h('span', { class: 'mono' }, signature(v.inputs))],
              ['Outputs', h('span', { class: 'mono' }, signature(v.outputs))],
              ...Object.entries(v.metadata ?? {}).map(([k, x]) => [
                `metadata.${k}`,
                h('span', { class: 'mono' }, typeof x === 'string' ? x : JSON.stringify(x)),
              ]),
            ],
            { 'data-section': 'version' },
          ),
          h(
            'div',
            { 'data-panel': 'metrics' },
            h('h2', { style: 'margin-top:0' }, 'Metrics'),
            v.metrics ? kv(metricRows(v.metrics), { 'data-section': 'metrics' }) : h('p', { class: 'muted' }, 'No metrics recorded (an uploaded model).'),
          ),
        ),
        drift ? driftSection(drift) : null,
        card ? cardSection(card, `/v1/models/${enc}/versions/${n}`) : null,
        h('h2', {}, 'Lineage'),
        graphBox,
        v.lineage?.hyperparameters
          ? [
              h('h2', {}, 'Hyperparameters'),
              kv(
                Object.entries(v.lineage.hyperparameters).map(([k, x]) => [
                  k,
                  h('span', { class: 'mono' }, typeof x === 'object' ? JSON.stringify(x) : String(x)),
                ]),
              ),
            ]
          : null,
      );
      // Redraw the graph only when it changes, so a click in progress is not lost.
      const g = await lineageGraph(v, all, (nm, vn) => api(`/v1/models/${encodeURIComponent(nm)}/versions/${vn}`));
      if (g.key !== drawn) {
        drawn = g.key;
        put(graphBox, g.svg);
      }
    },
    (e) => put(body, errorBox(e)),
  );
  return { el, stop };
}
