// One training attempt, start to end: load and split the data, resume from the job's checkpoint when
// there is one, train with a checkpoint after every epoch, evaluate the best epoch on the validation
// rows, and write the ONNX export and the trainer's own predictions (the export's reference).
import { createHash } from 'node:crypto';
import type { GbdtSettings, TrainJob, TrainMetrics, TrainProgress } from '../../../core/jobs/train.ts';
import { trainKeys } from '../../../core/jobs/train.ts';
import { DEFAULT_BACKGROUND_ROWS } from '../../../core/jobs/explain.ts';
import type { DenseLayer } from '../../onnx/export-mlp.ts';
import type { ArtifactStore } from '../../../core/storage/index.ts';
import { decodeCheckpoint, encodeCheckpoint, type TrainState } from './checkpoint.ts';
import { gatherRows, loadDataset, splitRows, standardization, type Loaded } from './data.ts';
import { initState, layerSizes, predict, predictEncoded, train, type TrainInput } from './mlp.ts';
import { encodeRows, fitEncoder, rawInputs, type Csr, type Encoder } from './encoder.ts';
import { exportColumns } from '../../onnx/export-columns.ts';
import { MODEL_COLUMNS_KEY, type ColumnInfo } from '../../../core/model-columns.ts';
import { applyImputation, fitImputation, type NumericImputation } from './impute.ts';
import { initTf, type Tf } from './tf.ts';
import { fitTrees } from './run-trees.ts';
import { clearlyBetter, crossValidate, CV_MAX_ROWS, fitRows, indicatorColumns, linearSetup, lossOf, predictLinear, rowLosses } from './run-linear.ts';
import type { Ensemble } from './gbdt.ts';
import { writeExplainArtifacts } from '../../explain/training-artifacts.ts';

/** Validation rows kept as the reference the exported model is checked against. */
export const REFERENCE_ROWS = 1000;

export interface RunOutcome {
  modelKey: string;
  predictionsKey: string;
  metrics: TrainMetrics;
  bestEpoch: number;
  epochsRun: number;
  stoppedEarly: boolean;
  resumedFromEpoch: number;
  classes?: (string | number)[];
  /** The training split's drift reference profile, and background rows (only for models of numeric features) (artifact keys). */
  background?: { key: string; rows: number; features: number };
  reference?: { key: string; rows: number; features: number };
  /** Every dataset column, used (with its imputation and encoding) or not and why. */
  columns: ColumnInfo[];
  modelType: 'mlp' | 'linear' | 'gbdt';
  /** Model "auto": both candidates' validation metrics and which was kept. */
  candidates?: { type: 'linear' | 'mlp' | 'gbdt'; metrics: TrainMetrics; kept: boolean }[];
}

/** The reference file: the rows' raw values by column (as the model's inputs take them) and what the trainer predicted for them. */
export interface Predictions {
  rows: number;
  /** Numeric inputs: raw values by column, null where missing (fed as NaN). */
  numbers?: Record<string, (number | null)[]>;
  /** Category and text inputs: the rows' raw strings by column, "" where missing. */
  strings?: Record<string, string[]>;
  labels?: number[];
  probabilities?: number[];
  prediction?: number[];
  /**
   * Every validation row: the true target and the kept model's prediction (class index, or value),
   * and for classifiers the probability it gave its predicted class (`confidence`, for calibration), for the model card.
   */
  heldout?: { truth: number[]; predicted: number[]; confidence?: number[] };
}

export interface RunOptions {
  store: ArtifactStore;
  jobId: string;
  job: TrainJob;
  onProgress?(p: TrainProgress): void | Promise<void>;
  /** Epoch milliseconds after which the trees start no more rounds (the attempt's time limit, less a margin). */
  deadline?: number;
}

