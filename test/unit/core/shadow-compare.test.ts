// Shadow comparison of two answers: top-1 per row and agreement within tolerance.
import { describe, expect, it } from 'vitest';
import { compareOutputs } from '../../../core/shadow-compare.ts';
import { packTensor, type JobTensor } from '../../../core/jobs/infer.ts';

const t = (data: number[], shape: number[], name = 'out'): JobTensor => ({ name, datatype: 'FP32', shape, data });

describe('compareOutputs', () => {
  it('agrees on top-1 and within tolerance for equal answers, packed or not', () => {
    const values = [0.1, 0.7, 0.2, 0.5, 0.3, 0.2];
    const packed = packTensor({ name: 'out', datatype: 'FP32', shape: [2, 3], data: Float32Array.from(values) as unknown as number[] });
    expect('b64' in packed).toBe(true);
    expect(compareOutputs([t(values, [2, 3])], [packed])).toEqual({ top1: true, withinTolerance: true });
  });
  it('agrees on top-1 but not within tolerance when values move without changing the winner', () => {
    expect(compareOutputs([t([0.1, 0.7, 0.2], [1, 3])], [t([0.2, 0.6, 0.2], [1, 3])])).toEqual({ top1: true, withinTolerance: false });
  });
  it('disagrees when one row changes its winner', () => {
    expect(compareOutputs([t([0.1, 0.7, 0.2, 0.5, 0.3, 0.2], [2, 3])], [t([0.1, 0.7, 0.2, 0.3, 0.5, 0.2], [2, 3])]).top1).toBe(false);
  });
  it('compares labels by equality', () => {
    const l = (x: string[]): JobTensor => ({ name: 'label', datatype: 'BYTES', shape: [x.length], data: x });
    expect(compareOutputs([l(['a', 'b'])], [l(['a', 'b'])])).toEqual({ top1: true, withinTolerance: true });
    expect(compareOutputs([l(['a', 'b'])], [l(['a', 'c'])]).top1).toBe(false);
  });
  it('disagrees on other shapes or no common output', () => {
    expect(compareOutputs([t([1, 2], [1, 2])], [t([1, 2, 3], [1, 3])]).top1).toBe(false);
    expect(compareOutputs([t([1], [1], 'a')], [t([1], [1], 'b')])).toEqual({ top1: false, withinTolerance: false });
  });
});
