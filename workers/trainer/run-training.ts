// One training attempt, start to end: load and split the data, resume from the job's checkpoint when
// there is one, train with a checkpoint after every epoch, evaluate the best epoch on the validation
// rows, and write the ONNX export and the trainer's own predictions (the export's reference).
import { createHash } from 'node:crypto';
import type { TrainJob, TrainMetrics, TrainProgress } from '../../core/jobs/train.ts';
import { trainKeys } from '../../core/jobs/train.ts';
import { exportMlp, type DenseLayer } from '../onnx/export-mlp.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { decodeCheckpoint, encodeCheckpoint, type TrainState } from './checkpoint.ts';
import { gatherRows, loadDataset, splitRows, standardization } from './data.ts';
import { initState, layerSizes, predict, train } from './mlp.ts';
import { initTf } from './tf.ts';

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
}

/** The reference file: raw feature rows and what the trainer predicted for them. */
export interface Predictions {
  features: number;
  x: number[];
  labels?: number[];
  probabilities?: number[];
  prediction?: number[];
}

export interface RunOptions {
  store: ArtifactStore;
  jobId: string;
  job: TrainJob;
  onProgress?(p: TrainProgress): void | Promise<void>;
}

export async function runTraining({ store, jobId, job, onProgress }: RunOptions): Promise<RunOutcome> {
  const tf = await initTf();
  const hp = job.hyperparameters;
  const data = await loadDataset(store, job);
  const { train: trainRows, val: valRows } = splitRows(data, hp.validationSplit, hp.seed);
  const { mean, scale } = standardization(data, trainRows);
  const classification = hp.task === 'classification';
  const C = classification ? data.classes!.length : 1;
  const sizes = layerSizes(hp, data.features, C);
  let target = { mean: 0, scale: 1 };
  if (!classification) {
    let s = 0;
    let sq = 0;
    for (const r of trainRows) s += data.y[r]!;
    const mu = s / trainRows.length;
    for (const r of trainRows) sq += (data.y[r]! - mu) ** 2;
    const sd = Math.sqrt(sq / trainRows.length);
    // float32 as in the exported graph, so the trainer's predictions are the export's.
    target = { mean: Math.fround(mu), scale: Math.fround(sd > 1e-12 ? sd : 1) };
  }

  const specHash = createHash('sha256').update(JSON.stringify({ dataset: job.dataset.id, hp })).digest('hex');
  const ckKey = trainKeys.checkpoint(jobId);
  let state: TrainState | undefined;
  if (await store.stat(ckKey)) {
    const saved = decodeCheckpoint(await store.get(ckKey));
    if (saved.specHash === specHash) state = saved;
  }
  state ??= initState(sizes, hp.seed, specHash);
  const resumedFromEpoch = state.epoch;
  const metric = classification ? 'accuracy' as const : 'rmse' as const;
  const progress = (s: TrainState): TrainProgress => ({
    ...s.curve[s.curve.length - 1]!, epochs: hp.epochs, metric, bestEpoch: s.bestEpoch, startedAtEpoch: resumedFromEpoch + 1, curve: s.curve,
  });
  if (resumedFromEpoch > 0) await onProgress?.(progress(state));

  const tensors = tf.tidy(() => {
    const std = (rows: Int32Array) => tf.div(tf.sub(tf.tensor2d(gatherRows(data, rows), [rows.length, data.features]), tf.tensor1d(mean)), tf.tensor1d(scale));
    const targets = (rows: Int32Array) => {
      const y = Float32Array.from(rows, (r) => data.y[r]!);
      if (classification) return tf.oneHot(tf.tensor1d(Int32Array.from(y), 'int32'), C).toFloat();
      return tf.div(tf.sub(tf.tensor2d(y, [rows.length, 1]), target.mean), target.scale);
    };
    return { xTrain: std(trainRows), yTrain: targets(trainRows), xVal: std(valRows), yVal: targets(valRows) };
  });
  try {
    state = await train({
      tf, hp, sizes, ...tensors, targetScale: target.scale, state,
      onEpoch: async (s) => {
        await store.put(ckKey, encodeCheckpoint(s));
        await onProgress?.(progress(s));
      },
    });
  } finally {
    tf.dispose(Object.values(tensors));
  }

  // Evaluate the best epoch's weights on every validation row.
  const xVal = gatherRows(data, valRows);
  const out = predict(tf, sizes, state.bestParams, xVal, mean, scale, hp.task, target);
  const yVal = Float64Array.from(valRows, (r) => data.y[r]!);
  const metrics = evaluate(out, yVal, C);

  const layers: DenseLayer[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    layers.push({ weights: state.bestParams[2 * l]!, bias: state.bestParams[2 * l + 1]!, inputs: sizes[l]!, outputs: sizes[l + 1]! });
  }
  const onnxBytes = exportMlp({
    featureNames: hp.features, mean, scale, layers, task: hp.task, target: hp.target,
    ...(classification ? { classes: data.classes! } : { targetMean: target.mean, targetScale: target.scale }),
    metadata: { 'modelq.dataset': job.dataset.id },
  });
  await store.put(trainKeys.model(jobId), onnxBytes);

  const k = Math.min(REFERENCE_ROWS, valRows.length);
  const ref: Predictions = { features: data.features, x: Array.from(xVal.subarray(0, k * data.features)) };
  if (out.labels) ref.labels = Array.from(out.labels.subarray(0, k));
  if (out.probabilities) ref.probabilities = Array.from(out.probabilities.subarray(0, k * C));
  if (out.prediction) ref.prediction = Array.from(out.prediction.subarray(0, k));
  await store.put(trainKeys.predictions(jobId), JSON.stringify(ref));

  return {
    modelKey: trainKeys.model(jobId), predictionsKey: trainKeys.predictions(jobId), metrics,
    bestEpoch: state.bestEpoch, epochsRun: state.epoch, stoppedEarly: state.epoch < hp.epochs, resumedFromEpoch,
    ...(data.classes ? { classes: data.classes } : {}),
  };
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