export async function runTraining({ store, jobId, job, onProgress, deadline }: RunOptions): Promise<RunOutcome> {
  const tf = await initTf();
  const hp = job.hyperparameters;
  const loaded = await loadDataset(store, job);
  const { train: trainRows, val: valRows } = splitRows(loaded, hp.validationSplit, hp.seed);
  // Gaps in numbers are filled (and flagged) as the graph will do it, fitted on the training rows only.
  const imp = fitImputation(loaded, trainRows, hp.imputation ?? { strategy: 'median' });
  const filled = applyImputation(loaded.x, loaded.features, imp);
  const data: Loaded = { ...loaded, x: filled.x, features: filled.width };
  const { mean, scale } = standardization(data, trainRows);
  const classification = hp.task === 'classification';
  const C = classification ? data.classes!.length : 1;
  // Category and text features: encoded (vocabularies and categories from the training rows) into sparse rows.
  const enc = hp.featureTypes ? fitEncoder(data, trainRows, hp, { mean, scale }) : undefined;
  const sparse = enc ? { train: encodeRows(enc, data, trainRows), val: encodeRows(enc, data, valRows) } : undefined;
  const target = classification ? { mean: 0, scale: 1 } : targetStandardization(data, trainRows);
  const yVal = Float64Array.from(valRows, (r) => data.y[r]!);

  const exact = hp.model.type === 'linear' && !Object.values(hp.featureTypes ?? {}).includes('text');
  const lin = exact || hp.model.type === 'auto' ? linearSetup(data, trainRows, hp, { mean, scale }, target, enc, deadline) : undefined;
  const allRows = Int32Array.from([...trainRows, ...valRows]);
  // auto on few rows: linear and trees by cross-validation over every row (a tenth is too few to choose on).
  const noIndicators = lin && indicatorColumns(lin, loaded.features, imp.indicators.length);
  const cv =
    hp.model.type === 'auto' && allRows.length < CV_MAX_ROWS
      ? crossValidate(lin!, allRows, hp, { ...hp.model.gbdt, deadline }, { mean, scale }, noIndicators)
      : undefined;
  // The missing indicators stay in the graph; the linear model leaves them out (weights 0) when they do not lower its cross-validated loss.
  const dropIndicators = !!cv?.plain && lossOf(evaluate(cv.plain, cv.y, C)) < lossOf(evaluate(cv.linear, cv.y, C));
  const cvLinear = cv && (dropIndicators ? cv.plain! : cv.linear);
  const cvMetrics = cv && { linear: evaluate(cvLinear!, cv.y, C), gbdt: evaluate(cv.gbdt, cv.y, C) };

  // Linear (exact, numbers and categories): fitted on the training rows for the validation metrics,
  // then refitted on every row for the export (a convex fit has nothing to stop early on).
  let linear: { layer: DenseLayer; metrics: TrainMetrics } | undefined;
  if (lin) {
    const drop = dropIndicators ? noIndicators : undefined;
    const held = fitRows(lin, trainRows, drop);
    linear = { layer: fitRows(lin, allRows, drop), metrics: evaluate(predictLinear(lin, held, valRows), yVal, C) };
  }
  // Trees (gbdt, and one of auto's candidates) train next: they are quick and need no checkpoint.
  const trees =
    hp.model.type === 'gbdt' || hp.model.type === 'auto'
      ? fitTrees(data, trainRows, valRows, hp, { ...(hp.model as { gbdt: GbdtSettings }).gbdt, deadline }, { mean, scale }, enc)
      : undefined;
  const treeMetrics = trees && evaluate(trees.out, yVal, C);
  const mlp =
    hp.model.type === 'gbdt' || exact || cv
      ? undefined
      : await fitNetwork(tf, store, jobId, job, { data, trainRows, valRows, mean, scale, target, classes: C, classification, sparse }, enc, onProgress);
  // auto keeps the lowest validation log-loss or RMSE; cross-validated on few rows, where the trees
  // must beat the linear model by SE_MARGIN standard errors of the difference (else: noise).
  const scored: { type: 'linear' | 'gbdt' | 'mlp'; metrics: TrainMetrics }[] = [];
  if (linear) scored.push({ type: 'linear', metrics: cvMetrics?.linear ?? linear.metrics });
  if (trees) scored.push({ type: 'gbdt', metrics: cvMetrics?.gbdt ?? treeMetrics! });
  if (mlp) scored.push({ type: 'mlp', metrics: mlp.metrics });
  const best = cv
    ? scored[clearlyBetter(rowLosses(cv.gbdt, cv.y, C), rowLosses(cvLinear!, cv.y, C)) ? 1 : 0]!
    : scored.reduce((a, b) => (lossOf(b.metrics) < lossOf(a.metrics) ? b : a));
  const modelType = best.type;
  const keepTrees = modelType === 'gbdt';
  const sizes = modelType === 'linear' ? [linear!.layer.inputs, linear!.layer.outputs] : mlp?.sizes;
  const params = modelType === 'linear' ? [linear!.layer.weights, linear!.layer.bias] : mlp?.state.bestParams;
  // The reference rows as the exported graph computes them (float32), from the exported weights.
  const out =
    modelType === 'gbdt'
      ? trees!.out
      : modelType === 'linear'
        ? predictEncoded(tf, sizes!, params!, encodeRows(lin!.encoder, data, valRows), hp.task, target)
        : mlp!.out;
  const metrics = best.metrics;
  const candidates = hp.model.type === 'auto' ? scored.map((c) => ({ ...c, kept: c === best })) : undefined;

  const columns = columnInfos(job, imp, enc);
  const std = { mean, scale, target, imp, columns };
  await store.put(
    trainKeys.model(jobId),
    keepTrees
      ? exportTrees(job, data, trees!.ensemble, std, trees!.encoder)
      : exportTrained(job, data, sizes!, params!, std, modelType === 'linear' ? lin!.encoder : enc),
  );
  const k = Math.min(REFERENCE_ROWS, valRows.length);
  const ref = reference(out, k, C);
  const numeric = numericColumns(job);
  ref.numbers = Object.fromEntries(numeric.map((c, f) => [c, Array.from(valRows.subarray(0, k), (r) => nullNaN(loaded.x[r * loaded.features + f]!))]));
  if (enc) ref.strings = rawInputs(enc, data, valRows, k);
  const predicted = out.labels ?? out.prediction;
  if (predicted) {
    const probs = out.labels && out.probabilities?.length === out.labels.length * C ? out.probabilities : undefined;
    ref.heldout = {
      truth: Array.from(yVal),
      predicted: Array.from(predicted),
      ...(probs ? { confidence: Array.from(out.labels!, (c, i) => probs[i * C + c]!) } : {}),
    };
  }
  await store.put(trainKeys.predictions(jobId), JSON.stringify(ref));
  // Drift reference and explanation background from the training split, by source column as the model's inputs are.
  const explain = await writeExplainArtifacts(store, jobId, {
    rows: trainRows.length,
    numbers: numeric.map((name, f) => ({ name, values: Float32Array.from(trainRows, (r) => loaded.x[r * loaded.features + f]!) })),
    strings: (enc?.blocks ?? []).map((b) => ({ name: b.column, kind: b.kind, values: Array.from(trainRows, (r) => data.strings![b.column]![r] ?? '') })),
    order: hp.features,
    backgroundRows: hp.explainBackground ?? DEFAULT_BACKGROUND_ROWS,
    seed: hp.seed,
  });

  return {
    modelKey: trainKeys.model(jobId),
    predictionsKey: trainKeys.predictions(jobId),
    metrics,
    // For trees an epoch is a boosting round.
    // For trees an epoch is a boosting round; an exact linear fit has none.
    bestEpoch: keepTrees ? trees!.ensemble.rounds : (mlp?.state.bestEpoch ?? 0),
    epochsRun: keepTrees ? trees!.ensemble.roundsRun : (mlp?.state.epoch ?? 0),
    stoppedEarly: keepTrees ? trees!.ensemble.roundsRun < (hp.model as { gbdt: { trees: number } }).gbdt.trees : !!mlp && mlp.state.epoch < hp.epochs,
    resumedFromEpoch: mlp?.resumedFromEpoch ?? 0,
    modelType,
    ...(candidates ? { candidates } : {}),
    ...(data.classes ? { classes: data.classes } : {}),
    ...explain,
    columns,
  };
}

