// Job kind "train" on the `train` queue: the request as clients send it, the fully resolved job data
// (every default filled in at the HTTP edge, so the job's lineage records what was actually used),
// its progress and its result. resolveTrain() is run at the edge and again when the processor starts.
import { z } from 'zod';
import { DISTINCT_CAP, FEATURE_COLUMN_TYPES, TEXT_MIN_MEAN_TOKENS, type ColumnStats, type ColumnType, type DatasetRecord } from '../datasets.ts';
import { badRequest } from '../errors.ts';
import { NAME_RE } from '../registry.ts';
import { DEFAULT_BACKGROUND_ROWS, MAX_BACKGROUND_ROWS } from './explain.ts';
import { IMPUTATION_STRATEGIES, type ColumnInfo } from '../model-columns.ts';

export const TRAIN_JOB_ID_RE = /^train_[0-9a-f]{20}$/;
/** Integer targets with at most this many distinct values are classes; more make it a regression. */
export const MAX_INTEGER_CLASSES = 50;
/** TF-IDF defaults: the vocabulary keeps the DEFAULT_MAX_FEATURES most frequent n-grams found in at least DEFAULT_MIN_DF training rows. */
export const DEFAULT_MAX_FEATURES = 20_000;
export const DEFAULT_MIN_DF = 2;
/** Adam step size of the default (linear) head on text features: TF-IDF rows are unit vectors, so larger steps than for standardized tabular features. */
export const DEFAULT_TEXT_LEARNING_RATE = 0.01;

/** Gradient-boosted trees: options and their defaults (as scikit-learn's HistGradientBoosting, with more rounds and patience 10). */
export const GBDT_DEFAULTS = { trees: 200, maxLeaves: 31, maxDepth: 8, learningRate: 0.1, minSamplesLeaf: 20, l2: 0, maxBins: 255, patience: 10 };
const gbdtOptions = {
  trees: z
    .number()
    .int()
    .min(1)
    .max(5000)
    .optional()
    .meta({ description: `Most boosting rounds (default ${GBDT_DEFAULTS.trees}); early stopping usually ends sooner` }),
  maxLeaves: z
    .number()
    .int()
    .min(2)
    .max(1024)
    .optional()
    .meta({ description: `Leaves per tree, grown best-first (default ${GBDT_DEFAULTS.maxLeaves})` }),
  maxDepth: z
    .number()
    .int()
    .min(1)
    .max(32)
    .optional()
    .meta({ description: `Deepest leaf (default ${GBDT_DEFAULTS.maxDepth})` }),
  learningRate: z
    .number()
    .gt(0)
    .max(1)
    .optional()
    .meta({ description: `Shrinkage of each tree (default ${GBDT_DEFAULTS.learningRate})` }),
  minSamplesLeaf: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .optional()
    .meta({ description: `Fewest training rows in a leaf (default ${GBDT_DEFAULTS.minSamplesLeaf})` }),
  l2: z
    .number()
    .min(0)
    .max(1000)
    .optional()
    .meta({ description: `L2 penalty on leaf values (default ${GBDT_DEFAULTS.l2})` }),
  maxBins: z
    .number()
    .int()
    .min(2)
    .max(255)
    .optional()
    .meta({ description: `Bins per feature for split finding (default ${GBDT_DEFAULTS.maxBins})` }),
  patience: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .optional()
    .meta({ description: `Rounds without a better validation loss before stopping (default ${GBDT_DEFAULTS.patience})` }),
};
const gbdtResolved = z.object({
  trees: z.number().int(),
  maxLeaves: z.number().int(),
  maxDepth: z.number().int(),
  learningRate: z.number(),
  minSamplesLeaf: z.number().int(),
  l2: z.number(),
  maxBins: z.number().int(),
  patience: z.number().int(),
});
export type GbdtSettings = z.infer<typeof gbdtResolved>;

