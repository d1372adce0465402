import { describe, expect, it } from 'vitest';
import type { DatasetRecord } from '../../../core/datasets.ts';
import { GBDT_DEFAULTS, resolveTrain, trainRequestSchema } from '../../../core/jobs/train.ts';

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
const len = (n: number) => ({ min: n, mean: n, p50: n, p95: n, max: n });

describe('resolving a train request', () => {
  it('fills in defaults: every other column (gaps too), task from the target, auto (linear, trees, MLP), Adam settings, median imputation', () => {
    const j = resolveTrain({ ...base, target: 'color' }, ds);
    expect(j.hyperparameters).toEqual({
      task: 'classification',
      target: 'color',
      features: ['a', 'b', 'gaps', 'kind', 'count', 'y'],
      model: { type: 'auto', hidden: [128], gbdt: GBDT_DEFAULTS },
      epochs: 200,
      batchSize: 200,
      learningRate: 0.001,
      validationSplit: 0.1,
      patience: 20,
      l2: 1e-4,
      seed: 1,
      explainBackground: 50,
      columns: [
        { name: 'a', type: 'number', used: true },
        { name: 'b', type: 'number', used: true },
        { name: 'color', type: 'category', used: false, reason: 'the target' },
        { name: 'gaps', type: 'number', used: true },
        { name: 'kind', type: 'number', used: true },
        { name: 'count', type: 'number', used: true },
        { name: 'y', type: 'number', used: true },
      ],
      imputation: { strategy: 'median' },
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
    expect(d.features).toEqual(['a', 'b', 'color', 'gaps', 'count', 'y', 'title', 'notes']);
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

  it('takes a column with gaps as a feature, and imputation options', () => {
    expect(resolveTrain({ ...base, target: 'y', features: ['gaps'] }, ds).hyperparameters).toMatchObject({
      features: ['gaps'],
      imputation: { strategy: 'median' },
    });
    expect(resolveTrain({ ...base, target: 'y', imputation: 'mean' }, ds).hyperparameters.imputation).toEqual({ strategy: 'mean' });
    expect(resolveTrain({ ...base, target: 'y', imputation: 'constant', fillValue: -1 }, ds).hyperparameters.imputation).toEqual({
      strategy: 'constant',
      fillValue: -1,
    });
    expect(() => resolveTrain({ ...base, target: 'y', imputation: 'constant' }, ds)).toThrow(/^fillValue: imputation "constant" needs/);
    expect(() => resolveTrain({ ...base, target: 'y', fillValue: 2 }, ds)).toThrow(/^fillValue: it applies to imputation "constant"/);
  });

  it('leaves out only columns that cannot help, and says why for every column', () => {
    const wide: DatasetRecord = {
      ...ds,
      rows: 100,
      columns: [
        { name: 'x', type: 'number' },
        { name: 'empty', type: 'category' },
        { name: 'same', type: 'integer' },
        { name: 'sameWithGaps', type: 'integer' },
        { name: 'id', type: 'text' },
        { name: 'review', type: 'text' },
        { name: 'rowNumber', type: 'integer' },
        { name: 'label', type: 'category' },
        { name: 'y', type: 'category' },
      ],
      stats: [
        { name: 'x', missing: 30, distinct: 70 },
        { name: 'empty', missing: 100, distinct: 0 },
        { name: 'same', missing: 0, distinct: 1 },
        { name: 'sameWithGaps', missing: 5, distinct: 1 },
        { name: 'id', missing: 0, distinct: 100, unique: true, length: { chars: len(8), tokens: len(1) } },
        { name: 'review', missing: 3, distinct: 97, unique: true, length: { chars: len(80), tokens: len(12) } },
        { name: 'rowNumber', missing: 0, distinct: 100 },
        { name: 'label', missing: 0, distinct: 2 },
        { name: 'y', missing: 0, distinct: 2 },
      ],
    };
    const j = resolveTrain({ ...base, target: 'y' }, wide).hyperparameters;
    expect(j.features).toEqual(['x', 'sameWithGaps', 'review', 'rowNumber']);
    expect(j.columns).toEqual([
      { name: 'x', type: 'number', used: true },
      { name: 'empty', type: 'category', used: false, reason: 'no values' },
      { name: 'same', type: 'number', used: false, reason: 'constant: one value in every row' },
      { name: 'sameWithGaps', type: 'number', used: true },
      { name: 'id', type: 'text', used: false, reason: 'identifier: a distinct value in every row' },
      { name: 'review', type: 'text', used: true },
      { name: 'rowNumber', type: 'number', used: true },
      { name: 'label', type: 'category', used: false, reason: 'named "label" as a model output; rename the column to use it' },
      { name: 'y', type: 'category', used: false, reason: 'the target' },
    ]);
    // Named features: the others are listed as not requested.
    expect(resolveTrain({ ...base, target: 'y', features: ['x'] }, wide).hyperparameters.columns![2]).toEqual({
      name: 'same',
      type: 'number',
      used: false,
      reason: 'not in features',
    });
    expect(() => resolveTrain({ ...base, target: 'y', features: ['empty'] }, wide)).toThrow(/^features\[0\]: column "empty" has no values/);
  });

  it('takes gbdt and auto models: options with their defaults, re-resolved as they are, never with text', () => {
    const g = resolveTrain({ ...base, target: 'color', model: { type: 'gbdt', trees: 50, learningRate: 0.2 } }, ds).hyperparameters;
    expect(g.model).toEqual({
      type: 'gbdt',
      gbdt: { trees: 50, maxLeaves: 31, maxDepth: 8, learningRate: 0.2, minSamplesLeaf: 20, l2: 0, maxBins: 255, patience: 10 },
    });
    // The processor resolves the job's own (resolved) hyperparameters again when it starts: nothing changes.
    const again = resolveTrain({ ...base, target: 'color', model: g.model as never }, ds).hyperparameters;
    expect(again.model).toEqual(g.model);
    const a = resolveTrain({ ...base, target: 'color', model: { type: 'auto', gbdt: { maxLeaves: 8 } } }, ds).hyperparameters;
    expect(a.model).toMatchObject({ type: 'auto', hidden: [128], gbdt: { trees: 200, maxLeaves: 8 } });
    const text: DatasetRecord = {
      ...ds,
      columns: [...ds.columns, { name: 'title', type: 'text' }],
      stats: [...ds.stats, { name: 'title', missing: 0, distinct: 900 }],
    };
    expect(() => resolveTrain({ ...base, target: 'kind', features: ['a', 'title'], model: { type: 'gbdt' } }, text)).toThrow(
      /^model: gbdt takes numbers and categories; text features need/,
    );
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'ok', model: { type: 'gbdt', maxBins: 1000 } }).success).toBe(false);
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'ok', model: { type: 'gbdt', hidden: [8] } }).success).toBe(false);
  });

  it('validates the request body shape', () => {
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'Bad Name' }).success).toBe(false);
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'ok', model: { type: 'mlp', hidden: [] } }).success).toBe(false);
    expect(trainRequestSchema.safeParse({ dataset: 'x', target: 'y', registerAs: 'ok', unknown: 1 }).success).toBe(false);
  });
});