/** The network (mlp, linear, or auto's MLP candidate): trained with a checkpoint per epoch, its best epoch evaluated on the validation rows. */
async function fitNetwork(
  tf: Tf,
  store: ArtifactStore,
  jobId: string,
  job: TrainJob,
  p: Prepared,
  enc: Encoder | undefined,
  onProgress: RunOptions['onProgress'],
) {
  const model = job.hyperparameters.model;
  const hp = model.type === 'auto' ? { ...job.hyperparameters, model: { type: 'mlp' as const, hidden: model.hidden } } : job.hyperparameters;
  const sizes = layerSizes(hp, enc ? enc.width : p.data.features, p.classes);
  const specHash = createHash('sha256')
    .update(JSON.stringify({ dataset: job.dataset.id, hp: job.hyperparameters }))
    .digest('hex');
  const ckKey = trainKeys.checkpoint(jobId);
  let state = (await resumable(store, ckKey, specHash)) ?? initState(sizes, hp.seed, specHash);
  const resumedFromEpoch = state.epoch;
  const metric = p.classification ? ('accuracy' as const) : ('rmse' as const);
  const progress = (s: TrainState): TrainProgress => ({
    ...s.curve[s.curve.length - 1]!,
    epochs: hp.epochs,
    metric,
    bestEpoch: s.bestEpoch,
    startedAtEpoch: resumedFromEpoch + 1,
    curve: s.curve,
  });
  if (resumedFromEpoch > 0) await onProgress?.(progress(state));
  state = await fit(tf, p, {
    hp,
    sizes,
    state,
    onEpoch: async (s) => {
      await store.put(ckKey, encodeCheckpoint(s));
      await onProgress?.(progress(s));
    },
  });
  // Evaluate the best epoch's weights on every validation row.
  const out = p.sparse
    ? predictEncoded(tf, sizes, state.bestParams, p.sparse.val, hp.task, p.target)
    : predict(tf, sizes, state.bestParams, gatherRows(p.data, p.valRows), p.mean, p.scale, hp.task, p.target);
  const metrics = evaluate(
    out,
    Float64Array.from(p.valRows, (r) => p.data.y[r]!),
    p.classes,
  );
  return { sizes, state, resumedFromEpoch, out, metrics };
}

