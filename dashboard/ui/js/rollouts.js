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
