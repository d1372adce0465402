// Missing numbers, as the exported graph treats them: each numeric feature's gaps (NaN) become a
// statistic of the training split (median by default, as scikit-learn's SimpleImputer), and every
// feature that had gaps in the training split gains a 0/1 "was missing" feature after the numeric
// ones (SimpleImputer's add_indicator). Standardization then sees [filled | indicators].
import type { Imputation } from '../../../core/jobs/train.ts';
import type { Loaded } from './data.ts';

export interface NumericImputation {
  /** Per numeric feature: the value a gap becomes (float32). */
  fill: Float32Array;
  /** Numeric feature indices that get a missing indicator, ascending. */
  indicators: number[];
}

/** Fits the fill values and indicators on the training rows of the raw matrix (NaN = missing). */
export function fitImputation(d: Pick<Loaded, 'x' | 'features'>, trainRows: Int32Array, imp: Imputation): NumericImputation {
  const F = d.features;
  const fill = new Float32Array(F);
  const indicators: number[] = [];
  for (let f = 0; f < F; f++) {
    const present: number[] = [];
    for (const r of trainRows) {
      const v = d.x[r * F + f]!;
      if (!Number.isNaN(v)) present.push(v);
    }
    if (present.length < trainRows.length) indicators.push(f);
    fill[f] = imp.strategy === 'constant' ? (imp.fillValue ?? 0) : statistic(present, imp.strategy);
  }
  return { fill, indicators };
}

/** Median (the mean of the middle two for an even count) or mean; 0 for a feature without values in the training split. */
function statistic(v: number[], strategy: 'median' | 'mean'): number {
  if (!v.length) return 0;
  if (strategy === 'mean') return v.reduce((a, b) => a + b, 0) / v.length;
  const s = Float64Array.from(v).sort();
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The matrix as the graph's numeric block sees it: gaps filled, then one 0/1 column per indicator; width F + indicators. */
export function applyImputation(x: Float32Array, F: number, imp: NumericImputation): { x: Float32Array; width: number } {
  const rows = F ? x.length / F : 0;
  const K = imp.indicators.length;
  const W = F + K;
  const out = new Float32Array(rows * W);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < F; f++) {
      const v = x[r * F + f]!;
      out[r * W + f] = Number.isNaN(v) ? imp.fill[f]! : v;
    }
    imp.indicators.forEach((f, k) => {
      out[r * W + F + k] = Number.isNaN(x[r * F + f]!) ? 1 : 0;
    });
  }
  return { x: out, width: W };
}
