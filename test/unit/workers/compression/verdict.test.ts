import { describe, expect, it } from 'vitest';
import type { RawTensor } from '../../../../core/tensors.ts';
import { judge, OutputComparison, toleranceFor } from '../../../../workers/compression/verdict.ts';

const t = (dims: number[], values: number[]): RawTensor => ({ type: 'float32', dims, data: Float32Array.from(values) }) as RawTensor;

describe('OutputComparison', () => {
  it('nothing to compare is an error, never perfect agreement', () => {
    const c = new OutputComparison();
    c.add({ ids: { type: 'int64', dims: [2, 2], data: BigInt64Array.of(1n, 2n, 3n, 4n) } as RawTensor }, {});
    expect(() => c.figures()).toThrow(/cannot judge the candidate: the parent and the candidate have no output in common/);
  });

  it('an output constant in the parent is an error; constant or NaN in the candidate fails the judgement', () => {
    const flat = new OutputComparison();
    flat.add({ y: t([2, 2], [1, 1, 1, 1]) }, { y: t([2, 2], [1, 1, 1, 1]) });
    expect(() => flat.figures()).toThrow(/the parent's output "y" is constant \(1\)/);

    const zeroed = new OutputComparison();
    zeroed.add({ y: t([2, 2], [0.1, 0.9, 0.4, 0.2]) }, { y: t([2, 2], [0, 0, 0, 0]) });
    const f = zeroed.figures();
    expect(f[0]).toMatchObject({ name: 'y', cosine: 0, constantInCandidate: 0 });
    expect(judge(f, {}).failures).toEqual(['output "y" is constant (0) in the candidate and not in the parent']);

    const nan = new OutputComparison();
    nan.add({ y: t([2, 2], [0.1, 0.9, 0.4, 0.2]) }, { y: t([2, 2], [0.1, NaN, 0.4, 0.2]) });
    expect(judge(nan.figures(), {}).failures[0]).toMatch(/"y" has 1 NaN or infinite values of 4/);
  });

  it('accumulates over runs: cosine and top-1 over every row', () => {
    const c = new OutputComparison();
    c.add({ p: t([2, 2], [0.9, 0.1, 0.2, 0.8]) }, { p: t([2, 2], [0.8, 0.2, 0.3, 0.7]) });
    c.add({ p: t([1, 2], [0.6, 0.4]) }, { p: t([1, 2], [0.4, 0.6]) });
    const [f] = c.figures();
    expect(f!.rows).toBe(3);
    expect(f!.top1).toBeCloseTo(2 / 3, 10);
    expect(f!.cosine).toBeGreaterThan(0.9);
    expect(f!.cosine).toBeLessThan(1);
  });
});

describe('judge', () => {
  const figures = [{ name: 'probabilities', values: 640, cosine: 0.995, top1: 0.96, rows: 64 }];
  it('int8 by default: top-1 0.97 on generated data, the accuracy drop on a labelled dataset instead', () => {
    const tol = toleranceFor('quantize-int8');
    expect(judge(figures, tol)).toMatchObject({ passed: false, worst: { output: 'probabilities', measure: 'top1', value: 0.96, bar: 0.97 } });
    expect(judge(figures, tol, { before: 0.9, after: 0.895 }).passed).toBe(true);
    expect(judge(figures, tol, { before: 0.9, after: 0.88 }).failures).toEqual(['accuracy fell by 0.0200 (more than 0.01)']);
  });
  it('a request tolerance replaces the defaults it names; fp16 is stricter than int8', () => {
    expect(judge(figures, toleranceFor('quantize-int8', { top1: 0.95 })).passed).toBe(true);
    expect(judge(figures, toleranceFor('fp16')).failures).toEqual([
      'output "probabilities" cosine 0.9950 < 0.999',
      'output "probabilities" top1 0.9600 < 0.99',
    ]);
    expect(judge(figures, toleranceFor('prune')).passed).toBe(true);
  });
});
