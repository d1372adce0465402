// A model's traffic split and rollouts on its page: each weighted alias's versions and shadow, each
// rollout's steps, status, last evaluation and audit history, with pause / resume / abort (the
// producer allows them to keys with `publish`; a refusal shows as the error it answers).
import { api } from './api.js';
import { badge, fmtNum, h, table } from './dom.js';

/** "prod → v3 90%, v4 10% (shadow v5 20%)" per weighted alias. */
export const splitText = (m, alias) => {
  const r = m.routes?.[alias];
  if (!r) return `v${m.aliases[alias]}`;
  const parts = r.versions.map((v) => `v${v.version} ${v.weight}%`).join(', ');
  return r.shadow ? `${parts} (shadow v${r.shadow.version} ${Math.round(r.shadow.fraction * 100)}%)` : parts;
};

const fig = (f) =>
  f
    ? `candidate ${f.candidate.requests} req, ${f.candidate.errors} err, p99 ${f.candidate.p99Ms === null ? '—' : fmtNum(f.candidate.p99Ms, 3) + ' ms'}; baseline p99 ${f.baseline.p99Ms === null ? '—' : fmtNum(f.baseline.p99Ms, 3) + ' ms'}${f.agreement === null ? '' : `; agreement ${fmtNum(f.agreement * 100, 3)}%`}`
    : '';

/** The Rollouts section of a model page (the page polls every few seconds, so an action shows at its next poll). */
export async function rolloutsSection(name) {
  const enc = encodeURIComponent(name);
  const { rollouts } = await api(`/v1/models/${enc}/rollouts`);
  if (!rollouts.length) return [h('h2', {}, 'Rollouts'), h('p', { class: 'muted' }, 'None: POST /v1/models/{name}/rollouts starts one (docs/rollout.md).')];
  const newest = await api(`/v1/models/${enc}/rollouts/${rollouts[0].id}`);
  const act = (ro, action) => async (ev) => {
    ev.target.disabled = true;
    try {
      await api(`/v1/models/${enc}/rollouts/${ro.id}/${action}`, { method: 'POST' });
      ev.target.replaceWith(h('span', { class: 'muted' }, `${action}: done`));
    } catch (e) {
      ev.target.replaceWith(h('span', { class: 'error' }, e.message));
    }
  };
  const buttons = (ro) =>
    ro.status === 'running' || ro.status === 'paused'
      ? [
          ro.status === 'running'
            ? h('button', { type: 'button', 'data-action': 'pause', onclick: act(ro, 'pause') }, 'Pause')
            : h('button', { type: 'button', 'data-action': 'resume', onclick: act(ro, 'resume') }, 'Resume'),
          ' ',
          h('button', { type: 'button', class: 'danger', 'data-action': 'abort', onclick: act(ro, 'abort') }, 'Abort'),
        ]
      : [];
  return [
    h('h2', {}, 'Rollouts'),
    table(
      ['Alias', 'Versions', 'Steps', 'Status', 'Last evaluation', ''],
      rollouts.map((ro) =>
        h(
          'tr',
          { 'data-rollout': ro.id },
          h('td', {}, ro.alias),
          h('td', {}, `v${ro.baseline} → v${ro.candidate}`),
          h('td', {}, ro.steps.map((w, i) => (i === ro.step && !['rolled_back', 'aborted'].includes(ro.status) ? `[${w}%]` : `${w}%`)).join(' → ')),
          h('td', {}, badge(ro.status)),
          h('td', { class: 'muted' }, ro.last ? `${ro.last.decision}: ${ro.last.reason}` : (ro.reason ?? '—')),
          h('td', {}, buttons(ro)),
        ),
      ),
    ),
    h('h3', {}, `History of ${newest.alias}: v${newest.baseline} → v${newest.candidate}`),
    table(
      ['When', 'Move', 'Weight', 'Gate', 'Why', 'Figures'],
      newest.history.map((a) =>
        h(
          'tr',
          { 'data-audit': a.action },
          h('td', {}, new Date(a.at).toLocaleString()),
          h('td', {}, badge(a.action)),
          h('td', { class: 'num' }, `${a.weight}%`),
          h('td', {}, a.gate ?? ''),
          h('td', {}, a.reason),
          h('td', { class: 'muted' }, fig(a.figures)),
        ),
      ),
    ),
  ];
}

const ms = (x) => (x === null || x === undefined ? '—' : `${fmtNum(x, 3)} ms`);
const pct = (x) => (x === null || x === undefined ? '—' : `${fmtNum(x * 100, 3)}%`);

/**
 * The live comparison of each split or shadowed alias: its versions side by side (split, requests,
 * errors, p50/p99 latency, agreement with the primary, output drift from the primary's top-1 class
 * shares), from GET /v1/models/{name}/aliases/{alias}/live.
 */
export async function liveSection(name, m) {
  const aliases = Object.keys(m.routes ?? {});
  if (!aliases.length) return [];
  const enc = encodeURIComponent(name);
  const lives = await Promise.all(aliases.map((a) => api(`/v1/models/${enc}/aliases/${encodeURIComponent(a)}/live`)));
  return [
    h('h2', {}, 'Live comparison'),
    ...lives.flatMap((l) => [
      h('h3', {}, `${l.alias} → ${splitText(m, l.alias)}`),
      table(
        ['Version', 'Role', 'Split', 'Requests', 'Errors', 'p50', 'p99', 'Agreement', 'Output drift'],
        l.versions.map((v) =>
          h(
            'tr',
            { 'data-live': `${l.alias}:${v.version}` },
            h('td', {}, `v${v.version}`),
            h('td', {}, v.role),
            h('td', { class: 'num' }, v.role === 'shadow' ? `shadow ${fmtNum((l.shadow?.fraction ?? 0) * 100, 3)}%` : `${v.weight}%`),
            h('td', { class: 'num', 'data-field': 'requests' }, fmtNum(v.requests)),
            h('td', { class: 'num', 'data-field': 'errors' }, fmtNum(v.errors)),
            h('td', { class: 'num' }, ms(v.p50Ms)),
            h('td', { class: 'num' }, ms(v.p99Ms)),
            h('td', { class: 'num', 'data-field': 'agreement' }, pct(v.agreement)),
            h(
              'td',
              { 'data-field': 'drift' },
              v.outputDrift === null ? '—' : `${fmtNum(v.outputDrift, 3)} `,
              v.outputDrift === null ? '' : badge(v.outputDriftLevel),
            ),
          ),
        ),
      ),
    ]),
  ];
}
