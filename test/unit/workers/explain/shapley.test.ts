// The estimator against onnxruntime run in the test process: exact on a linear model, additive on an
// MLP, ~0 for an ignored feature, and the same numbers for the same request.
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shapley, type Evaluate } from '../../../../workers/explain/shapley.ts';
import { linearModel, mlpIgnoring } from '../../../fixtures/explain-models.ts';
import { rows } from '../../../fixtures/models.ts';

const sessions: ort.InferenceSession[] = [];
async function evaluator(model: Uint8Array, output: string): Promise<Evaluate & { runs: number }> {
  const s = await ort.InferenceSession.create(model);
  sessions.push(s);
  const f = (async (x: Float32Array, n: number) => {
    f.runs++;
    const out = (await s.run({ features: new ort.Tensor('float32', x, [n, x.length / n]) }))[output]!;
    return { scores: out.data as Float32Array, classes: out.dims[1] ?? 1 };
  }) as Evaluate & { runs: number };
  f.runs = 0;
  return f;
}
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
});

describe('shapley', () => {
  const F = 6;
  const bg = rows(30, F, 11);
  const x = rows(4, F, 5);

  it('equals w_i (x_i - mean background_i) on a linear model (no sampling error: every permutation gives it)', async () => {
    const w = [1.5, -2, 0.25, 0, 3, -0.75];
    const r = await shapley({ x, rows: 4, features: F, background: bg, samples: 4, seed: 1, runRows: 1000 }, await evaluator(linearModel(w), 'prediction'));
    for (let n = 0; n < 4; n++) {
      for (let i = 0; i < F; i++) {
        let mean = 0;
        for (let b = 0; b < 30; b++) mean += bg[b * F + i]!;
        mean /= 30;
        // float32 model arithmetic: each walk's differences carry ~1e-7 relative error of the output
        expect(r.attributions[n * F + i]!).toBeCloseTo(w[i]! * (x[n * F + i]! - mean), 5);
      }
    }
    expect(Array.from(r.attributions.subarray(3, 4))).toEqual([0]);
  });

  describe('on an MLP ignoring feature 2', () => {
    let ev: Awaited<ReturnType<typeof evaluator>>;
    beforeAll(async () => {
      ev = await evaluator(mlpIgnoring(F, 16, 3, 2), 'probabilities');
    });

    it('sums to f(x) - base for every row (additivity) and gives the ignored feature 0', async () => {
      const r = await shapley({ x, rows: 4, features: F, background: bg, samples: 6, seed: 7, runRows: 500 }, ev);
      for (let n = 0; n < 4; n++) {
        const sum = Array.from(r.attributions.subarray(n * F, (n + 1) * F)).reduce((a, b) => a + b, 0);
        expect(Math.abs(sum - (r.value[n]! - r.base[n]!))).toBeLessThan(1e-4);
        expect(Math.abs(r.attributions[n * F + 2]!)).toBeLessThan(1e-6);
        // some feature matters: the model is not constant
        expect(Math.max(...Array.from(r.attributions.subarray(n * F, (n + 1) * F), Math.abs))).toBeGreaterThan(1e-3);
      }
    });

    it("attributes the requested class, or each row's predicted one", async () => {
      const fixed = await shapley({ x, rows: 4, features: F, background: bg, samples: 2, seed: 7, classIndex: 1, runRows: 500 }, ev);
      expect(fixed.classes).toEqual([1, 1, 1, 1]);
      const own = await shapley({ x, rows: 4, features: F, background: bg, samples: 2, seed: 7, runRows: 500 }, ev);
      const direct = await ev(x, 4);
      own.classes.forEach((c, n) => {
        const scores = Array.from(direct.scores.subarray(n * 3, n * 3 + 3));
        expect(c).toBe(scores.indexOf(Math.max(...scores)));
      });
      await expect(shapley({ x, rows: 4, features: F, background: bg, samples: 2, seed: 7, classIndex: 3, runRows: 500 }, ev)).rejects.toThrow(
        /explainClass 3 is out of range/,
      );
    });

    it('gives the same attributions for the same request, other numbers for another seed; runs are batched', async () => {
      const before = ev.runs;
      const a = await shapley({ x, rows: 4, features: F, background: bg, samples: 8, seed: 42, runRows: 100_000 }, ev);
      // f(x), f(background) and all perturbations in one run
      expect(ev.runs - before).toBe(3);
      const b = await shapley({ x, rows: 4, features: F, background: bg, samples: 8, seed: 42, runRows: 700 }, ev);
      expect(Array.from(b.attributions)).toEqual(Array.from(a.attributions));
      const c = await shapley({ x, rows: 4, features: F, background: bg, samples: 8, seed: 43, runRows: 100_000 }, ev);
      expect(Array.from(c.attributions)).not.toEqual(Array.from(a.attributions));
    });

    it('estimates converge: more permutations move the estimate less than few do', async () => {
      const est = (samples: number, seed: number) =>
        shapley({ x: x.subarray(0, F), rows: 1, features: F, background: bg, samples, seed, runRows: 100_000 }, ev);
      const ref = await est(400, 1);
      const err = (r: Awaited<ReturnType<typeof est>>) => Math.max(...Array.from(r.attributions, (v, i) => Math.abs(v - ref.attributions[i]!)));
      const few = await Promise.all([2, 3, 4, 5].map((s) => est(2, s).then(err)));
      const many = await Promise.all([2, 3, 4, 5].map((s) => est(100, s).then(err)));
      expect(Math.max(...many)).toBeLessThan(Math.max(...few));
    });
  });
});