export const modelSpecSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('mlp'), hidden: z.array(z.number().int().min(1).max(4096)).min(1).max(8).optional() }).strict(),
  z.object({ type: z.literal('linear') }).strict(),
  z.object({ type: z.literal('gbdt'), ...gbdtOptions }).strict(),
  z
    .object({
      type: z.literal('auto'),
      hidden: z.array(z.number().int().min(1).max(4096)).min(1).max(8).optional(),
      gbdt: z.object(gbdtOptions).strict().optional(),
    })
    .strict(),
]);

export const trainRequestSchema = z
  .object({
    dataset: z.string().min(1).max(100).meta({ description: 'Dataset id (POST /v1/datasets)' }),
    target: z.string().min(1).max(200),
    features: z.array(z.string().min(1).max(200)).min(1).max(10_000).optional().meta({
      description:
        'Default: every other column that can help (left out: columns without values, constant ones, identifiers with a distinct string per row); missing values are imputed inside the model',
    }),
    imputation: z
      .enum(IMPUTATION_STRATEGIES)
      .optional()
      .meta({ description: 'What a missing number becomes, fitted on the training split (default median); "constant" takes fillValue' }),
    fillValue: z.number().optional().meta({ description: 'The number missing values become with imputation "constant"' }),
    columnTypes: z
      .record(z.string().min(1).max(200), z.enum(FEATURE_COLUMN_TYPES))
      .optional()
      .meta({ description: 'Column types where the dataset profile guessed wrong, e.g. { "title": "text" }' }),
    maxFeatures: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .meta({ description: `Text features: vocabulary size, the most frequent word uni- and bigrams of the training split (default ${DEFAULT_MAX_FEATURES})` }),
    minDf: z
      .number()
      .int()
      .min(1)
      .optional()
      .meta({ description: `Text features: an n-gram enters the vocabulary when at least this many training rows have it (default ${DEFAULT_MIN_DF})` }),
    task: z
      .enum(['classification', 'regression'])
      .optional()
      .meta({ description: `Default: classification for a string target or an integer one with at most ${MAX_INTEGER_CLASSES} distinct values` }),
    model: modelSpecSchema.optional().meta({
      description:
        'Default { type: "mlp", hidden: [128] }; { type: "linear" } with a text feature; { type: "gbdt" } gradient-boosted trees (numbers and categories); { type: "auto" } trains the MLP and the trees and keeps the better validation score',
    }),
    epochs: z.number().int().min(1).max(10_000).optional().meta({ description: 'Most epochs (default 200); early stopping usually ends sooner' }),
    batchSize: z.number().int().min(1).max(65_536).optional().meta({ description: 'Default min(200, training rows)' }),
    learningRate: z
      .number()
      .gt(0)
      .max(10)
      .optional()
      .meta({ description: `Adam step size, default 0.001 (${DEFAULT_TEXT_LEARNING_RATE} for a linear head with a text feature)` }),
    validationSplit: z.number().min(0.02).max(0.5).optional().meta({ description: 'Held-out share for early stopping and metrics, default 0.1' }),
    patience: z.number().int().min(1).max(10_000).optional().meta({ description: 'Epochs without a better validation loss before stopping, default 20' }),
    l2: z.number().min(0).max(10).optional().meta({ description: 'L2 penalty on weights (as scikit-learn alpha), default 0.0001' }),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .optional()
      .meta({ description: 'Default: drawn at submit and recorded in the lineage' }),
    registerAs: z.string().regex(NAME_RE, 'must match [a-z0-9][a-z0-9._-]{0,63}').meta({ description: 'Model name the result is registered under' }),
    explainBackground: z
      .number()
      .int()
      .min(0)
      .max(MAX_BACKGROUND_ROWS)
      .optional()
      .meta({ description: `Training rows kept as the version's background for explanations (default ${DEFAULT_BACKGROUND_ROWS}; 0 keeps none)` }),
  })
  .strict();
export type TrainRequest = z.infer<typeof trainRequestSchema>;

