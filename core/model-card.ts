// Model cards: what a version is and how good it is, filled only from what the platform recorded
// (the version record, its held-out predictions, the training dataset's record, the drift window,
// lineage and signature). A field the platform does not know is `{ "unknown": "<why>" }`, never a guess.
import type { DatasetRecord } from './datasets.ts';
import type { ModelAccess } from './auth.ts';
import { metadataList, type VersionRecord } from './registry.ts';

export interface Unknown {
  unknown: string;
}
const unknown = (why: string): Unknown => ({ unknown: why });
export const isUnknown = (x: unknown): x is Unknown => typeof x === 'object' && x !== null && 'unknown' in x;

export interface HeldOut {
  truth: number[];
  predicted: number[];
  /** Classifiers: the probability the model gave the class it predicted, per row (recorded by training since calibration was added). */
  confidence?: number[];
}

/** Reliability bins of a classifier's confidence on the held-out rows. */
export const CALIBRATION_BINS = 10;

export interface CalibrationBin {
  /** Confidence range [from, to) (the last bin includes 1). */
  from: number;
  to: number;
  rows: number;
  /** Mean confidence of the bin's rows, and the share of them predicted right (null when empty). */
  confidence: number | null;
  accuracy: number | null;
}

/**
 * Calibration of a classifier's held-out predictions: reliability bins of equal width over the
 * confidence in its predicted class, the expected calibration error (sum over bins of
 * rows/total x |accuracy - confidence|) and the maximum one (the largest gap of a non-empty bin).
 */
export function calibrationMetrics(
  h: HeldOut & { confidence: number[] },
  bins = CALIBRATION_BINS,
): { rows: number; ece: number; mce: number; bins: CalibrationBin[] } {
  const n = h.truth.length;
  const acc = Array.from({ length: bins }, () => ({ rows: 0, conf: 0, right: 0 }));
  for (let i = 0; i < n; i++) {
    const c = h.confidence[i]!;
    const b = Math.min(bins - 1, Math.max(0, Math.floor(c * bins)));
    acc[b]!.rows++;
    acc[b]!.conf += c;
    if (h.truth[i] === h.predicted[i]) acc[b]!.right++;
  }
  let ece = 0;
  let mce = 0;
  const out = acc.map((a, b) => {
    const confidence = a.rows ? a.conf / a.rows : null;
    const accuracy = a.rows ? a.right / a.rows : null;
    if (a.rows) {
      const gap = Math.abs(accuracy! - confidence!);
      ece += (a.rows / n) * gap;
      mce = Math.max(mce, gap);
    }
    return { from: b / bins, to: (b + 1) / bins, rows: a.rows, confidence, accuracy };
  });
  return { rows: n, ece, mce, bins: out };
}

/** Mean |attribution| per input over explanations the platform stored for a version. */
export interface StoredImportance {
  /** Where the attributions were read: the version's explained batches. */
  batches: string[];
  rows: number;
  inputs: { input: string; meanAbsAttribution: number }[];
}

export interface ClassMetrics {
  class: string;
  support: number;
  precision: number | null;
  recall: number | null;
}

/** Accuracy, per-class precision and recall and the confusion matrix (rows: true class, columns: predicted). */
export function classificationMetrics(h: HeldOut, classes: string[]): { rows: number; accuracy: number; perClass: ClassMetrics[]; confusion: number[][] } {
  const k = Math.max(classes.length, ...h.truth.map((t) => t + 1), ...h.predicted.map((p) => p + 1));
  const names = Array.from({ length: k }, (_, i) => classes[i] ?? String(i));
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let right = 0;
  for (let i = 0; i < h.truth.length; i++) {
    const t = h.truth[i]!;
    const p = h.predicted[i]!;
    confusion[t]![p]!++;
    if (t === p) right++;
  }
  const perClass = names.map((name, c) => {
    const support = confusion[c]!.reduce((a, b) => a + b, 0);
    const predictedAs = confusion.reduce((a, row) => a + row[c]!, 0);
    const tp = confusion[c]![c]!;
    return { class: name, support, precision: predictedAs ? tp / predictedAs : null, recall: support ? tp / support : null };
  });
  return { rows: h.truth.length, accuracy: h.truth.length ? right / h.truth.length : 0, perClass, confusion };
}

