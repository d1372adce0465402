// @ts-check
// Datasets: the tenant's datasets (GET /v1/datasets), and a dataset page with its profile (columns,
// types, missing and distinct counts, text lengths) and what was made from it: the training and
// compression jobs that name it (the /ui/jobs index) and the versions whose lineage names it
// (trained on it, or compressed and measured on it; from GET /v1/models).
import { api, call } from './api.js';
import { badge, fmtAge, fmtBytes, fmtNum, fmtTime, h, kv, put, table } from './dom.js';
import { errorBox, poll } from './live.js';

const datasetHref = (id) => `#/datasets/${encodeURIComponent(id)}`;
const versionHref = (name, v) => `#/models/${encodeURIComponent(name)}/versions/${v}`;

export function list() {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', {}, h('h1', {}, 'Datasets'), body);
  const stop = poll(
    5000,
    async () => {
      const { data, total } = await api('/v1/datasets?limit=100');
      if (!data.length) return void put(body, h('p', { class: 'muted' }, 'No datasets yet: upload one (POST /v1/datasets).'));
      put(
        body,
        table(
          ['Dataset', 'Name', 'Format', 'Rows', 'Columns', 'Size', 'Created'],
          data.map((d) =>
            h(
              'tr',
              { 'data-dataset': d.id },
              h('td', { class: 'mono' }, h('a', { href: datasetHref(d.id) }, d.id)),
              h('td', {}, d.name),
              h('td', {}, d.format),
              h('td', { class: 'num' }, fmtNum(d.rows)),
              h('td', { class: 'num' }, fmtNum(d.columns.length)),
              h('td', { class: 'num' }, fmtBytes(d.bytes)),
              h('td', {}, fmtAge(d.createdAt)),
            ),
          ),
        ),
        total > data.length ? h('p', { class: 'muted' }, `The newest ${data.length} of ${fmtNum(total)}.`) : null,
      );
    },
    (e) => put(body, errorBox(e)),
  );
  return { el, stop };
}

/** One line of statistics for a column: what the profile recorded for it. */
function statsOf(s) {
  if (!s) return '—';
  const parts = [];
  if (s.unique) parts.push('every value different (an identifier?)');
  if (s.length) {
    const c = s.length.chars;
    const t = s.length.tokens;
    parts.push(`chars ${fmtNum(c.min)}–${fmtNum(c.max)} (mean ${fmtNum(c.mean, 3)}), tokens p50 ${fmtNum(t.p50)} p95 ${fmtNum(t.p95)}`);
  }
  return parts.join('; ') || '—';
}

/** The versions whose lineage names `id`: trained on it, or compressed with it as the measuring data. */
function madeFrom(models, id) {
  const out = [];
  for (const m of models)
    for (const v of m.versions ?? []) if (v.lineage?.dataset === id) out.push({ name: m.name, version: v.version, lineage: v.lineage, createdAt: v.createdAt });
  return out;
}

export function dataset(id) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', {}, h('h1', {}, h('a', { href: '#/datasets' }, 'Datasets'), ' / ', id), body);
  const stop = poll(
    5000,
    async () => {
      const [d, models, jobs] = await Promise.all([
        api(`/v1/datasets/${encodeURIComponent(id)}`),
        api('/v1/models').then((r) => r.models),
        // The job index needs the dashboard's Redis; without it the page still shows the profile.
        call('/ui/jobs').then(
          (r) => r.data,
          () => null,
        ),
      ]);
      const stats = new Map(d.stats.map((s) => [s.name, s]));
      const versions = madeFrom(models, id);
      const used = jobs?.filter((j) => j.source === id) ?? null;
      put(
        body,
        kv(
          [
            ['Name', d.name],
            ['Format', d.format],
            ['Rows', fmtNum(d.rows)],
            ['Size', fmtBytes(d.bytes)],
            ['Created', fmtTime(d.createdAt)],
          ],
          { 'data-section': 'dataset' },
        ),
        h('h2', {}, 'Columns'),
        table(
          ['Column', 'Type', h('th', { class: 'num' }, 'Missing'), h('th', { class: 'num' }, 'Distinct'), 'Statistics'],
          d.columns.map((c) => {
            const s = stats.get(c.name);
            return h(
              'tr',
              { 'data-column': c.name, 'data-type': c.type },
              h('td', { class: 'mono' }, c.name),
              h('td', {}, c.type),
              h('td', { class: 'num', 'data-field': 'missing', 'data-value': s?.missing ?? '' }, s ? fmtNum(s.missing) : '—'),
              h(
                'td',
                { class: 'num', 'data-field': 'distinct', 'data-value': s?.distinct ?? '' },
                s ? (s.distinct > 1000 ? 'over 1,000' : fmtNum(s.distinct)) : '—',
              ),
              h('td', {}, statsOf(s)),
            );
          }),
          { 'data-section': 'columns' },
        ),
        h('h2', {}, 'Models made from it'),
        versions.length
          ? table(
              ['Version', 'How', 'Job', 'Created'],
              versions.map((v) =>
                h(
                  'tr',
                  { 'data-made': `${v.name}@${v.version}` },
                  h('td', {}, h('a', { href: versionHref(v.name, v.version) }, `${v.name} v${v.version}`)),
                  h('td', {}, v.lineage.parent ? `${v.lineage.method ?? 'derived'} of ${v.lineage.parent.name} v${v.lineage.parent.version}` : 'trained'),
                  h('td', { class: 'mono' }, v.lineage.job ? h('a', { href: `#/jobs/${v.lineage.job}` }, v.lineage.job) : '—'),
                  h('td', {}, fmtTime(v.createdAt)),
                ),
              ),
              { 'data-section': 'models' },
            )
          : h('p', { class: 'muted', 'data-section': 'models' }, 'No registered version was made from this dataset.'),
        h('h2', {}, 'Jobs that used it'),
        used === null
          ? h('p', { class: 'muted' }, 'The job index is not available on this dashboard.')
          : used.length
            ? table(
                ['Job', 'Kind', 'State', 'Created', 'Result'],
                used.map((j) =>
                  h(
                    'tr',
                    { 'data-job': j.id },
                    h('td', { class: 'mono' }, h('a', { href: `#/jobs/${j.id}` }, j.id)),
                    h('td', {}, j.kind),
                    h('td', {}, badge(j.state)),
                    h('td', {}, fmtAge(j.createdAt)),
                    h('td', {}, j.result ? h('a', { href: versionHref(j.result.name, j.result.version) }, `${j.result.name} v${j.result.version}`) : '—'),
                  ),
                ),
                { 'data-section': 'jobs' },
              )
            : h('p', { class: 'muted', 'data-section': 'jobs' }, 'No training or compression job named this dataset.'),
      );
    },
    (e) => put(body, errorBox(e)),
  );
  return { el, stop };
}