export const textSettingsSchema = z.object({
  maxFeatures: z.number().int().min(1),
  minDf: z.number().int().min(1),
  /** Fixed: word unigrams and bigrams, lowercased, sublinear tf (1 + ln tf), smooth idf, L2 norm; recorded so the lineage says it. */
  ngramRange: z.tuple([z.number().int(), z.number().int()]),
  sublinearTf: z.boolean(),
  lowercase: z.boolean(),
  norm: z.literal('l2'),
});
export type TextSettings = z.infer<typeof textSettingsSchema>;
export type FeatureKind = 'numeric' | 'category' | 'text';

/** A dataset column as the job resolved it: its type, whether it is a feature, and why not. */
export const columnPlanSchema = z.object({
  name: z.string(),
  type: z.enum(['number', 'category', 'text']),
  used: z.boolean(),
  reason: z.string().optional(),
});
export type ColumnPlan = z.infer<typeof columnPlanSchema>;
export const imputationSchema = z.object({ strategy: z.enum(IMPUTATION_STRATEGIES), fillValue: z.number().optional() });
export type Imputation = z.infer<typeof imputationSchema>;

export const hyperparametersSchema = z.object({
  task: z.enum(['classification', 'regression']),
  target: z.string(),
  features: z.array(z.string()).min(1),
  model: z.discriminatedUnion('type', [
    z.object({ type: z.literal('mlp'), hidden: z.array(z.number().int().min(1)).min(1) }),
    z.object({ type: z.literal('linear') }),
    z.object({ type: z.literal('gbdt'), gbdt: gbdtResolved }),
    /** Trains the MLP and the trees on the same split and keeps the better validation score. */
    z.object({ type: z.literal('auto'), hidden: z.array(z.number().int().min(1)).min(1), gbdt: gbdtResolved }),
  ]),
  epochs: z.number().int().min(1),
  batchSize: z.number().int().min(1),
  learningRate: z.number().gt(0),
  validationSplit: z.number().gt(0).lt(1),
  patience: z.number().int().min(1),
  l2: z.number().min(0),
  seed: z.number().int().min(0),
  /** Absent in jobs from before explanations: then the default. */
  explainBackground: z.number().int().min(0).optional(),
  /** How each feature is encoded, when any is not numeric (absent: every feature is a number). */
  featureTypes: z.record(z.string(), z.enum(['numeric', 'category', 'text'])).optional(),
  /** TF-IDF settings, when a feature is text. */
  text: textSettingsSchema.optional(),
  /** Every column of the dataset, used or not and why (absent in jobs from before column-input models). */
  columns: z.array(columnPlanSchema).optional(),
  /** Missing numbers: the statistic of the training split they become (absent in older jobs: median). */
  imputation: imputationSchema.optional(),
});
export type Hyperparameters = z.infer<typeof hyperparametersSchema>;

export const trainJobSchema = z.object({
  dataset: z.object({ id: z.string(), key: z.string(), format: z.enum(['csv', 'jsonl']), rows: z.number().int() }),
  registerAs: z.string().regex(NAME_RE),
  hyperparameters: hyperparametersSchema,
  /** Who submitted it: the new model's owner and its lineage (key id, never the key). Default tenant "default". */
  tenant: z.string().optional(),
  keyId: z.string().optional(),
  /** Submitted by a platform operator, who may add versions to any tenant's model. */
  platform: z.boolean().optional(),
});
export type TrainJob = z.infer<typeof trainJobSchema>;

export const curvePointSchema = z.object({ epoch: z.number().int(), loss: z.number(), valLoss: z.number(), valMetric: z.number() });
export type CurvePoint = z.infer<typeof curvePointSchema>;

/** job.progress after each epoch (bull-board shows it as is). */
export interface TrainProgress extends CurvePoint {
  epochs: number;
  /** What valMetric is: accuracy (classification) or RMSE (regression). */
  metric: 'accuracy' | 'rmse';
  bestEpoch: number;
  /** The first epoch this attempt ran (greater than 1 after a resume from a checkpoint). */
  startedAtEpoch: number;
  curve: CurvePoint[];
}