/** RMSE, MAE and R² of a regression's held-out predictions. */
export function regressionMetrics(h: HeldOut): { rows: number; rmse: number; mae: number; r2: number } {
  const n = h.truth.length;
  const mu = h.truth.reduce((a, b) => a + b, 0) / Math.max(1, n);
  let ss = 0;
  let abs = 0;
  let tot = 0;
  for (let i = 0; i < n; i++) {
    const e = h.truth[i]! - h.predicted[i]!;
    ss += e * e;
    abs += Math.abs(e);
    tot += (h.truth[i]! - mu) ** 2;
  }
  return { rows: n, rmse: Math.sqrt(ss / Math.max(1, n)), mae: abs / Math.max(1, n), r2: tot > 0 ? 1 - ss / tot : 0 };
}

export interface CardInputs {
  version: VersionRecord;
  access: ModelAccess;
  heldout: HeldOut | null;
  dataset: DatasetRecord | null;
  drift: Record<string, unknown> | null;
  /** Global input importance from stored explanations; null when none are stored. */
  importance?: StoredImportance | null;
}

export type ModelCard = ReturnType<typeof buildCard>;

export function buildCard({ version: v, access, heldout, dataset, drift, importance }: CardInputs) {
  const task = typeof v.metadata?.task === 'string' ? v.metadata.task : null;
  const classes = metadataList<string>(v, 'classes')?.map(String) ?? [];
  const datasetId = typeof v.lineage?.dataset === 'string' ? v.lineage.dataset : null;
  const heldoutMetrics = !heldout
    ? unknown(
        v.lineage?.source === 'train' ? 'trained before held-out predictions were recorded' : 'no held-out predictions recorded (not trained on the platform)',
      )
    : task === 'classification' || classes.length
      ? classificationMetrics(heldout, classes)
      : regressionMetrics(heldout);
  const compression = v.metrics?.compression;
  return {
    model: { name: v.name, version: v.version, sha256: v.sha256, bytes: v.bytes, createdAt: v.createdAt },
    owner: { tenant: access.owner, shared: access.shared },
    task: task ?? unknown('not recorded (an uploaded model)'),
    target: typeof v.metadata?.target === 'string' ? v.metadata.target : unknown('not recorded'),
    classes: classes.length ? classes : unknown(task === 'regression' ? 'a regression has no classes' : 'not recorded'),
    inputs: v.inputs,
    outputs: v.outputs,
    features: metadataList<string>(v, 'features') ?? unknown('not recorded'),
    trainingData: datasetId
      ? dataset
        ? {
            dataset: dataset.id,
            name: dataset.name,
            format: dataset.format,
            rows: dataset.rows,
            columns: dataset.columns.map((c) => c.name),
            uploadedAt: dataset.createdAt,
          }
        : { dataset: datasetId, details: unknown('the dataset record is gone') }
      : unknown('no training dataset recorded'),
    metrics: {
      recorded: v.metrics && Object.keys(v.metrics).some((k) => k !== 'compression') ? withoutCompression(v.metrics) : unknown('no metrics recorded'),
      heldout: heldoutMetrics,
    },
    calibration: calibrationOf(task, classes, heldout),
    importance: importance?.rows
      ? importance
      : unknown('no explanations stored for this version (explained batches, POST /v1/batches?explain=true, are what the platform keeps)'),
    compression: compression ?? unknown('not a compressed version'),
    drift: drift ?? unknown('no reference profile (PUT .../reference) or no traffic sampled'),
    lineage: v.lineage ?? unknown('not recorded'),
    signature: v.signature ?? unknown('registered before versions were signed'),
    publisher: v.publisher ?? unknown('the upload carried no publisher signature'),
  };
}

function calibrationOf(task: string | null, classes: string[], h: HeldOut | null) {
  if (task !== 'classification' && !classes.length)
    return unknown(task === 'regression' ? 'a regression has no class probabilities' : 'not a classifier trained on the platform');
  if (!h) return unknown('no held-out predictions recorded');
  if (!h.confidence || h.confidence.length !== h.truth.length) return unknown('trained before held-out confidences were recorded');
  return calibrationMetrics({ ...h, confidence: h.confidence });
}

