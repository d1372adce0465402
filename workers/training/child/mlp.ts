// The trainer: an MLP on TensorFlow.js's wasm backend with the backward pass and Adam written out.
// Measured on this backend, a matMul with a transpose flag is 3-5x slower than transposing first,
// element-wise kernels cost more than the matMuls of a small MLP, and autodiff adds both; so the
// matMuls run fused (bias + relu), gradients use explicit transposes, and Adam runs in plain JS on
// Float32Arrays, where its whole state (moments, bias-correction powers) is checkpointed and
// resumed bit for bit. The shuffle is our own seeded loop (model.fit shuffles with Math.random).
import type { CurvePoint, Hyperparameters } from '../../../core/jobs/train.ts';
import type { TrainState } from './checkpoint.ts';
import { Rng } from './data.ts';
import { densify, type Csr } from './encoder.ts';
import type { Tf } from './tf.ts';

type Tensor = ReturnType<Tf['tensor']>;
type Tensor2D = ReturnType<Tf['tensor2d']>;
const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;

/** [inputs, ...hidden, outputs] */
export function layerSizes(hp: Hyperparameters, inputs: number, outputs: number): number[] {
  return [inputs, ...(hp.model.type === 'mlp' ? hp.model.hidden : []), outputs];
}

/** Fresh state: Glorot-uniform weights and biases (as scikit-learn's MLP) drawn from the seed. */
export function initState(sizes: number[], seed: number, specHash: string): TrainState {
  const rng = new Rng(seed);
  const params: Float32Array[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const bound = Math.sqrt(6 / (sizes[l]! + sizes[l + 1]!));
    const draw = (n: number) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * bound);
    params.push(draw(sizes[l]! * sizes[l + 1]!), draw(sizes[l + 1]!));
  }
  const zeros = () => params.map((p) => new Float32Array(p.length));
  return {
    specHash,
    epoch: 0,
    rngState: rng.state,
    step: 0,
    beta1Power: 1,
    beta2Power: 1,
    params,
    m: zeros(),
    v: zeros(),
    bestEpoch: 0,
    bestValLoss: Infinity,
    bestParams: params.map((p) => p.slice()),
    sinceBest: 0,
    stopped: false,
    curve: [],
  };
}

function shapeOf(sizes: number[], i: number): number[] {
  const l = i >> 1;
  return i % 2 === 0 ? [sizes[l]!, sizes[l + 1]!] : [sizes[l + 1]!];
}

/** Activations of every layer, input first; the last is the logits (or standardized prediction). */
function forward(tf: Tf, ps: Tensor[], x: Tensor): Tensor2D[] {
  const hs = [x as Tensor2D];
  for (let l = 0; l < ps.length; l += 2) {
    const last = l + 2 >= ps.length;
    hs.push(tf.fused.matMul({ a: hs[hs.length - 1]!, b: ps[l] as Tensor2D, bias: ps[l + 1]!, activation: last ? 'linear' : 'relu' }) as Tensor2D);
  }
  return hs;
}

/** Summed data loss over the rows and its gradient with respect to the last layer's output (mean over `rows`). */
function lossAndGrad(tf: Tf, task: Hyperparameters['task'], out: Tensor2D, y: Tensor, rows: number): [Tensor, Tensor2D] {
  if (task === 'classification') {
    const ls = tf.logSoftmax(out);
    return [tf.neg(tf.sum(tf.mul(y, ls))), tf.mul(tf.sub(tf.exp(ls), y), 1 / rows)];
  }
  const diff = tf.sub(out, y);
  return [tf.sum(tf.square(diff)), tf.mul(diff, 2 / rows)];
}

/** Gradients of the mean loss for every parameter, in params order. */
function backward(tf: Tf, ps: Tensor[], hs: Tensor2D[], dOut: Tensor2D): Tensor[] {
  const grads: Tensor[] = new Array(ps.length);
  let dz = dOut;
  for (let l = ps.length / 2 - 1; l >= 0; l--) {
    grads[2 * l] = tf.matMul(tf.transpose(hs[l]!), dz);
    grads[2 * l + 1] = tf.sum(dz, 0);
    // relu'(z) is 1 where the layer's output is positive.
    if (l > 0) dz = tf.mul(tf.matMul(dz, tf.transpose(ps[2 * l] as Tensor2D)), tf.step(hs[l]!));
  }
  return grads;
}

