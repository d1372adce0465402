// One distillation run, in the training process: a student MLP learns the teacher's outputs on the
// transfer set the worker wrote (rows the teacher labelled through the engine). Classification
// students learn the teacher's soft outputs at a temperature T: the trainer fits softmax(z') to
// softmax(teacher logits / T), and the export scales the last layer by T, so the student's logits
// are T z' and its probabilities match the teacher's at T = 1. Regression students fit the value.
import { deserialize } from 'node:v8';
import type { CurvePoint, Hyperparameters } from '../../../core/jobs/train.ts';
import { exportStudent, type DenseLayer, type StudentHead } from '../../onnx/export-mlp.ts';
import type { Dim } from '../../onnx/builder.ts';
import type { ArtifactStore } from '../../../core/storage/index.ts';
import { standardization } from './data.ts';
import { initState, train } from './mlp.ts';
import { initTf } from './tf.ts';

/** What the worker hands over, v8-serialized in the store. */
export interface Transfer {
  task: 'classification' | 'regression';
  /** Values per input row (flattened) and target columns (classes, or 1 for a value). */
  features: number;
  outputs: number;
  /** Row-major inputs and targets: soft class probabilities at the temperature, or values. */
  xTrain: Float32Array;
  yTrain: Float32Array;
  xVal: Float32Array;
  yVal: Float32Array;
}

export interface DistillTask {
  jobId: string;
  transferKey: string;
  studentKey: string;
  hidden: number[];
  epochs: number;
  temperature: number;
  batchSize: number;
  learningRate: number;
  patience: number;
  seed: number;
  input: { name: string; shape: Dim[] };
  heads: StudentHead[];
  metadata?: Record<string, string>;
}

export interface DistillProgress {
  step: 'distilling';
  epoch: number;
  epochs: number;
  loss: number;
  valLoss: number;
  valMetric: number;
  bestEpoch: number;
}
export interface DistillOutcome {
  studentKey: string;
  epochsRun: number;
  bestEpoch: number;
  curve: CurvePoint[];
}

export async function runDistill(store: ArtifactStore, t: DistillTask, onProgress?: (p: DistillProgress) => Promise<void> | void): Promise<DistillOutcome> {
  const tf = await initTf();
  const d = deserialize(await store.get(t.transferKey)) as Transfer;
  const F = d.features;
  const C = d.outputs;
  const nTrain = d.xTrain.length / F;
  const nVal = d.xVal.length / F;
  const all = Int32Array.from({ length: nTrain }, (_, i) => i);
  const { mean, scale } = standardization({ rows: nTrain, features: F, x: d.xTrain, y: new Float32Array(nTrain) }, all);
  let value = { mean: 0, scale: 1 };
  if (d.task === 'regression') {
    const mu = d.yTrain.reduce((a, b) => a + b, 0) / nTrain;
    const sd = Math.sqrt(d.yTrain.reduce((a, b) => a + (b - mu) ** 2, 0) / nTrain);
    value = { mean: Math.fround(mu), scale: Math.fround(sd > 1e-12 ? sd : 1) };
  }
  const sizes = [F, ...t.hidden, C];
  const hp: Hyperparameters = {
    task: d.task,
    target: '',
    features: [],
    model: { type: 'mlp', hidden: t.hidden },
    epochs: t.epochs,
    batchSize: Math.min(t.batchSize, nTrain),
    learningRate: t.learningRate,
    validationSplit: nVal / (nTrain + nVal),
    patience: t.patience,
    l2: 0,
    seed: t.seed,
  };
  const tensors = tf.tidy(() => {
    const std = (x: Float32Array, n: number) => tf.div(tf.sub(tf.tensor2d(x, [n, F]), tf.tensor1d(mean)), tf.tensor1d(scale));
    const ys = (y: Float32Array, n: number) =>
      d.task === 'classification' ? tf.tensor2d(y, [n, C]) : tf.div(tf.sub(tf.tensor2d(y, [n, 1]), value.mean), value.scale);
    return { xTrain: std(d.xTrain, nTrain), yTrain: ys(d.yTrain, nTrain), xVal: std(d.xVal, nVal), yVal: ys(d.yVal, nVal) };
  });
  let state = initState(sizes, t.seed, t.jobId);
  try {
    state = await train({
      tf,
      hp,
      sizes,
      ...tensors,
      targetScale: value.scale,
      state,
      onEpoch: async (s, point) => {
        await onProgress?.({ step: 'distilling', ...point, epochs: t.epochs, bestEpoch: s.bestEpoch });
      },
    });
  } finally {
    tf.dispose(Object.values(tensors));
  }
  const layers: DenseLayer[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const last = l + 2 === sizes.length;
    // The trainer fit z' = z / T; the student's logits are T z'.
    const k = last && d.task === 'classification' ? t.temperature : 1;
    const w = state.bestParams[2 * l]!.map((v) => v * k);
    const b = state.bestParams[2 * l + 1]!.map((v) => v * k);
    layers.push({ weights: w, bias: b, inputs: sizes[l]!, outputs: sizes[l + 1]! });
  }
  const bytes = exportStudent({
    input: t.input,
    mean,
    scale,
    layers,
    heads: t.heads,
    valueMean: value.mean,
    valueScale: value.scale,
    ...(t.metadata ? { metadata: t.metadata } : {}),
  });
  await store.put(t.studentKey, bytes);
  return { studentKey: t.studentKey, epochsRun: state.epoch, bestEpoch: state.bestEpoch, curve: state.curve };
}
