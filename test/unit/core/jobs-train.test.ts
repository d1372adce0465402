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
    [{ target: 'y', features: ['zz'] }, /^features\[0\]: the dataset has no column "zz"/],
    [{ target: 'y', features: ['y'] }, /^features\[0\]: "y" is the target/],
    [{ target: 'y', features: ['gaps'] }, /^features\[0\]: column "gaps" has 4 missing values/],
    [{ target: 'gaps' }, /^target: column "gaps" has 4 missing values/],
    [{ target: 'y', task: 'classification' as const }, /^task: classification needs a string or integer target/],
    [{ target: 'color', task: 'regression' as const }, /^task: regression needs a numeric target/],
  ])('rejects %j with a 400 naming the field', (extra, message) => {
    expect(() => resolveTrain({ ...base, ...extra }, ds)).toThrow(message);
  });

  it('takes category and text features: one-hot and TF-IDF, a linear head and text defaults, columnTypes overrides', () => {
    const text: DatasetRecord = {
      ...ds,
      columns: [...ds.columns, { name: 'title', type: 'text' }, { name: 'notes', type: 'text' }],
      stats: [...ds.stats, { name: 'title', missing: 0, distinct: 1001 }, { name: 'notes', missing: 10, distinct: 900 }],
    };
    const j = resolveTrain({ ...base, target: 'kind', features: ['a', 'color', 'title'] }, text).hyperparameters;
    expect(j.featureTypes).toEqual({ a: 'numeric', color: 'category', title: 'text' });
    expect(j.model).toEqual({ type: 'linear' });
    expect(j.learningRate).toBe(0.01);
    expect(j.text).toEqual({ maxFeatures: 20000, minDf: 2, ngramRange: [1, 2], sublinearTf: true, lowercase: true, norm: 'l2' });
    // Defaults: text and category columns join the numeric ones; missing text is empty text.
    const d = resolveTrain({ ...base, target: 'kind', maxFeatures: 50, minDf: 1, model: { type: 'mlp', hidden: [8] } }, text).hyperparameters;
    expect(d.features).toEqual(['a', 'b', 'color', 'count', 'y', 'title', 'notes']);
    expect(d.text).toMatchObject({ maxFeatures: 50, minDf: 1 });
    expect(d.model).toEqual({ type: 'mlp', hidden: [8] });
    expect(d.learningRate).toBe(0.001);
    // An override: "color" read as text, "b" as a category.
    const o = resolveTrain({ ...base, target: 'kind', features: ['b', 'color'], columnTypes: { color: 'text', b: 'category' } }, text).hyperparameters;
    expect(o.featureTypes).toEqual({ b: 'category', color: 'text' });
    // A purely numeric job records no feature types (its lineage reads as before).
    expect(resolveTrain({ ...base, target: 'kind', features: ['a'] }, text).hyperparameters.featureTypes).toBeUndefined();
    expect(() => resolveTrain({ ...base, target: 'kind', columnTypes: { nope: 'text' } }, text)).toThrow(/^columnTypes: the dataset has no column "nope"/);
    expect(() => resolveTrain({ ...base, target: 'kind', columnTypes: { color: 'number' } }, text)).toThrow(
      /^columnTypes\.color: column "color" holds strings/,
    );
    expect(() => resolveTrain({ ...base, target: 'kind', features: ['a'], minDf: 3 }, text)).toThrow(/^maxFeatures, minDf: they apply to text features/);
    // A text target is a string target: classification.
    expect(resolveTrain({ ...base, target: 'color', features: ['a'] }, text).hyperparameters.task).toBe('classification');
  });

  it('validates the request body shape', () => {
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'Bad Name' }).success).toBe(false);
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'ok', model: { type: 'mlp', hidden: [] } }).success).toBe(false);
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'ok', unknown: 1 }).success).toBe(false);
  });
});
