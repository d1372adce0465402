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