/** The column front end every trained model's graph starts with: imputation, scaling, encoders. */
function frontEnd(job: TrainJob, s: { mean: Float32Array; scale: Float32Array; imp: NumericImputation }, enc: Encoder | undefined) {
  const hp = job.hyperparameters;
  return {
    inputs: hp.features.map((name) => ({ name, kind: hp.featureTypes?.[name] ?? 'numeric' })),
    numeric: numericColumns(job),
    fill: s.imp.fill,
    indicators: s.imp.indicators,
    mean: s.mean,
    scale: s.scale,
    blocks: enc?.blocks ?? [],
  };
}

/** The columns, target and classes recorded in the model's metadata. */
const columnsMeta = (job: TrainJob, data: Loaded, s: { columns: ColumnInfo[] }) => ({
  columns: s.columns,
  target: job.hyperparameters.target,
  ...(data.classes ? { classes: data.classes } : {}),
});

/** The ONNX export of a boosted ensemble behind the same column front end as the network's. */
function exportTrees(
  job: TrainJob,
  data: Loaded,
  ensemble: Ensemble,
  s: { mean: Float32Array; scale: Float32Array; imp: NumericImputation; columns: ColumnInfo[] },
  enc: Encoder,
): Uint8Array {
  const hp = job.hyperparameters;
  const meta = columnsMeta(job, data, s);
  return exportColumns({
    ...frontEnd(job, s, enc),
    layers: [],
    trees: ensemble,
    task: hp.task,
    target: hp.target,
    ...(hp.task === 'classification' ? { classes: data.classes! } : {}),
    metadata: { 'modelq.dataset': job.dataset.id, 'modelq.model': 'gbdt', [MODEL_COLUMNS_KEY]: JSON.stringify(meta) },
  });
}

