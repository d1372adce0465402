// @ts-check
// A version's model card (GET /v1/models/{name}/versions/{v}/card) on its page: what it is, its
// training data, held-out metrics (per-class precision and recall, the confusion matrix),
// calibration (reliability bins, ECE), input importance from stored explanations, and each field the
// platform does not know with the reason. The Markdown form is a download.
import { downloadLink } from './api.js';
import { fmtNum, h, kv, table } from './dom.js';

const isUnknown = (x) => x !== null && typeof x === 'object' && 'unknown' in x;
const unknownNote = (field, x) => h('p', { class: 'muted', 'data-unknown': field }, `Unknown: ${x.unknown}`);
const num = (field, v) => h('span', { 'data-card': field, 'data-value': v ?? '' }, v === null || v === undefined ? '—' : fmtNum(v));

function heldoutBlock(m) {
  if (isUnknown(m)) return unknownNote('metrics.heldout', m);
  if (!('perClass' in m))
    return kv(
      Object.entries(m).map(([k, v]) => [k, num(`heldout.${k}`, v)]),
      { 'data-card-section': 'heldout' },
    );
  const names = m.perClass.map((c) => c.class);
  return h(
    'div',
    { 'data-card-section': 'heldout' },
    h('p', {}, 'Held-out rows ', num('heldout.rows', m.rows), ', accuracy ', num('heldout.accuracy', m.accuracy)),
    table(
      ['Class', 'Support', 'Precision', 'Recall'],
      m.perClass.map((c) =>
        h(
          'tr',
          { 'data-class': c.class },
          h('td', {}, c.class),
          h('td', { class: 'num' }, num('support', c.support)),
          h('td', { class: 'num' }, num('precision', c.precision)),
          h('td', { class: 'num' }, num('recall', c.recall)),
        ),
      ),
    ),
    h('p', { class: 'muted' }, 'Confusion matrix (rows: true class, columns: predicted)'),
    table(
      ['', ...names],
      m.confusion.map((row, i) =>
        h(
          'tr',
          { 'data-confusion-row': names[i] },
          h('th', {}, names[i]),
          row.map((n) => h('td', { class: 'num' }, String(n))),
        ),
      ),
      { 'data-card-section': 'confusion' },
    ),
  );
}

function calibrationBlock(c) {
  if (isUnknown(c)) return unknownNote('calibration', c);
  return h(
    'div',
    { 'data-card-section': 'calibration' },
    h('p', {}, 'Expected calibration error ', num('ece', c.ece), ', maximum ', num('mce', c.mce), ` over ${fmtNum(c.rows)} held-out rows`),
    table(
      ['Confidence', 'Rows', 'Mean confidence', 'Accuracy'],
      c.bins
        .filter((b) => b.rows > 0)
        .map((b) =>
          h(
            'tr',
            { 'data-bin': b.from.toFixed(1) },
            h('td', {}, `${b.from.toFixed(1)}–${b.to.toFixed(1)}`),
            h('td', { class: 'num' }, num('rows', b.rows)),
            h('td', { class: 'num' }, num('confidence', b.confidence)),
            h('td', { class: 'num' }, num('accuracy', b.accuracy)),
          ),
        ),
    ),
  );
}

function importanceBlock(x) {
  if (isUnknown(x)) return unknownNote('importance', x);
  return h(
    'div',
    { 'data-card-section': 'importance' },
    h('p', { class: 'muted' }, `Mean |attribution| over ${fmtNum(x.rows)} explained rows`),
    table(
      ['Input', 'Mean |attribution|'],
      x.inputs.map((i) => h('tr', { 'data-input': i.input }, h('td', {}, i.input), h('td', { class: 'num' }, num('importance', i.meanAbsAttribution)))),
    ),
  );
}

/** The card's section of a version page; `path` is the version's API path (/v1/models/{name}/versions/{v}). */
export function cardSection(card, path) {
  const td = card.trainingData;
  const text = (field, x) =>
    isUnknown(x) ? h('span', { class: 'muted', 'data-unknown': field }, `unknown: ${x.unknown}`) : Array.isArray(x) ? x.join(', ') : String(x);
  return h(
    'div',
    { 'data-section': 'card' },
    h('h2', {}, 'Model card'),
    h('div', { class: 'actions' }, downloadLink(`${path}/card?format=md`, 'Download the card (Markdown)', { 'data-download': 'card' })),
    kv(
      [
        ['Task', text('task', card.task)],
        ['Target', text('target', card.target)],
        ['Classes', text('classes', card.classes)],
        ['Owner', `${card.owner.tenant}${card.owner.shared ? ' (shared)' : ''}`],
        [
          'Training data',
          isUnknown(td)
            ? text('trainingData', td)
            : td.details
              ? `${td.dataset} (${td.details.unknown})`
              : `${td.name} (${td.dataset}): ${fmtNum(td.rows)} rows, columns ${td.columns.join(', ')}; uploaded ${td.uploadedAt}`,
        ],
        ['Drift', isUnknown(card.drift) ? text('drift', card.drift) : String(card.drift.level ?? '—')],
        ['Signature', isUnknown(card.signature) ? text('signature', card.signature) : `${card.signature.algorithm}, key ${card.signature.keyId}`],
      ],
      { 'data-card-section': 'summary' },
    ),
    h('h3', {}, 'Held-out metrics'),
    heldoutBlock(card.metrics.heldout),
    h('h3', {}, 'Calibration'),
    calibrationBlock(card.calibration),
    h('h3', {}, 'Input importance'),
    importanceBlock(card.importance),
  );
}
