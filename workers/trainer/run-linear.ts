// The linear model type inside a training run (numbers and categories; text jobs keep the network
// path), and auto's choice between model types by k-fold cross-validation on small data.
import type { Hyperparameters, TrainMetrics } from '../../core/jobs/train.ts';
import type { DenseLayer } from '../onnx/export-mlp.ts';
import { Rng, type Loaded } from './data.ts';
import { encodeRows, fitEncoder, type Csr, type Encoder } from './encoder.ts';
import { fitLinear } from './linear.ts';
import { fitTrees } from './run-trees.ts';

export type Out = { probabilities?: Float32Array; labels?: Int32Array; prediction?: Float32Array };

/** Below this many rows (training plus validation) auto compares by cross-validation: a tenth of them is too few to choose on. */
export const CV_MAX_ROWS = 5000;
export const CV_FOLDS = 5;

export interface LinearSetup {
  data: Loaded;
  encoder: Encoder;
  /** Every row encoded (local index = row index). */
  x: Csr;
  /** Class index, or the standardized target. */
  y: Float64Array;
  classes: number;
  target: { mean: number; scale: number };
  l2: number;
  deadline?: number;
}

export function linearSetup(
  data: Loaded,
  trainRows: Int32Array,
  hp: Hyperparameters,
  std: { mean: Float32Array; scale: Float32Array },
  target: { mean: number; scale: number },
  enc?: Encoder,
  deadline?: number,
): LinearSetup {
  const encoder = enc ?? fitEncoder(data, trainRows, hp, std);
  const x = encodeRows(
    encoder,
    data,
    Int32Array.from({ length: data.rows }, (_, i) => i),
  );
  const classes = hp.task === 'classification' ? data.classes!.length : 0;
  const y = classes ? Float64Array.from(data.y) : Float64Array.from(data.y, (v) => (v - target.mean) / target.scale);
  // scikit-learn's C=1 / alpha=1. Ridge is equivariant in y: on the standardized target the same
  // alpha gives the target-unit coefficients divided by the scale, so the penalty stays 1.
  return { data, encoder, x, y, classes, target, l2: 1, ...(deadline ? { deadline } : {}) };
}

export const fitRows = (s: LinearSetup, rows: ArrayLike<number>) =>
  fitLinear({ x: s.x, y: s.y, rows, classes: s.classes, l2: s.l2, ...(s.deadline ? { deadline: s.deadline } : {}) });

/** Predictions of a fitted layer for the given rows, shaped as the network's (in float64; the reference rows use the float32 path). */
export function predictLinear(s: LinearSetup, layer: DenseLayer, rows: ArrayLike<number>): Out {
  const C = layer.outputs;
  const { indptr, indices, values } = s.x;
  const z = new Float64Array(C);
  const probabilities = new Float32Array(rows.length * C);
  const labels = new Int32Array(rows.length);
  const prediction = new Float32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    for (let k = 0; k < C; k++) z[k] = layer.bias[k]!;
    for (let e = indptr[r]!; e < indptr[r + 1]!; e++) for (let k = 0; k < C; k++) z[k] = z[k]! + values[e]! * layer.weights[indices[e]! * C + k]!;
    if (!s.classes) {
      prediction[i] = z[0]! * s.target.scale + s.target.mean;
      continue;
    }
    const m = Math.max(...z);
    let sum = 0;
    for (let k = 0; k < C; k++) sum += Math.exp(z[k]! - m);
    for (let k = 0; k < C; k++) probabilities[i * C + k] = Math.exp(z[k]! - m) / sum;
    labels[i] = z.indexOf(m);
  }
  return s.classes ? { probabilities, labels } : { prediction };
}

/**
 * Out-of-fold predictions of each candidate over `rows` (CV_FOLDS folds, stratified by class for
 * classification), in the order of `rows`: every row is predicted by a model that did not see it.
 * The trees stop early on the held-out fold, as they do on the validation split.
 */
export function crossValidate(
  s: LinearSetup,
  rows: Int32Array,
  hp: Hyperparameters,
  gbdt: Parameters<typeof fitTrees>[4],
  std: { mean: Float32Array; scale: Float32Array },
): { linear: Out; gbdt: Out; y: Float64Array } {
  const order = new Rng(hp.seed ^ 0xc0ffee).shuffle(Int32Array.from(rows));
  // Stratify: by class, then dealt round-robin into the folds.
  if (s.classes) order.sort((a, b) => s.data.y[a]! - s.data.y[b]!);
  const fold = new Map<number, number>();
  order.forEach((r, i) => fold.set(r, i % CV_FOLDS));
  const C = s.classes || 1;
  const lin: Out = s.classes
    ? { probabilities: new Float32Array(rows.length * C), labels: new Int32Array(rows.length) }
    : { prediction: new Float32Array(rows.length) };
  const trees: Out = s.classes
    ? { probabilities: new Float32Array(rows.length * C), labels: new Int32Array(rows.length) }
    : { prediction: new Float32Array(rows.length) };
  const position = new Map(Array.from(rows, (r, i) => [r, i]));
  for (let k = 0; k < CV_FOLDS; k++) {
    const inFold = rows.filter((r) => fold.get(r) === k);
    const rest = rows.filter((r) => fold.get(r) !== k);
    if (!inFold.length) continue;
    const place = (dst: Out, src: Out) =>
      inFold.forEach((r, i) => {
        const at = position.get(r)!;
        if (src.prediction) dst.prediction![at] = src.prediction[i]!;
        else {
          dst.labels![at] = src.labels![i]!;
          dst.probabilities!.set(src.probabilities!.subarray(i * C, (i + 1) * C), at * C);
        }
      });
    place(lin, predictLinear(s, fitRows(s, rest), inFold));
    place(trees, fitTrees(s.data, rest, inFold, hp, gbdt, std, s.encoder).out);
  }
  return { linear: lin, gbdt: trees, y: Float64Array.from(rows, (r) => s.data.y[r]!) };
}

/** The score auto minimizes: validation log-loss (classes: a proper score, steadier than accuracy on few rows) or RMSE. */
export const lossOf = (m: TrainMetrics) => ('logLoss' in m ? m.logLoss : m.rmse);
