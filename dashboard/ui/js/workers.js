// @ts-check
// Workers: every live worker (the figures each publishes into Redis, as /metrics reads them) with
// its queues, device, rows/s and compute share between two polls, event-loop delay and memory.
import { call } from './api.js';
import { fmtAge, fmtBytes, fmtNum, h, put, table } from './dom.js';
import { errorBox, poll } from './live.js';

export function list() {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const el = h('section', {}, h('h1', {}, 'Workers'), body);
  const prev = new Map();
  const stop = poll(
    2000,
    async () => {
      const { workers, queues } = await call('/ui/workers');
      const rate = (w) => {
        const p = prev.get(w.id);
        if (!p || w.publishedAt <= p.publishedAt) return { rows: null, busy: null };
        const s = (w.publishedAt - p.publishedAt) / 1000;
        return { rows: (w.engine.rows - p.engine.rows) / s, busy: (w.engine.computeMs - p.engine.computeMs) / 1000 / s };
      };
      const rows = workers.map((w) => {
        const r = rate(w);
        if (!prev.has(w.id) || w.publishedAt > prev.get(w.id).publishedAt) prev.set(w.id, w);
        const jobs = Object.entries(w.jobs)
          .map(([q, c]) => `${q} ${c.completed}✓ ${c.failed}✗`)
          .join(', ');
        return h(
          'tr',
          { 'data-worker': w.id },
          h('td', { class: 'mono' }, w.id),
          h('td', {}, `${w.host} / ${w.pid}`),
          h('td', {}, w.device),
          h('td', {}, w.queues.join(', ')),
          h('td', {}, fmtAge(w.startedAt)),
          h('td', {}, jobs || '—'),
          h('td', { class: 'num', 'data-field': 'rows', 'data-value': w.engine.rows }, fmtNum(w.engine.rows)),
          h('td', { class: 'num' }, r.rows === null ? '…' : fmtNum(r.rows, 3)),
          h('td', { class: 'num' }, `${fmtNum(w.engine.computeMs / 1000, 3)} s`, r.busy === null ? '' : ` (${fmtNum(r.busy * 100, 2)}%)`),
          h('td', { class: 'num' }, `${fmtNum(w.eventLoopDelayMs.p99, 3)} / ${fmtNum(w.eventLoopDelayMs.max, 3)} ms`),
          h('td', { class: 'num' }, fmtBytes(w.rssBytes)),
        );
      });
      put(
        body,
        workers.length
          ? table(
              [
                'Worker',
                'Host / pid',
                'Device',
                'Queues',
                'Started',
                'Jobs done',
                'Engine rows',
                'rows/s',
                'Compute (share)',
                'Loop delay p99 / max',
                'Memory',
              ],
              rows,
            )
          : h('p', { class: 'muted' }, 'No live worker: none has published its figures lately.'),
        h('h2', {}, 'Queues'),
        table(
          ['Queue', 'Consumed by', 'waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'],
          Object.entries(queues).map(([q, c]) =>
            h(
              'tr',
              { 'data-queue': q, 'data-consumers': c.consumers ?? '', ...(c.notStarted ? { 'data-not-started': '' } : {}) },
              h('td', {}, q),
              consumedBy(c),
              ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'].map((s) =>
                h('td', { class: 'num' }, fmtNum(c[s] ?? 0)),
              ),
            ),
          ),
        ),
      );
    },
    (e) => put(body, errorBox(e)),
  );
  return { el, stop };
}

/**
 * Who takes a queue: the number of live workers; for a queue no worker of its kind was started for
 * (GPU queues on a CPU-only platform), that it was not started, which is not a fault; "no worker"
 * (flagged) only when workers that should take it are missing.
 */
function consumedBy(c) {
  if (c.notStarted) return h('td', { class: 'muted', title: c.notStarted }, c.notStarted.split(':')[0]);
  if (c.consumers === 0) return h('td', { class: 'warn', title: 'no live worker takes this queue: its jobs wait' }, 'no worker running');
  return h('td', { class: 'num' }, `${fmtNum(c.consumers)} worker${c.consumers === 1 ? '' : 's'}`);
}