const nullNaN = (v: number) => (Number.isNaN(v) ? null : v);
/** The job's numeric features, in the order of the loaded matrix. */
const numericColumns = (job: TrainJob) => job.hyperparameters.features.filter((f) => (job.hyperparameters.featureTypes?.[f] ?? 'numeric') === 'numeric');

/** Every dataset column as the model's metadata lists it: the job's plan plus what training fitted (imputation, indicators, levels). */
function columnInfos(job: TrainJob, imp: NumericImputation, enc?: Encoder): ColumnInfo[] {
  const hp = job.hyperparameters;
  const kind = (f: string) => hp.featureTypes?.[f] ?? 'numeric';
  const plan = hp.columns ?? hp.features.map((name) => ({ name, type: kind(name) === 'numeric' ? ('number' as const) : kind(name), used: true }));
  const numeric = numericColumns(job);
  const strategy = hp.imputation?.strategy ?? 'median';
  return plan.map((c): ColumnInfo => {
    if (!c.used) return c;
    const f = numeric.indexOf(c.name);
    if (f >= 0) return { ...c, type: 'number', imputation: { strategy, value: imp.fill[f]! }, missingIndicator: imp.indicators.includes(f) };
    const b = enc?.blocks.find((x) => x.column === c.name);
    return b?.kind === 'category' ? { ...c, type: 'category', levels: b.values } : { ...c, type: 'text' };
  });
}

type TargetScaling = { mean: number; scale: number };

/** A regression target's mean and standard deviation on the training rows, as float32 like the exported graph's, so the trainer's predictions are the export's. */
function targetStandardization(data: Loaded, trainRows: Int32Array): TargetScaling {
  let s = 0;
  let sq = 0;
  for (const r of trainRows) s += data.y[r]!;
  const mu = s / trainRows.length;
  for (const r of trainRows) sq += (data.y[r]! - mu) ** 2;
  const sd = Math.sqrt(sq / trainRows.length);
  return { mean: Math.fround(mu), scale: Math.fround(sd > 1e-12 ? sd : 1) };
}

/** The job's checkpoint, when there is one for the same dataset and hyperparameters (a retried attempt resumes from it). */
async function resumable(store: ArtifactStore, ckKey: string, specHash: string): Promise<TrainState | undefined> {
  if (!(await store.stat(ckKey))) return undefined;
  const saved = decodeCheckpoint(await store.get(ckKey));
  return saved.specHash === specHash ? saved : undefined;
}

interface Prepared {
  data: Loaded;
  trainRows: Int32Array;
  valRows: Int32Array;
  mean: Float32Array;
  scale: Float32Array;
  target: TargetScaling;
  classes: number;
  classification: boolean;
  sparse?: { train: Csr; val: Csr };
}