/** One Adam step in place (scikit-learn's form), with the L2 term on weights only. */
function adam(s: TrainState, grads: Float32Array[], lr: number, l2PerRow: number): void {
  s.step++;
  s.beta1Power *= BETA1;
  s.beta2Power *= BETA2;
  const lrT = (lr * Math.sqrt(1 - s.beta2Power)) / (1 - s.beta1Power);
  grads.forEach((g, i) => {
    const p = s.params[i]!;
    const m = s.m[i]!;
    const v = s.v[i]!;
    const decay = i % 2 === 0 ? l2PerRow : 0;
    for (let k = 0; k < p.length; k++) {
      const gk = g[k]! + decay * p[k]!;
      const mk = (m[k] = BETA1 * m[k]! + (1 - BETA1) * gk);
      const vk = (v[k] = BETA2 * v[k]! + (1 - BETA2) * gk * gk);
      p[k] = p[k]! - (lrT * mk) / (Math.sqrt(vk) + EPS);
    }
  });
}

export interface TrainInput {
  tf: Tf;
  hp: Hyperparameters;
  sizes: number[];
  /** Standardized features [rows, F] and targets (one-hot [rows, C], or standardized [rows, 1]). */
  xTrain?: Tensor;
  yTrain: Tensor;
  xVal?: Tensor;
  yVal: Tensor;
  /** Instead of xTrain/xVal: encoded rows (text, categories), made dense a batch at a time. */
  sparse?: { train: Csr; val: Csr };
  /** Regression: valMetric is the RMSE in target units. */
  targetScale: number;
  state: TrainState;
  /** After every epoch, with the state to checkpoint. */
  onEpoch(state: TrainState, point: CurvePoint): Promise<void>;
}

/** Runs epochs from state.epoch + 1 until the budget or early stopping ends it; returns the final state. */
export async function train(o: TrainInput): Promise<TrainState> {
  const { tf, hp, sizes } = o;
  const s = o.state;
  const n = o.sparse ? o.sparse.train.rows : o.xTrain!.shape[0]!;
  const rng = new Rng(s.rngState);
  const upload = (params: Float32Array[]) => params.map((p, i) => tf.tensor(p, shapeOf(sizes, i)));
  while (!s.stopped && s.epoch < hp.epochs) {
    const perm = rng.shuffle(Int32Array.from({ length: n }, (_, i) => i));
    let lossSum = 0;
    for (let start = 0; start < n; start += hp.batchSize) {
      const rows = perm.subarray(start, Math.min(n, start + hp.batchSize));
      const ps = upload(s.params);
      const [loss, ...grads] = tf.tidy(() => {
        const idx = tf.tensor1d(rows, 'int32');
        const x = o.sparse ? tf.tensor2d(densify(o.sparse.train, rows), [rows.length, o.sparse.train.width]) : tf.gather(o.xTrain!, idx);
        const hs = forward(tf, ps, x);
        const [l, dOut] = lossAndGrad(tf, hp.task, hs[hs.length - 1]!, tf.gather(o.yTrain, idx), rows.length);
        return [l, ...backward(tf, ps, hs, dOut)];
      });
      // Read outside tidy: reading inside a step is what makes loops slow.
      lossSum += loss!.dataSync()[0]!;
      const g = grads.map((t) => t.dataSync() as Float32Array);
      tf.dispose([...ps, loss!, ...grads]);
      adam(s, g, hp.learningRate, hp.l2 / rows.length);
    }
    const loss = lossSum / n;
    const { valLoss, valMetric } = evaluate(o, s.params);
    s.epoch++;
    s.rngState = rng.state;
    // Early stopping keeps the weights of the epoch with the lowest validation loss.
    if (Number.isFinite(valLoss) && valLoss < (s.bestValLoss ?? Infinity)) {
      s.bestValLoss = valLoss;
      s.bestEpoch = s.epoch;
      s.bestParams = s.params.map((p) => p.slice());
      s.sinceBest = 0;
    } else {
      s.sinceBest++;
      if (s.sinceBest >= hp.patience || !Number.isFinite(loss)) s.stopped = true;
    }
    const point = { epoch: s.epoch, loss, valLoss, valMetric };
    s.curve.push(point);
    await o.onEpoch(s, point);
  }
  return s;
}

/** Rows per forward pass when encoded rows are made dense for evaluation or prediction. */
const EVAL_ROWS = 1024;

