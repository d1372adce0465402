// Shadow comparison of two answers: top-1 per row and agreement within tolerance.
import { describe, expect, it } from 'vitest';
import { boundedClass, compareOutputs, compareRow, MAX_OUTPUT_CLASSES, OTHER_CLASS, outputDrift, topClassesOf } from '../../../core/shadow-compare.ts';
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

describe('topClassesOf', () => {
  it('reads the arg max of each row, a label as it is, and nothing of an answer past the bound', () => {
    expect(topClassesOf([t([0.1, 0.7, 0.2, 0.5, 0.3, 0.2], [2, 3])])).toEqual(['1', '0']);
    expect(topClassesOf([{ name: 'label', datatype: 'BYTES', shape: [2], data: ['cat', 'dog'] }])).toEqual(['cat', 'dog']);
    expect(topClassesOf([{ name: 'big', datatype: 'FP32', shape: [1, 70_000], data: new Array<number>(70_000).fill(0) }])).toEqual([]);
    expect(topClassesOf([])).toEqual([]);
  });
  it('keeps a bounded set of classes, the rest as (other)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < MAX_OUTPUT_CLASSES; i++) expect(boundedClass(seen, `c${i}`)).toBe(`c${i}`);
    expect(boundedClass(seen, 'new')).toBe(OTHER_CLASS);
    expect(boundedClass(seen, 'c3')).toBe('c3');
  });
});

describe('outputDrift', () => {
  it('is 0 for the same shares, 1 for disjoint classes, null without rows', () => {
    expect(outputDrift({ a: 2, b: 2 }, { a: 5, b: 5 })).toBeCloseTo(0, 12);
    expect(outputDrift({ a: 3 }, { b: 1 })).toBeCloseTo(1, 12);
    expect(outputDrift({}, { a: 1 })).toBeNull();
    const d = outputDrift({ a: 3, b: 1 }, { a: 1, b: 3 })!;
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(1);
  });
});

describe('compareRow', () => {
  it('judges one batch row: top-1 of the first common output (named by classes), tolerance over all', () => {
    expect(compareRow({ p: [0.1, 0.9] }, { p: [0.2, 0.8] }, ['no', 'yes'])).toEqual({
      top1: true,
      withinTolerance: false,
      primaryClass: 'yes',
      shadowClass: 'yes',
    });
    expect(compareRow({ p: [0.1, 0.9] }, { p: [0.1, 0.9005] })).toMatchObject({ top1: true, withinTolerance: true, primaryClass: '1' });
    expect(compareRow({ p: [0.6, 0.4] }, { p: [0.4, 0.6] })).toMatchObject({ top1: false, primaryClass: '0', shadowClass: '1' });
    expect(compareRow({ label: ['cat'] }, { label: ['dog'] })).toMatchObject({ top1: false, withinTolerance: false, primaryClass: 'cat', shadowClass: 'dog' });
    expect(compareRow({ a: [1] }, { b: [1] })).toMatchObject({ top1: false, withinTolerance: false });
  });
});
