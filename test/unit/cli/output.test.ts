import { describe, expect, it } from 'vitest';
import { progressLine, sparkline } from '../../../cli/jobs.ts';
import { cell, flatten, table } from '../../../cli/output.ts';
import { toInstance } from '../../../cli/predict.ts';
import type { VersionRecord } from '../../../core/registry.ts';

describe('CLI output', () => {
  it('aligns a table, shortening numbers and lists', () => {
    expect(
      table([
        { row: 0, label: 'yes', p: 0.123456 },
        { row: 1, label: 'no', p: 1 },
      ]),
    ).toBe('row  label  p\n0    yes    0.1235\n1    no     1\n');
    expect(cell([1, 2, 3, 4, 5, 6, 7])).toBe('[1 2 3 4 5 6 ... 7 values]');
    expect(flatten({ label: 'a', probabilities: { a: 0.9, b: 0.1 } })).toEqual({ label: 'a', 'probabilities.a': 0.9, 'probabilities.b': 0.1 });
  });

  it('draws the training curve as a sparkline, and an epoch as one line', () => {
    expect(sparkline([4, 3, 2, 1])).toBe('█▆▃▁');
    expect(sparkline([1, 1])).toBe('▁▁');
    const p = {
      epoch: 3,
      epochs: 10,
      loss: 0.5,
      valLoss: 0.6,
      valMetric: 0.9,
      metric: 'accuracy',
      curve: [{ valLoss: 1 }, { valLoss: 0.8 }, { valLoss: 0.6 }],
    };
    expect(progressLine(p, false)).toBe('epoch 3/10 loss 0.5000 valLoss 0.6000 accuracy 0.9000');
    expect(progressLine(p, true)).toBe('epoch 3/10 loss 0.5000 valLoss 0.6000 accuracy 0.9000 █▅▁');
    expect(progressLine({ step: 'dataset', rows: 150 }, false)).toBe('step dataset rows 150');
  });

  it("feeds a one-input model a row's feature values in the version's order, a column model the row itself", () => {
    const spec = (name: string, shape: number[]) => ({ name, datatype: 'FP32', shape });
    const one = { inputs: [spec('input', [-1, 2])], metadata: { features: ['b', 'a'] } } as unknown as VersionRecord;
    expect(toInstance(one, { a: 1, b: 2, target: 'x' })).toEqual([2, 1]);
    expect(toInstance(one, { input: [5, 6] })).toEqual([5, 6]);
    const cols = { inputs: [spec('a', [-1, 1]), spec('b', [-1, 1])] } as unknown as VersionRecord;
    expect(toInstance(cols, { a: 1, b: 2, id: 'r1' })).toEqual({ a: 1, b: 2, id: 'r1' });
  });
});
