// The linear model type on numbers and categories, fitted as scikit-learn fits its standard
// pipeline's last step: deterministically, to convergence, by full-batch L-BFGS on the encoded rows
// (the same float32 feature vector the exported graph's front end computes).
//   classification: LogisticRegression(C=1): sum of log-losses + 0.5 * ||W||^2, intercept unpenalized;
//     two classes as one weight vector (sigmoid), more as a multinomial softmax (sklearn's lbfgs);
//   regression: Ridge(alpha=1) on the standardized target (the network's convention): ridge is
//     equivariant in y, so this is Ridge's minimizer in target units divided by the target's scale.
// The result is one dense layer [width -> outputs] that export-columns writes as MatMul + Add + head.
import type { DenseLayer } from '../../onnx/export-mlp.ts';
import type { Csr } from './encoder.ts';

export interface LinearProblem {
  x: Csr;
  /** Per encoded row: class index, or the standardized target. */
  y: Float64Array;
  /** Local row indices of `x` to fit on. */
  rows: ArrayLike<number>;
  /** 0 for regression. */
  classes: number;
  /** L2 weight on the coefficients (1 = scikit-learn's C=1 / alpha=1 in the units of y). */
  l2: number;
  /** Columns left out (their weights stay 0), e.g. the missing indicators when cross-validation finds they do not help. */
  drop?: Uint8Array;
  deadline?: number;
}

const MAX_ITER = 500;
const MEMORY = 10;

/** Fits the model; returns the layer in network order: logits (two classes: [0, z]) or the standardized prediction. */
export function fitLinear(p: LinearProblem): DenseLayer {
  const d = p.x.width;
  const K = p.classes === 2 || p.classes === 0 ? 1 : p.classes;
  const theta = lbfgs((t, g) => objective(p, d, K, t, g), new Float64Array(d * K + K), p.deadline);
  const outputs = p.classes || 1;
  const weights = new Float32Array(d * outputs);
  const bias = new Float32Array(outputs);
  // Two classes: logits [0, z], so the head's softmax is the sigmoid of z.
  const col = p.classes === 2 ? 1 : 0;
  for (let j = 0; j < d; j++) for (let k = 0; k < K; k++) weights[j * outputs + col + k] = theta[j * K + k]!;
  for (let k = 0; k < K; k++) bias[col + k] = theta[d * K + k]!;
  return { weights, bias, inputs: d, outputs };
}

/** The penalized loss at theta ([d, K] weights row-major, then K intercepts); writes its gradient into g. */
function objective(p: LinearProblem, d: number, K: number, theta: Float64Array, g: Float64Array): number {
  g.fill(0);
  const { indptr, indices, values } = p.x;
  const drop = p.drop;
  const z = new Float64Array(K);
  let f = 0;
  for (let i = 0; i < p.rows.length; i++) {
    const r = p.rows[i]!;
    for (let k = 0; k < K; k++) z[k] = theta[d * K + k]!;
    for (let e = indptr[r]!; e < indptr[r + 1]!; e++) {
      if (drop?.[indices[e]!]) continue;
      const j = indices[e]! * K;
      const v = values[e]!;
      for (let k = 0; k < K; k++) z[k] = z[k]! + v * theta[j + k]!;
    }
    const y = p.y[r]!;
    if (p.classes === 0) {
      const diff = z[0]! - y;
      f += 0.5 * diff * diff;
      z[0] = diff;
    } else if (K === 1) {
      // log(1 + e^z) - y z, stably; dz = sigmoid(z) - y.
      const s = z[0]!;
      f += (s > 0 ? s + Math.log1p(Math.exp(-s)) : Math.log1p(Math.exp(s))) - y * s;
      z[0] = 1 / (1 + Math.exp(-s)) - y;
    } else {
      let m = -Infinity;
      for (let k = 0; k < K; k++) m = Math.max(m, z[k]!);
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(z[k]! - m);
      f += m + Math.log(sum) - z[y]!;
      for (let k = 0; k < K; k++) z[k] = Math.exp(z[k]! - m) / sum - (k === y ? 1 : 0);
    }
    for (let e = indptr[r]!; e < indptr[r + 1]!; e++) {
      if (drop?.[indices[e]!]) continue;
      const j = indices[e]! * K;
      const v = values[e]!;
      for (let k = 0; k < K; k++) g[j + k] = g[j + k]! + v * z[k]!;
    }
    for (let k = 0; k < K; k++) g[d * K + k] = g[d * K + k]! + z[k]!;
  }
  for (let j = 0; j < d * K; j++) {
    f += 0.5 * p.l2 * theta[j]! * theta[j]!;
    g[j] = g[j]! + p.l2 * theta[j]!;
  }
  return f;
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const maxAbs = (a: Float64Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** L-BFGS with a backtracking (Armijo) line search; a convex smooth objective, so it converges from zero. */
function lbfgs(fg: (t: Float64Array, g: Float64Array) => number, x: Float64Array, deadline?: number): Float64Array {
  const n = x.length;
  let g = new Float64Array(n);
  let f = fg(x, g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  // scikit-learn's lbfgs stops at a projected gradient of 1e-4 (tol); tighter here, it costs little.
  const tol = 1e-6 * Math.max(1, maxAbs(g));
  for (let it = 0; it < MAX_ITER && maxAbs(g) > tol; it++) {
    if (deadline && Date.now() > deadline) break;
    // Two-loop recursion: direction = -H g.
    const q = Float64Array.from(g);
    const alpha: number[] = [];
    for (let i = S.length - 1; i >= 0; i--) {
      const a = dot(S[i]!, q) / dot(Y[i]!, S[i]!);
      alpha[i] = a;
      for (let j = 0; j < n; j++) q[j] = q[j]! - a * Y[i]![j]!;
    }
    const gamma = S.length ? dot(S.at(-1)!, Y.at(-1)!) / dot(Y.at(-1)!, Y.at(-1)!) : 1 / Math.max(1, Math.sqrt(dot(g, g)));
    for (let j = 0; j < n; j++) q[j] = q[j]! * gamma;
    for (let i = 0; i < S.length; i++) {
      const b = dot(Y[i]!, q) / dot(Y[i]!, S[i]!);
      for (let j = 0; j < n; j++) q[j] = q[j]! + S[i]![j]! * (alpha[i]! - b);
    }
    let slope = -dot(g, q);
    if (!(slope < 0)) {
      // Not a descent direction (numerically): restart from the gradient.
      S.length = Y.length = 0;
      q.set(g);
      slope = -dot(g, g);
    }
    let step = 1;
    const xn = new Float64Array(n);
    const gn = new Float64Array(n);
    let fn = Infinity;
    for (let ls = 0; ls < 40; ls++) {
      for (let j = 0; j < n; j++) xn[j] = x[j]! - step * q[j]!;
      fn = fg(xn, gn);
      if (fn <= f + 1e-4 * step * slope) break;
      step /= 2;
    }
    if (!(fn < f)) break;
    const s = Float64Array.from(xn, (v, j) => v - x[j]!);
    const y = Float64Array.from(gn, (v, j) => v - g[j]!);
    if (dot(s, y) > 1e-12) {
      S.push(s);
      Y.push(y);
      if (S.length > MEMORY) {
        S.shift();
        Y.shift();
      }
    }
    const done = f - fn <= 1e-12 * Math.max(1, Math.abs(f));
    x = xn;
    g = gn;
    f = fn;
    if (done) break;
  }
  return x;
}