export type TrainMetrics = { accuracy: number; logLoss: number; validationRows: number } | { rmse: number; r2: number; validationRows: number };

export interface TrainResult {
  model: { name: string; version: number };
  metrics: TrainMetrics;
  sha256: string;
  bestEpoch: number;
  epochsRun: number;
  stoppedEarly: boolean;
  /** Epochs restored from a checkpoint by this attempt (0: trained from the start). */
  resumedFromEpoch: number;
  /** Artifact key of the trainer's own predictions on validation rows, the export's reference. */
  predictionsKey: string;
  /** Every dataset column, used (with its imputation and encoding) or not and why; absent in results from before column-input models. */
  columns?: ColumnInfo[];
  /** The model trained: "mlp", "linear" or "gbdt" (with model "auto", the one kept). Absent in results from before gbdt. */
  modelType?: 'mlp' | 'linear' | 'gbdt';
  /** Model "auto": every candidate's validation metrics, and which was kept. */
  candidates?: { type: 'linear' | 'mlp' | 'gbdt'; metrics: TrainMetrics; kept: boolean }[];
}

export const trainKeys = {
  dir: (jobId: string) => `jobs/train/${jobId}`,
  checkpoint: (jobId: string) => `jobs/train/${jobId}/checkpoint.bin`,
  model: (jobId: string) => `jobs/train/${jobId}/model.onnx`,
  predictions: (jobId: string) => `jobs/train/${jobId}/predictions.json`,
};

/** Default hidden sizes: one layer, wide enough for tabular data up to a few hundred features. */
export const DEFAULT_HIDDEN = [128];

/**
 * Fills in every default and checks the request against the dataset's columns. Throws 400s naming
 * the field. `seed` is required here: the edge draws one when the client gave none.
 */