describe('shapley bounded (#25 case 5)', () => {
  it('gives a one-feature model f(x) - base exactly, at the cost of two evaluations however many rows and samples', async () => {
    const ev = await evaluator(linearModel([2]), 'prediction');
    const n = 200_000;
    const x1 = rows(n, 1, 3);
    const bg1 = rows(1000, 1, 4);
    const r = await shapley({ x: x1, rows: n, features: 1, background: bg1, samples: 1024, seed: 0, runRows: 1024 }, ev);
    expect(ev.runs).toBe(2);
    let mean = 0;
    for (const v of bg1) mean += v;
    mean /= 1000;
    for (const i of [0, 1, n - 1]) expect(r.attributions[i]!).toBeCloseTo(2 * (x1[i]! - mean), 4);
  });

  it('cuts walks into runs of at most runBytes (a walk longer than a run is split), with the same numbers as uncut', async () => {
    const F2 = 300;
    const B2 = 40;
    const w = Array.from({ length: F2 }, (_, i) => ((i % 7) - 3) / 10);
    const bg2 = rows(B2, F2, 8);
    const x2 = rows(1, F2, 9);
    const runBytes = 256 * 1024;
    let most = 0;
    // A stub model, linear: its Shapley values are known exactly.
    const ev: Evaluate = async (p, n) => {
      most = Math.max(most, p.byteLength);
      const scores = new Float32Array(n);
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let f = 0; f < F2; f++) s += w[f]! * p[r * F2 + f]!;
        scores[r] = s;
      }
      return { scores, classes: 1 };
    };
    const cut = await shapley({ x: x2, rows: 1, features: F2, background: bg2, samples: 2, seed: 5, runRows: 10_000_000, runBytes }, ev);
    // one walk is B2 x (F2 - 1) points of F2 floats: 14 MB, far more than a run may hold
    expect(B2 * (F2 - 1) * F2 * 4).toBeGreaterThan(50 * runBytes);
    expect(most).toBeLessThanOrEqual(runBytes);
    const whole = await shapley({ x: x2, rows: 1, features: F2, background: bg2, samples: 2, seed: 5, runRows: 10_000_000, runBytes: 2 ** 30 }, ev);
    expect(Array.from(cut.attributions)).toEqual(Array.from(whole.attributions));
    for (let f = 0; f < F2; f += 37) {
      let mean = 0;
      for (let b = 0; b < B2; b++) mean += bg2[b * F2 + f]!;
      expect(cut.attributions[f]!).toBeCloseTo(w[f]! * (x2[f]! - mean / B2), 3);
    }
  });
});
