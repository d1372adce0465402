// The tree builder: bin edges and split finding on known data, log-loss and squared error boosting,
// early stopping, determinism, and the TreeEnsembleRegressor export equal to the trees' own scores in
// onnxruntime (and accepted by the official checker).
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { binEdges, binRows, rawScores, trainGbdt, type GbdtOptions } from '../../../../../workers/training/child/gbdt.ts';
import { exportColumns } from '../../../../../workers/onnx/export-columns.ts';
import { onnxCheck } from '../../../../helpers/onnx-checker.ts';

const OPTS: GbdtOptions = { trees: 100, maxLeaves: 31, maxDepth: 8, learningRate: 0.1, minSamplesLeaf: 5, l2: 0, maxBins: 255, patience: 10 };
const range = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

/** Seeded rows: two features, the class decided by x0 > 0.3 alone (x1 is noise). */
function rows(n: number, seed: number) {
  let s = seed;
  const r = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const x = new Float32Array(n * 2);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[2 * i] = Math.fround(r());
    x[2 * i + 1] = Math.fround(r());
    y[i] = x[2 * i]! > 0.3 ? 1 : 0;
  }
  return { x, y, width: 2 };
}

describe('gbdt', () => {
  it('bins by training values: every distinct value but the largest is a threshold, and x <= edge[b] exactly when bin <= b', () => {
    const d = { x: Float32Array.of(3, 1, 2, 2, 5), width: 1, y: new Float32Array(5) };
    const edges = binEdges(d, range(5), 255);
    expect(Array.from(edges[0]!)).toEqual([1, 2, 3]);
    expect(Array.from(binRows(d, range(5), edges)[0]!)).toEqual([2, 0, 1, 1, 3]);
    // Past maxBins: at most maxBins - 1 thresholds, all below the largest value.
    const many = { x: Float32Array.from({ length: 1000 }, (_, i) => i), width: 1, y: new Float32Array(1000) };
    const e = binEdges(many, range(1000), 16)[0]!;
    expect(e.length).toBeLessThanOrEqual(15);
    expect(e[e.length - 1]!).toBeLessThan(999);
  });

  it('finds the split that decides the class, on the right feature, and classifies held-out rows', () => {
    const d = rows(400, 7);
    const e = trainGbdt(
      d,
      range(300),
      Int32Array.from({ length: 100 }, (_, i) => 300 + i),
      2,
      OPTS,
    );
    const root = e.trees[0]!;
    expect(root.feature[0]).toBe(0);
    // The threshold is the largest training value at or below 0.3.
    expect(root.threshold[0]!).toBeLessThanOrEqual(0.3);
    expect(root.threshold[0]!).toBeGreaterThan(0.25);
    const s = new Float64Array(1);
    let right = 0;
    for (let i = 300; i < 400; i++) {
      rawScores(e, d.x, 2, i, s);
      if ((s[0]! > 0 ? 1 : 0) === d.y[i]) right++;
    }
    expect(right).toBeGreaterThanOrEqual(97);
  });

  it('stops early and keeps the best round; the same data gives the same trees', () => {
    const d = rows(300, 3);
    const train = range(200);
    const val = Int32Array.from({ length: 100 }, (_, i) => 200 + i);
    const a = trainGbdt(d, train, val, 2, { ...OPTS, trees: 500 });
    expect(a.roundsRun).toBeLessThan(500);
    expect(a.roundsRun - a.rounds).toBe(OPTS.patience);
    expect(a.curve[a.rounds - 1]! - Math.min(...a.curve)).toBeLessThan(1e-9);
    const b = trainGbdt(d, train, val, 2, { ...OPTS, trees: 500 });
    expect(b.trees).toEqual(a.trees);
    // Past the deadline no further round starts: one round, kept.
    const late = trainGbdt(d, train, val, 2, { ...OPTS, trees: 500, deadline: Date.now() - 1 });
    expect([late.roundsRun, late.rounds, late.trees.length]).toEqual([1, 1, 1]);
  });

  it('regresses with squared error and honours minSamplesLeaf', () => {
    const n = 300;
    const x = Float32Array.from({ length: n }, (_, i) => i / n);
    const y = Float32Array.from(x, (v) => (v < 0.5 ? 1 : 3));
    const e = trainGbdt({ x, width: 1, y }, range(n), range(n), 0, { ...OPTS, minSamplesLeaf: 40 });
    const s = new Float64Array(1);
    rawScores(e, x, 1, 10, s);
    expect(s[0]!).toBeCloseTo(1, 1);
    rawScores(e, x, 1, 290, s);
    expect(s[0]!).toBeCloseTo(3, 1);
    // No leaf smaller than 40 rows: count rows per leaf of the first tree.
    const t = e.trees[0]!;
    const counts = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      let nd = 0;
      while (t.feature[nd]! >= 0) nd = x[i]! <= t.threshold[nd]! ? t.left[nd]! : t.right[nd]!;
      counts.set(nd, (counts.get(nd) ?? 0) + 1);
    }
    expect(Math.min(...counts.values())).toBeGreaterThanOrEqual(40);
  });

  it('exports behind the column front end: onnxruntime gives the trees own probabilities, for two and three classes', async () => {
    for (const classes of [2, 3]) {
      const n = 300;
      let s = 11;
      const r = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
      const raw = Float32Array.from({ length: n * 2 }, () => Math.fround(r() * 10));
      const y = Float32Array.from({ length: n }, (_, i) => Math.min(classes - 1, Math.floor(raw[2 * i]! / (10 / classes))));
      // Identity front end (mean 0, scale 1, nothing missing): the trees see the raw values.
      const e = trainGbdt(
        { x: raw, width: 2, y },
        range(250),
        Int32Array.from({ length: 50 }, (_, i) => 250 + i),
        classes,
        OPTS,
      );
      const labels = Array.from({ length: classes }, (_, k) => `c${k}`);
      const bytes = exportColumns({
        inputs: [
          { name: 'a', kind: 'numeric' },
          { name: 'b', kind: 'numeric' },
        ],
        numeric: ['a', 'b'],
        fill: new Float32Array(2),
        indicators: [],
        mean: new Float32Array(2),
        scale: Float32Array.of(1, 1),
        blocks: [],
        layers: [],
        trees: e,
        task: 'classification',
        classes: labels,
      });
      expect(await onnxCheck(bytes)).toBeNull();
      const session = await ort.InferenceSession.create(bytes);
      const col = (j: number) =>
        new ort.Tensor(
          'float32',
          Float32Array.from({ length: n }, (_, i) => raw[2 * i + j]!),
          [n, 1],
        );
      const out = await session.run({ a: col(0), b: col(1) });
      const probs = out.probabilities!.data as Float32Array;
      const sc = new Float64Array(e.outputs);
      for (let i = 0; i < n; i++) {
        rawScores(e, raw, 2, i, sc);
        const z = classes === 2 ? [0, sc[0]!] : Array.from(sc);
        const m = Math.max(...z);
        const ex = z.map((v) => Math.exp(v - m));
        const sum = ex.reduce((a, b) => a + b, 0);
        for (let k = 0; k < classes; k++) expect(Math.abs(probs[i * classes + k]! - ex[k]! / sum)).toBeLessThan(1e-5);
        expect((out.label!.data as string[])[i]).toBe(labels[z.indexOf(m)]);
      }
    }
  });
});
