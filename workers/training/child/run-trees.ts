// The gbdt model type inside a training run: the trees learn from the encoded rows exactly as the
// exported graph's front end computes them (imputed and standardized numbers, indicators, one-hot
// categories), so their thresholds compare the same float32 values in the trainer and in onnxruntime.
import type { GbdtSettings, Hyperparameters } from '../../../core/jobs/train.ts';
import type { Loaded } from './data.ts';
import { densify, encodeRows, fitEncoder, type Encoder } from './encoder.ts';
import { rawScores, trainGbdt, type Ensemble } from './gbdt.ts';

export interface TreeOutcome {
  ensemble: Ensemble;
  /** The validation rows' predictions, shaped as the MLP's (class index and probabilities, or the prediction). */
  out: { probabilities?: Float32Array; labels?: Int32Array; prediction?: Float32Array };
}

/** Trains the ensemble on the training rows with early stopping on the validation rows. */
export function fitTrees(
  data: Loaded,
  trainRows: Int32Array,
  valRows: Int32Array,
  hp: Hyperparameters,
  settings: GbdtSettings & { deadline?: number },
  std: { mean: Float32Array; scale: Float32Array },
  enc?: Encoder,
): TreeOutcome & { encoder: Encoder } {
  // Numbers-only jobs have no encoder; the trees need the encoded (standardized) numbers all the same.
  const encoder = enc ?? fitEncoder(data, trainRows, hp, std);
  const all = Int32Array.from({ length: data.rows }, (_, i) => i);
  const x = densify(encodeRows(encoder, data, all), all);
  const classes = hp.task === 'classification' ? data.classes!.length : 0;
  const ensemble = trainGbdt({ x, width: encoder.width, y: data.y }, trainRows, valRows, classes, settings);
  return { ensemble, encoder, out: predictTrees(ensemble, x, encoder.width, valRows, classes) };
}

/** Predictions for the given rows of a dense encoded matrix, in float32 as the exported graph gives them. */
export function predictTrees(e: Ensemble, x: Float32Array, width: number, rows: Int32Array, classes: number): TreeOutcome['out'] {
  const s = new Float64Array(e.outputs);
  if (!classes) return { prediction: Float32Array.from(rows, (r) => (rawScores(e, x, width, r, s), s[0]!)) };
  const probabilities = new Float32Array(rows.length * classes);
  const labels = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    rawScores(e, x, width, r, s);
    const z = classes === 2 ? [0, s[0]!] : Array.from(s);
    const m = Math.max(...z);
    const ex = z.map((v) => Math.exp(v - m));
    const sum = ex.reduce((a, b) => a + b, 0);
    ex.forEach((v, k) => (probabilities[i * classes + k] = v / sum));
    labels[i] = z.indexOf(m);
  });
  return { probabilities, labels };
}