/** Trains on standardized tensors of the rows (one-hot classes, or the standardized target); the tensors are freed after. */
async function fit(tf: Tf, p: Prepared, o: Pick<TrainInput, 'hp' | 'sizes' | 'state' | 'onEpoch'>): Promise<TrainState> {
  if (p.sparse) {
    const ys = tf.tidy(() => ({ yTrain: targetsOf(tf, p, p.trainRows), yVal: targetsOf(tf, p, p.valRows) }));
    try {
      return await train({ tf, ...o, ...ys, sparse: p.sparse, targetScale: p.target.scale });
    } finally {
      tf.dispose(Object.values(ys));
    }
  }
  const tensors = tf.tidy(() => {
    const std = (rows: Int32Array) =>
      tf.div(tf.sub(tf.tensor2d(gatherRows(p.data, rows), [rows.length, p.data.features]), tf.tensor1d(p.mean)), tf.tensor1d(p.scale));
    const targets = (rows: Int32Array) => {
      const y = Float32Array.from(rows, (r) => p.data.y[r]!);
      if (p.classification) return tf.oneHot(tf.tensor1d(Int32Array.from(y), 'int32'), p.classes).toFloat();
      return tf.div(tf.sub(tf.tensor2d(y, [rows.length, 1]), p.target.mean), p.target.scale);
    };
    return { xTrain: std(p.trainRows), yTrain: targets(p.trainRows), xVal: std(p.valRows), yVal: targets(p.valRows) };
  });
  try {
    return await train({ tf, ...o, ...tensors, targetScale: p.target.scale });
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** One-hot classes, or the standardized regression target, of the given rows. */
function targetsOf(tf: Tf, p: Prepared, rows: Int32Array) {
  const y = Float32Array.from(rows, (r) => p.data.y[r]!);
  if (p.classification) return tf.oneHot(tf.tensor1d(Int32Array.from(y), 'int32'), p.classes).toFloat();
  return tf.div(tf.sub(tf.tensor2d(y, [rows.length, 1]), p.target.mean), p.target.scale);
}

/** The ONNX export of the trained MLP as a column-input model: imputation, standardization and any text and category encoding inside the graph. */
function exportTrained(
  job: TrainJob,
  data: Loaded,
  sizes: number[],
  params: Float32Array[],
  s: { mean: Float32Array; scale: Float32Array; target: TargetScaling; imp: NumericImputation; columns: ColumnInfo[] },
  enc?: Encoder,
): Uint8Array {
  const hp = job.hyperparameters;
  const layers: DenseLayer[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    layers.push({ weights: params[2 * l]!, bias: params[2 * l + 1]!, inputs: sizes[l]!, outputs: sizes[l + 1]! });
  }
  const head = hp.task === 'classification' ? { classes: data.classes! } : { targetMean: s.target.mean, targetScale: s.target.scale };
  const meta = columnsMeta(job, data, s);
  return exportColumns({
    ...frontEnd(job, s, enc),
    layers,
    task: hp.task,
    target: hp.target,
    ...head,
    metadata: { 'modelq.dataset': job.dataset.id, [MODEL_COLUMNS_KEY]: JSON.stringify(meta) },
  });
}

/** What the trainer predicted for the first `k` validation rows. */
function reference(out: ReturnType<typeof predict>, k: number, classes: number): Predictions {
  const ref: Predictions = { rows: k };
  if (out.labels) ref.labels = Array.from(out.labels.subarray(0, k));
  if (out.probabilities) ref.probabilities = Array.from(out.probabilities.subarray(0, k * classes));
  if (out.prediction) ref.prediction = Array.from(out.prediction.subarray(0, k));
  return ref;
}

/** Accuracy and log-loss (probabilities clipped as scikit-learn does), or RMSE and R². */
export function evaluate(out: ReturnType<typeof predict>, y: Float64Array, classes: number): TrainMetrics {
  const n = y.length;
  if (out.probabilities) {
    let right = 0;
    let ll = 0;
    for (let i = 0; i < n; i++) {
      if (out.labels![i] === y[i]) right++;
      ll -= Math.log(Math.min(1 - 1e-15, Math.max(1e-15, out.probabilities[i * classes + y[i]!]!)));
    }
    return { accuracy: right / n, logLoss: ll / n, validationRows: n };
  }
  const p = out.prediction!;
  const mu = y.reduce((a, b) => a + b, 0) / n;
  let ssRes = 0;
  let ssTot = 0;
  for (let i = 0; i < n; i++) {
    ssRes += (y[i]! - p[i]!) ** 2;
    ssTot += (y[i]! - mu) ** 2;
  }
  return { rmse: Math.sqrt(ssRes / n), r2: ssTot > 0 ? 1 - ssRes / ssTot : 0, validationRows: n };
}