export function resolveTrain(req: TrainRequest & { seed: number }, ds: DatasetRecord): TrainJob {
  const overrides = req.columnTypes ?? {};
  for (const name of Object.keys(overrides)) {
    if (!ds.columns.some((c) => c.name === name)) throw badRequest(`columnTypes: the dataset has no column "${name}"`);
  }
  const profiled = new Map(ds.columns.map((c) => [c.name, c.type]));
  // Profiles from before text columns say "string" for every non-numeric column: a category.
  const types = new Map<string, ColumnType>(ds.columns.map((c) => [c.name, overrides[c.name] ?? (c.type === 'string' ? 'category' : c.type)]));
  const stats = new Map(ds.stats.map((s) => [s.name, s]));
  const list = (names: string[]) =>
    names
      .slice(0, 20)
      .map((n) => `"${n}"`)
      .join(', ') + (names.length > 20 ? ', ...' : '');
  const targetType = types.get(req.target);
  if (!targetType) throw badRequest(`target: the dataset has no column "${req.target}" (columns: ${list([...types.keys()])})`);
  const ts = stats.get(req.target)!;
  if (ts.missing > 0) throw badRequest(`target: column "${req.target}" has ${ts.missing} missing values`);
  for (const [name, t] of Object.entries(overrides)) {
    const p = profiled.get(name)!;
    if ((t === 'number' || t === 'integer') && p !== 'number' && p !== 'integer')
      throw badRequest(`columnTypes.${name}: column "${name}" holds strings (profiled ${p}); it cannot be read as ${t}`);
    if (t === 'integer' && p === 'number') throw badRequest(`columnTypes.${name}: column "${name}" holds fractional numbers; it cannot be read as integer`);
  }
  const kindOf = (t: ColumnType): FeatureKind => (t === 'text' ? 'text' : t === 'category' || t === 'string' ? 'category' : 'numeric');

  const typeOf = (name: string): ColumnPlan['type'] => {
    const k = kindOf(types.get(name)!);
    return k === 'numeric' ? 'number' : k;
  };
  let features: string[];
  let columns: ColumnPlan[];
  if (req.features) {
    const seen = new Set<string>();
    req.features.forEach((f, i) => {
      const t = types.get(f);
      if (!t) throw badRequest(`features[${i}]: the dataset has no column "${f}"`);
      if (f === req.target) throw badRequest(`features[${i}]: "${f}" is the target`);
      if (seen.has(f)) throw badRequest(`features[${i}]: "${f}" is listed twice`);
      if (stats.get(f)!.missing >= ds.rows) throw badRequest(`features[${i}]: column "${f}" has no values`);
      if (OUTPUT_NAMES.has(f)) throw badRequest(`features[${i}]: column "${f}" has the name of a model output; rename the column`);
      seen.add(f);
    });
    features = req.features;
    columns = ds.columns.map((c) =>
      seen.has(c.name)
        ? { name: c.name, type: typeOf(c.name), used: true }
        : { name: c.name, type: typeOf(c.name), used: false, reason: c.name === req.target ? 'the target' : 'not in features' },
    );
  } else {
    columns = ds.columns.map((c): ColumnPlan => {
      const reason = c.name === req.target ? 'the target' : unhelpful(c.name, kindOf(types.get(c.name)!), stats.get(c.name)!, ds.rows);
      return reason ? { name: c.name, type: typeOf(c.name), used: false, reason } : { name: c.name, type: typeOf(c.name), used: true };
    });
    features = columns.filter((c) => c.used).map((c) => c.name);
    if (!features.length)
      throw badRequest(
        `features: the dataset has no usable column besides the target "${req.target}" (${columns
          .filter((c) => c.reason && c.name !== req.target)
          .slice(0, 10)
          .map((c) => `"${c.name}": ${c.reason}`)
          .join('; ')})`,
      );
  }
  if (req.fillValue !== undefined && req.imputation !== 'constant') throw badRequest('fillValue: it applies to imputation "constant"');
  if (req.imputation === 'constant' && req.fillValue === undefined) throw badRequest('fillValue: imputation "constant" needs the number to fill in');
  const imputation: Imputation = { strategy: req.imputation ?? 'median', ...(req.fillValue !== undefined ? { fillValue: req.fillValue } : {}) };
  const kinds = Object.fromEntries(features.map((f) => [f, kindOf(types.get(f)!)])) as Record<string, FeatureKind>;
  const anyText = Object.values(kinds).includes('text');
  const mixed = Object.values(kinds).some((k) => k !== 'numeric');

  const targetKind = targetType === 'text' || targetType === 'category' || targetType === 'string' ? 'string' : targetType;
  const classLike = targetKind === 'string' || (targetKind === 'integer' && ts.distinct <= MAX_INTEGER_CLASSES);
  const task = req.task ?? (classLike ? 'classification' : 'regression');
  if (task === 'classification') {
    if (targetKind === 'number') throw badRequest(`task: classification needs a string or integer target; "${req.target}" holds fractional numbers`);
    if (ts.distinct < 2) throw badRequest(`target: column "${req.target}" has ${ts.distinct} distinct value; classification needs at least 2`);
    if (ts.distinct > DISTINCT_CAP) throw badRequest(`target: column "${req.target}" has more than ${DISTINCT_CAP} distinct values; too many classes`);
  } else if (targetKind === 'string') {
    throw badRequest(`task: regression needs a numeric target; "${req.target}" is a ${targetType} column`);
  }

  const validationSplit = req.validationSplit ?? 0.1;
  const valRows = Math.round(ds.rows * validationSplit);
  const trainRows = ds.rows - valRows;
  if (valRows < 1 || trainRows < 2) {
    throw badRequest(`validationSplit: ${ds.rows} rows leave ${trainRows} for training and ${valRows} for validation; need at least 2 and 1`);
  }
  if ((req.maxFeatures !== undefined || req.minDf !== undefined) && !anyText)
    throw badRequest('maxFeatures, minDf: they apply to text features, and none is text');
  // Default: text jobs a linear model; numbers and categories auto (linear, trees and, on many rows, the MLP; the best validation score wins).
  const model = req.model ?? (anyText ? { type: 'linear' as const } : { type: 'auto' as const });
  if ((model.type === 'gbdt' || model.type === 'auto') && anyText)
    throw badRequest(`model: ${model.type} takes numbers and categories; text features need { "type": "linear" } or "mlp"`);
  // Only the known options (a job re-resolved when it starts carries them already resolved, under `gbdt`).
  const gbdt = (o: object = {}): GbdtSettings => {
    const given = ('gbdt' in o && o.gbdt && typeof o.gbdt === 'object' ? o.gbdt : o) as Record<string, unknown>;
    return Object.fromEntries(Object.entries(GBDT_DEFAULTS).map(([k, v]) => [k, typeof given[k] === 'number' ? given[k] : v])) as GbdtSettings;
  };
  return {
    dataset: { id: ds.id, key: ds.key, format: ds.format, rows: ds.rows },
    registerAs: req.registerAs,
    hyperparameters: {
      task,
      target: req.target,
      features,
      model:
        model.type === 'mlp'
          ? { type: 'mlp', hidden: model.hidden ?? DEFAULT_HIDDEN }
          : model.type === 'gbdt'
            ? { type: 'gbdt', gbdt: gbdt(model) }
            : model.type === 'auto'
              ? { type: 'auto', hidden: model.hidden ?? DEFAULT_HIDDEN, gbdt: gbdt(model.gbdt) }
              : { type: 'linear' },
      epochs: req.epochs ?? 200,
      batchSize: req.batchSize ?? Math.min(200, trainRows),
      learningRate: req.learningRate ?? (anyText && model.type === 'linear' ? DEFAULT_TEXT_LEARNING_RATE : 0.001),
      validationSplit,
      patience: req.patience ?? 20,
      l2: req.l2 ?? 1e-4,
      seed: req.seed,
      explainBackground: req.explainBackground ?? DEFAULT_BACKGROUND_ROWS,
      ...(mixed ? { featureTypes: kinds } : {}),
      columns,
      imputation,
      ...(anyText
        ? {
            text: {
              maxFeatures: req.maxFeatures ?? DEFAULT_MAX_FEATURES,
              minDf: req.minDf ?? DEFAULT_MIN_DF,
              ngramRange: [1, 2] as [number, number],
              sublinearTf: true,
              lowercase: true,
              norm: 'l2' as const,
            },
          }
        : {}),
    },
  };
}