function withoutCompression(m: Record<string, unknown>): Record<string, unknown> {
  const { compression: _c, ...rest } = m;
  return rest;
}

const cell = (x: unknown): string => {
  if (isUnknown(x)) return `unknown: ${x.unknown}`;
  if (typeof x === 'number') return Number.isInteger(x) ? String(x) : x.toFixed(4);
  if (x === null || x === undefined) return '-';
  if (typeof x === 'string') return x;
  return `\`${JSON.stringify(x).replace(/`/g, "'").slice(0, 500)}\``;
};

/** The card as Markdown: one section per field, tables for per-class metrics and the confusion matrix. */
export function cardMarkdown(c: ModelCard): string {
  const out: string[] = [`# ${c.model.name} version ${c.model.version}`, ''];
  const kv = (rows: [string, unknown][]) => out.push('| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${cell(v).replace(/\|/g, '\\|')} |`), '');
  kv([
    ['sha256', c.model.sha256],
    ['bytes', c.model.bytes],
    ['created', c.model.createdAt],
    ['owner', `${c.owner.tenant}${c.owner.shared ? ' (shared)' : ''}`],
    ['task', c.task],
    ['target', c.target],
    ['classes', Array.isArray(c.classes) ? c.classes.join(', ') : c.classes],
    ['features', Array.isArray(c.features) ? c.features.join(', ') : c.features],
  ]);
  out.push('## Inputs and outputs', '');
  for (const t of c.inputs) out.push(`- input \`${t.name}\` ${t.datatype} [${t.shape.join(', ')}]`);
  for (const t of c.outputs) out.push(`- output \`${t.name}\` ${t.datatype} [${t.shape.join(', ')}]`);
  out.push('', '## Training data', '');
  if (isUnknown(c.trainingData)) out.push(cell(c.trainingData), '');
  else kv(Object.entries(c.trainingData));
  out.push('## Metrics', '', `Recorded at training: ${cell(c.metrics.recorded)}`, '');
  const h = c.metrics.heldout;
  if (isUnknown(h)) out.push(`Held-out: ${cell(h)}`, '');
  else if ('perClass' in h) {
    out.push(`Held-out rows: ${h.rows}, accuracy ${cell(h.accuracy)}`, '', '| class | support | precision | recall |', '|---|---|---|---|');
    for (const m of h.perClass) out.push(`| ${m.class} | ${m.support} | ${cell(m.precision)} | ${cell(m.recall)} |`);
    const names = h.perClass.map((m) => m.class);
    out.push('', 'Confusion matrix (rows: true class, columns: predicted):', '', `| | ${names.join(' | ')} |`, `|---|${names.map(() => '---').join('|')}|`);
    h.confusion.forEach((row, i) => out.push(`| ${names[i]} | ${row.join(' | ')} |`));
    out.push('');
  } else kv(Object.entries(h));
  out.push('## Calibration', '');
  const cal = c.calibration;
  if (isUnknown(cal)) out.push(cell(cal), '');
  else {
    out.push(`Held-out rows: ${cal.rows}, expected calibration error ${cell(cal.ece)}, maximum ${cell(cal.mce)}`, '');
    out.push('| confidence | rows | mean confidence | accuracy |', '|---|---|---|---|');
    for (const b of cal.bins) out.push(`| ${b.from.toFixed(1)}-${b.to.toFixed(1)} | ${b.rows} | ${cell(b.confidence)} | ${cell(b.accuracy)} |`);
    out.push('');
  }
  out.push('## Input importance', '');
  const imp = c.importance;
  if (isUnknown(imp)) out.push(cell(imp), '');
  else {
    out.push(
      `Mean absolute attribution over ${imp.rows} explained rows (batches ${imp.batches.join(', ')}):`,
      '',
      '| input | mean abs attribution |',
      '|---|---|',
    );
    for (const x of imp.inputs) out.push(`| ${x.input.replace(/\|/g, '\\|')} | ${cell(x.meanAbsAttribution)} |`);
    out.push('');
  }
  for (const [title, v] of [
    ['Compression', c.compression],
    ['Drift', c.drift],
    ['Lineage', c.lineage],
    ['Signature', c.signature],
    ['Publisher signature', c.publisher],
  ] as const)
    out.push(`## ${title}`, '', cell(v), '');
  return out.join('\n');
}
