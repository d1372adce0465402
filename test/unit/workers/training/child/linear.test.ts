// The exact linear fit: ridge agrees with its closed form, and logistic regression (two classes and
// multinomial) stops where scikit-learn's objective (log-losses + 0.5 ||W||^2, intercept free) has a zero gradient.
import { describe, expect, it } from 'vitest';
import type { Csr } from '../../../../../workers/training/child/encoder.ts';
import { fitLinear } from '../../../../../workers/training/child/linear.ts';
import { clearlyBetter } from '../../../../../workers/training/child/run-linear.ts';

const N = 200;
const D = 3;
let seed = 3;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
const X = Array.from({ length: N }, () => Array.from({ length: D }, rnd));
const csr: Csr = {
  rows: N,
  width: D,
  indptr: Int32Array.from({ length: N + 1 }, (_, i) => i * D),
  indices: Int32Array.from({ length: N * D }, (_, i) => i % D),
  values: Float32Array.from(X.flat()),
};
const xs = Array.from({ length: N }, (_, r) => Array.from(csr.values.subarray(r * D, (r + 1) * D)));
const rows = Int32Array.from({ length: N }, (_, i) => i);

/** Solves A v = b by Gaussian elimination (small, well-conditioned). */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((r, i) => [...r, b[i]!]);
  for (let c = 0; c < n; c++)
    for (let r = c + 1; r < n; r++) {
      const f = M[r]![c]! / M[c]![c]!;
      for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  const v = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) v[r] = (M[r]![n]! - M[r]!.slice(r + 1, n).reduce((s, a, j) => s + a * v[r + 1 + j]!, 0)) / M[r]![r]!;
  return v;
}

describe('exact linear fit', () => {
  it('ridge: the closed form of ||y - Xw - b||^2 + l2 ||w||^2 with a free intercept', () => {
    const y = Float64Array.from(xs, (x) => 2 * x[0]! - x[2]! + 0.5 + 0.3 * rnd());
    const l2 = 3;
    const layer = fitLinear({ x: csr, y, rows, classes: 0, l2 });
    // Normal equations on [x, 1], the intercept unpenalized.
    const Z = xs.map((x) => [...x, 1]);
    const A = Array.from({ length: D + 1 }, (_, i) =>
      Array.from({ length: D + 1 }, (_, j) => Z.reduce((s, z) => s + z[i]! * z[j]!, 0) + (i === j && i < D ? l2 : 0)),
    );
    const b = Array.from({ length: D + 1 }, (_, i) => Z.reduce((s, z, r) => s + z[i]! * y[r]!, 0));
    const want = solve(A, b);
    for (let j = 0; j < D; j++) expect(layer.weights[j]).toBeCloseTo(want[j]!, 4);
    expect(layer.bias[0]).toBeCloseTo(want[D]!, 4);
  });

  for (const classes of [2, 3]) {
    it(`logistic regression with ${classes} classes: zero gradient of the penalized log-loss`, () => {
      const y = Float64Array.from(xs, (x) => {
        const s = x[0]! + 0.5 * x[1]! + 0.4 * rnd();
        return classes === 2 ? (s > 0 ? 1 : 0) : s < -0.3 ? 0 : s < 0.3 ? 1 : 2;
      });
      const layer = fitLinear({ x: csr, y, rows, classes, l2: 1 });
      expect(layer.outputs).toBe(classes);
      // Two classes: logits [0, z], one weight vector as scikit-learn's binary LogisticRegression.
      if (classes === 2) for (let j = 0; j < D; j++) expect(layer.weights[j * 2]).toBe(0);
      const K = classes === 2 ? 1 : classes;
      const col = classes === 2 ? 1 : 0;
      const gw = Array.from({ length: D * K }, (_, i) => layer.weights[Math.floor(i / K) * classes + col + (i % K)]!);
      const gb = new Array<number>(K).fill(0);
      xs.forEach((x, r) => {
        const z = Array.from({ length: classes }, (_, k) => layer.bias[k]! + x.reduce((s, v, j) => s + v * layer.weights[j * classes + k]!, 0));
        const m = Math.max(...z);
        const e = z.map((v) => Math.exp(v - m));
        const sum = e.reduce((a, b) => a + b, 0);
        for (let k = 0; k < K; k++) {
          const d = e[col + k]! / sum - (y[r] === col + k ? 1 : 0);
          gb[k]! += d;
          x.forEach((v, j) => (gw[j * K + k]! += v * d));
        }
      });
      for (const g of [...gw, ...gb]) expect(Math.abs(g)).toBeLessThan(1e-3);
      // And it learned the rule: the first feature raises the last class.
      expect(layer.weights[0 * classes + classes - 1]!).toBeGreaterThan(layer.weights[0 * classes]!);
    });
  }

  it('leaves dropped columns at zero and fits the rest', () => {
    const y = Float64Array.from(xs, (x) => 2 * x[0]! - x[2]!);
    const layer = fitLinear({ x: csr, y, rows, classes: 0, l2: 1, drop: Uint8Array.of(0, 0, 1) });
    expect(layer.weights[2]).toBe(0);
    expect(layer.weights[0]).toBeGreaterThan(1.5);
  });

  it('takes another model only when its per-row losses are lower by two standard errors', () => {
    const simpler = Float64Array.from({ length: 400 }, (_, i) => 1 + (i % 7) / 7);
    const shifted = (by: number) => Float64Array.from(simpler, (v, i) => v - by + ((i % 5) - 2) * 0.05);
    expect(clearlyBetter(shifted(0.05), simpler)).toBe(true);
    expect(clearlyBetter(shifted(0.002), simpler)).toBe(false);
    expect(clearlyBetter(shifted(-0.05), simpler)).toBe(false);
  });
});