/** Fewer values than this never make a column an identifier: too few rows to tell. */
const MIN_IDENTIFIER_ROWS = 20;
/** A trained model's outputs: no input may take their names. */
const OUTPUT_NAMES = new Set(['label', 'probabilities', 'prediction']);

/**
 * Why a column cannot help as a feature, or undefined when it can: no values, one value in every row,
 * a model output's name, or an identifier (a string column with a different short value in every row:
 * text-typed by the profile, yet fewer than TEXT_MIN_MEAN_TOKENS words a value). Gaps never disqualify:
 * the model imputes them.
 */
export function unhelpful(name: string, kind: FeatureKind, s: ColumnStats, rows: number): string | undefined {
  const present = rows - s.missing;
  if (present <= 0) return 'no values';
  if (s.distinct <= 1 && s.missing === 0) return 'constant: one value in every row';
  if (OUTPUT_NAMES.has(name)) return `named "${name}" as a model output; rename the column to use it`;
  const allDistinct = s.unique ?? s.distinct >= present;
  const short = kind === 'category' || (kind === 'text' && s.length !== undefined && s.length.tokens.mean < TEXT_MIN_MEAN_TOKENS);
  if (short && allDistinct && present >= MIN_IDENTIFIER_ROWS) return 'identifier: a distinct value in every row';
  return undefined;
}

/** Set by POST /v1/jobs/{id}/cancel and polled by the processor; under `records:`, apart from BullMQ's keys. */
export const jobCancelKey = (prefix: string, jobId: string) => `${prefix}:records:job:${jobId}:cancel`;
