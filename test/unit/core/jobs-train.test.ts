import { describe, expect, it } from 'vitest';
import type { DatasetRecord } from '../../../core/datasets.ts';
import { resolveTrain, trainRequestSchema } from '../../../core/jobs/train.ts';

const ds: DatasetRecord = {
  id: 'ds_0123456789abcdef0123',
  name: 't',
  format: 'csv',
  key: 'datasets/ds_0123456789abcdef0123/data.csv',
  bytes: 1,
  rows: 1000,
  createdAt: '',
  columns: [
    { name: 'a', type: 'number' },
    { name: 'b', type: 'integer' },
    { name: 'color', type: 'string' },
    { name: 'gaps', type: 'number' },
    { name: 'kind', type: 'integer' },
    { name: 'count', type: 'integer' },
    { name: 'y', type: 'number' },
  ],
  stats: [
    { name: 'a', missing: 0, distinct: 1001 },
    { name: 'b', missing: 0, distinct: 900 },
    { name: 'color', missing: 0, distinct: 3 },
    { name: 'gaps', missing: 4, distinct: 500 },
    { name: 'kind', missing: 0, distinct: 3 },
    { name: 'count', missing: 0, distinct: 51 },
    { name: 'y', missing: 0, distinct: 1001 },
  ],
};
const base = { dataset: ds.id, registerAs: 'm', seed: 1 };

describe('resolving a train request', () => {
  it('fills in defaults: other numeric complete columns, task from the target, MLP, Adam settings', () => {
    const j = resolveTrain({ ...base, target: 'color' }, ds);
    expect(j.hyperparameters).toEqual({
      task: 'classification',
      target: 'color',
      features: ['a', 'b', 'kind', 'count', 'y'],
      model: { type: 'mlp', hidden: [128] },
      epochs: 200,
      batchSize: 200,
      learningRate: 0.001,
      validationSplit: 0.1,
      patience: 20,
      l2: 1e-4,
      seed: 1,
      explainBackground: 50,
    });
    expect(j.dataset).toEqual({ id: ds.id, key: ds.key, format: 'csv', rows: 1000 });
  });

  it('picks classification for an integer target with at most 50 values, regression above and for numbers', () => {
    expect(resolveTrain({ ...base, target: 'kind' }, ds).hyperparameters.task).toBe('classification');
    expect(resolveTrain({ ...base, target: 'count' }, ds).hyperparameters.task).toBe('regression');
    expect(resolveTrain({ ...base, target: 'y' }, ds).hyperparameters.task).toBe('regression');
    expect(resolveTrain({ ...base, target: 'y', model: { type: 'linear' } }, ds).hyperparameters.model).toEqual({ type: 'linear' });
  });

  it.each([
    [{ target: 'nope' }, /^target: the dataset has no column "nope"/],
    [{ target: 'y', features: ['a', 'color'] }, /^features\[1\]: column "color" is not numeric/],
    [{ target: 'y', features: ['zz'] }, /^features\[0\]: the dataset has no column "zz"/],
    [{ target: 'y', features: ['y'] }, /^features\[0\]: "y" is the target/],
    [{ target: 'y', features: ['gaps'] }, /^features\[0\]: column "gaps" has 4 missing values/],
    [{ target: 'gaps' }, /^target: column "gaps" has 4 missing values/],
    [{ target: 'y', task: 'classification' as const }, /^task: classification needs a string or integer target/],
    [{ target: 'color', task: 'regression' as const }, /^task: regression needs a numeric target/],
  ])('rejects %j with a 400 naming the field', (extra, message) => {
    expect(() => resolveTrain({ ...base, ...extra }, ds)).toThrow(message);
  });

  it('validates the request body shape', () => {
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'Bad Name' }).success).toBe(false);
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'ok', model: { type: 'mlp', hidden: [] } }).success).toBe(false);
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'ok', unknown: 1 }).success).toBe(false);
  });
});