/** Mean validation loss, and accuracy (classification) or RMSE in target units (regression). */
function evaluate(o: TrainInput, params: Float32Array[]): { valLoss: number; valMetric: number } {
  const { tf } = o;
  const rows = o.sparse ? o.sparse.val.rows : o.xVal!.shape[0]!;
  let lossSum = 0;
  let rightSum = 0;
  for (let start = 0; start < rows; start += o.sparse ? EVAL_ROWS : rows) {
    const end = o.sparse ? Math.min(rows, start + EVAL_ROWS) : rows;
    const [l, metric] = tf.tidy(() => {
      const ps = params.map((p, i) => tf.tensor(p, shapeOf(o.sizes, i)));
      const local = Int32Array.from({ length: end - start }, (_, i) => start + i);
      const x = o.sparse ? tf.tensor2d(densify(o.sparse.val, local), [local.length, o.sparse.val.width]) : o.xVal!;
      const y = o.sparse ? tf.gather(o.yVal, tf.tensor1d(local, 'int32')) : o.yVal;
      const out = forward(tf, ps, x).pop()!;
      const [sum] = lossAndGrad(tf, o.hp.task, out, y, local.length);
      const right = o.hp.task === 'classification' ? tf.sum(tf.cast(tf.equal(tf.argMax(out, 1), tf.argMax(y, 1)), 'float32')) : tf.scalar(0);
      return [sum, right];
    });
    lossSum += l!.dataSync()[0]!;
    rightSum += metric!.dataSync()[0]!;
    tf.dispose([l!, metric!]);
  }
  const valLoss = lossSum / rows;
  const valMetric = o.hp.task === 'classification' ? rightSum / rows : Math.sqrt(valLoss) * o.targetScale;
  return { valLoss, valMetric };
}

/** predict() for encoded rows (already standardized and encoded, as the graph's concatenated features). */
export function predictEncoded(
  tf: Tf,
  sizes: number[],
  params: Float32Array[],
  m: Csr,
  task: Hyperparameters['task'],
  target: { mean: number; scale: number },
): { probabilities?: Float32Array; labels?: Int32Array; prediction?: Float32Array } {
  const C = sizes[sizes.length - 1]!;
  const probabilities = new Float32Array(m.rows * C);
  const labels = new Int32Array(m.rows);
  const prediction = new Float32Array(m.rows);
  for (let start = 0; start < m.rows; start += EVAL_ROWS) {
    const local = Int32Array.from({ length: Math.min(m.rows, start + EVAL_ROWS) - start }, (_, i) => start + i);
    const outs = tf.tidy(() => {
      const ps = params.map((p, i) => tf.tensor(p, shapeOf(sizes, i)));
      const out = forward(tf, ps, tf.tensor2d(densify(m, local), [local.length, m.width])).pop()!;
      if (task === 'classification') return [tf.softmax(out), tf.argMax(out, 1)];
      return [tf.add(tf.mul(out, tf.scalar(target.scale)), tf.scalar(target.mean))];
    });
    const read = outs.map((t) => t.dataSync());
    tf.dispose(outs);
    if (task === 'classification') {
      probabilities.set(read[0] as Float32Array, start * C);
      labels.set(Int32Array.from(read[1]!), start);
    } else prediction.set(read[0] as Float32Array, start);
  }
  return task === 'classification' ? { probabilities, labels } : { prediction };
}

/** The network's outputs for raw rows with the given parameters, computed as the exported graph does. */
export function predict(
  tf: Tf,
  sizes: number[],
  params: Float32Array[],
  x: Float32Array,
  mean: Float32Array,
  scale: Float32Array,
  task: Hyperparameters['task'],
  target: { mean: number; scale: number },
): { probabilities?: Float32Array; labels?: Int32Array; prediction?: Float32Array } {
  const rows = x.length / sizes[0]!;
  const outs = tf.tidy(() => {
    const ps = params.map((p, i) => tf.tensor(p, shapeOf(sizes, i)));
    const xs = tf.div(tf.sub(tf.tensor2d(x, [rows, sizes[0]!]), tf.tensor1d(mean)), tf.tensor1d(scale));
    const out = forward(tf, ps, xs).pop()!;
    if (task === 'classification') return [tf.softmax(out), tf.argMax(out, 1)];
    return [tf.add(tf.mul(out, tf.scalar(target.scale)), tf.scalar(target.mean))];
  });
  const read = outs.map((t) => t.dataSync());
  tf.dispose(outs);
  if (task === 'classification') return { probabilities: read[0] as Float32Array, labels: Int32Array.from(read[1]!) };
  return { prediction: read[0] as Float32Array };
}
