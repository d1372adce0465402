// The linear model type inside a training run (numbers and categories; text jobs keep the network
// path), and auto's choice between model types by k-fold cross-validation on small data.
import type { Hyperparameters, TrainMetrics } from '../../../core/jobs/train.ts';
import type { DenseLayer } from '../../onnx/export-mlp.ts';
import { Rng, type Loaded } from './data.ts';
import { densify, encodeRows, fitEncoder, type Csr, type Encoder } from './encoder.ts';
import { fitLinear } from './linear.ts';
import { fitTrees, predictTrees } from './run-trees.ts';

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

export const fitRows = (s: LinearSetup, rows: ArrayLike<number>, drop?: Uint8Array) =>
  fitLinear({ x: s.x, y: s.y, rows, classes: s.classes, l2: s.l2, ...(drop ? { drop } : {}), ...(s.deadline ? { deadline: s.deadline } : {}) });

/** The encoded columns of the missing indicators (after the imputed numbers), to leave out; undefined when there are none. */
export function indicatorColumns(s: LinearSetup, numbers: number, indicators: number): Uint8Array | undefined {
  if (!indicators) return undefined;
  const drop = new Uint8Array(s.x.width);
  drop.fill(1, numbers, numbers + indicators);
  return drop;
}

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
 */
export function crossValidate(
  s: LinearSetup,
  rows: Int32Array,
  hp: Hyperparameters,
  gbdt: Parameters<typeof fitTrees>[4],
  std: { mean: Float32Array; scale: Float32Array },
  noIndicators?: Uint8Array,
): { linear: Out; plain?: Out; gbdt: Out; y: Float64Array } {
  const order = new Rng(hp.seed ^ 0xc0ffee).shuffle(Int32Array.from(rows));
  // Stratify: by class, then dealt round-robin into the folds.
  if (s.classes) order.sort((a, b) => s.data.y[a]! - s.data.y[b]!);
  const fold = new Map<number, number>();
  order.forEach((r, i) => fold.set(r, i % CV_FOLDS));
  const C = s.classes || 1;
  const lin: Out = s.classes
    ? { probabilities: new Float32Array(rows.length * C), labels: new Int32Array(rows.length) }
    : { prediction: new Float32Array(rows.length) };
  const blank = (): Out =>
    s.classes ? { probabilities: new Float32Array(rows.length * C), labels: new Int32Array(rows.length) } : { prediction: new Float32Array(rows.length) };
  const trees = blank();
  const plain = noIndicators && blank();
  const position = new Map(Array.from(rows, (r, i) => [r, i]));
  const all = Int32Array.from({ length: s.x.rows }, (_, i) => i);
  let dense: Float32Array | undefined;
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
    if (plain) place(plain, predictLinear(s, fitRows(s, rest, noIndicators), inFold));
    // The trees stop early on a tenth of the other folds, never on the fold they are scored on.
    const inner = rest.filter((_, i) => i % 10 === 9);
    const { ensemble } = fitTrees(
      s.data,
      rest.filter((_, i) => i % 10 !== 9),
      inner,
      hp,
      gbdt,
      std,
      s.encoder,
    );
    place(trees, predictTrees(ensemble, (dense ??= densify(s.x, all)), s.x.width, inFold, s.classes));
  }
  return { linear: lin, ...(plain ? { plain } : {}), gbdt: trees, y: Float64Array.from(rows, (r) => s.data.y[r]!) };
}

/** The score auto minimizes: validation log-loss (classes: a proper score, steadier than accuracy on few rows) or RMSE. */
export const lossOf = (m: TrainMetrics) => ('logLoss' in m ? m.logLoss : m.rmse);

/** Per-row losses: log-loss (clipped as scikit-learn does) or squared error. */
export function rowLosses(out: Out, y: Float64Array, classes: number): Float64Array {
  if (out.probabilities) return Float64Array.from(y, (c, i) => -Math.log(Math.min(1 - 1e-15, Math.max(1e-15, out.probabilities![i * classes + c]!))));
  return Float64Array.from(y, (v, i) => (v - out.prediction![i]!) ** 2);
}

/** Standard errors by which another model must beat the linear one in cross-validation to be kept instead. */
export const SE_MARGIN = 2;

/**
 * Whether `other` beats `simpler` by more than SE_MARGIN standard errors of their paired per-row loss
 * difference (a one-sided test at about 2.5%): on a few hundred rows smaller gaps are mostly the
 * noise of the split, and the simpler model is the safer bet (measured: on the diabetes table's
 * third split the trees were ahead by 1.2 standard errors in cross-validation, 0.07 R^2 behind on the test rows).
 */
export function clearlyBetter(other: Float64Array, simpler: Float64Array): boolean {
  const n = other.length;
  const d = Float64Array.from(other, (v, i) => v - simpler[i]!);
  const m = d.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(d.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, n - 1));
  return m < (-SE_MARGIN * sd) / Math.sqrt(n);
}
