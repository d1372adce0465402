// Job kind "explain" on the `infer` queue: one online request whose rows get Shapley attributions
// besides the model's outputs. It runs apart from the dynamic batcher: its perturbations are
// thousands of rows that the worker sends to onnxruntime in a few large runs of its own.
import { z } from 'zod';
import { badRequest, errorDataSchema } from '../errors.ts';
import type { TensorSpec } from '../tensors.ts';
import { inferRequestSchema, jobTensorSchema, modelTargetSchema } from './infer.ts';

/** Background rows stored with a version: the reference point attributions are measured from. */
export const backgroundSchema = z.object({
  features: z.number().int().min(1),
  /** Row-major [rows, features]. */
  x: z.array(z.number()),
});
export type Background = z.infer<typeof backgroundSchema>;

/**
 * Background rows of a column-input model, per column, one value per row (null: missing, fed as NaN
 * or ""): set by PUT .../background, or left by training (workers/explain/training-artifacts.ts).
 */
export const columnBackgroundSchema = z.object({
  rows: z.number().int().min(1),
  columns: z.record(z.string(), z.array(z.union([z.number(), z.string(), z.null()]))),
});
export type ColumnBackground = z.infer<typeof columnBackgroundSchema>;

/** One Shapley player of a column-input model: one graph input, one value per row. */
export const explainColumnSchema = z.object({
  name: z.string(),
  kind: z.enum(['number', 'string']),
  /** The input's rank: [rows] (1) or [rows, 1] (2). */
  rank: z.union([z.literal(1), z.literal(2)]),
});
export type ExplainColumn = z.infer<typeof explainColumnSchema>;

/** Where a version's background and drift reference live (artifact store keys; the data never sits in Redis). */
export const artifactRefSchema = z.object({ key: z.string(), rows: z.number().int().min(0), features: z.number().int().min(0) });
export type ArtifactRef = z.infer<typeof artifactRefSchema>;

/** Content-addressed, so setting the same rows twice writes the same object. */
export const backgroundKey = (sha256: string) => `explain/background/${sha256}.json`;
/** Written by the trainer beside its model, then copied under backgroundKey when the version is registered. */
export const trainBackgroundKey = (jobId: string) => `jobs/train/${jobId}/background.json`;

/** Permutations per row when the request does not say (`explainSamples`); antithetic pairs, so even. */
export const DEFAULT_EXPLAIN_SAMPLES = 8;
export const MAX_EXPLAIN_SAMPLES = 1024;
/** Background rows a trained version keeps when `explainBackground` is not given. */
export const DEFAULT_BACKGROUND_ROWS = 50;
export const MAX_BACKGROUND_ROWS = 1000;
/** Most bytes of perturbed input one run of an explanation holds (Shapley points, occluded texts); at least one point or text. */
export const EXPLAIN_RUN_BYTES = 16 * 2 ** 20;

export const explainJobSchema = z.object({
  model: modelTargetSchema,
  request: inferRequestSchema,
  /** The one FP32 [N, features] input and the output whose class column is attributed. */
  input: z.string(),
  output: z.string(),
  /** Shapley (features; needs the background) or occlusion (a text input: each word removed in turn). */
  method: z.enum(['shapley', 'occlusion', 'patches', 'segments', 'tokens']).optional(),
  /** A model with declared processing, image step: the side of the square patches occluded (core/processing/explain.ts). */
  patch: z.number().int().min(1).optional(),
  background: artifactRefSchema.optional(),
  /** A column-input model: one player per input (then `input` is unused); without `background`, one row of missing values. */
  columns: z.array(explainColumnSchema).optional(),
  samples: z.number().int().min(2).max(MAX_EXPLAIN_SAMPLES),
  /** Class (output column) to attribute; default: each row's highest-scoring one. */
  classIndex: z.number().int().min(0).optional(),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1),
  /** Most rows per onnxruntime run of perturbations. */
  runRows: z.number().int().min(1),
  /** Most bytes of perturbed input the request may feed the model (MODELQ_EXPLAIN_MAX_BYTES; checked again by the worker). */
  maxBytes: z.number().int().min(1).optional(),
});
export type ExplainJob = z.infer<typeof explainJobSchema>;

export const explainResultSchema = z.union([
  z.object({
    ok: z.literal(true),
    /** The model's outputs for the request, then `attributions` [N, features]. */
    outputs: z.array(jobTensorSchema),
    /** Per row: the background's mean output for the attributed class. */
    base: z.array(z.number()),
    /** Per row: the attributed class (output column). */
    classes: z.array(z.number().int()),
  }),
  z.object({ ok: z.literal(false), error: errorDataSchema }),
]);
export type ExplainResult = z.infer<typeof explainResultSchema>;

/**
 * Model evaluations one explained row costs: the row itself plus its permutation walks' intermediate
 * points (a one-feature model has none: its attribution is exact, f(x) - base, but the row still runs).
 */
export const evaluationsPerRow = (samples: number, backgroundRows: number, features: number) => 1 + samples * backgroundRows * Math.max(0, features - 1);

/** Bytes of perturbed input an explanation of `rows` rows feeds the model, each point `width` bytes wide (4 per FP32 feature). */
export const shapleyBytes = (rows: number, samples: number, backgroundRows: number, features: number, width = 4 * features) =>
  rows * evaluationsPerRow(samples, backgroundRows, features) * width;

/** What an explanation of a model attributes: its one FP32 [N, F] input and one FP32 [N] or [N, C] output. */
export interface ExplainTarget {
  input: string;
  output: string;
  /** Features of a [rows, features] input; 0 for a text input. */
  features: number;
  /** A text model: one BYTES input [rows] or [rows, 1], explained by occlusion of its words. */
  text?: boolean;
  /** A column-input model (several inputs, each one value per row): one Shapley player per column. */
  columns?: ExplainColumn[];
}

/** An input that takes one value per row: FP32 or BYTES, [rows] or [rows, 1] (the column-input model contract). */
const isColumnInput = (i: TensorSpec) =>
  (i.datatype === 'FP32' || i.datatype === 'BYTES') && i.shape[0] === -1 && (i.shape.length === 1 || (i.shape.length === 2 && i.shape[1] === 1));

/** A model with one string input [rows] or [rows, 1]: its words are explained by occlusion. */
const isTextInput = (i: TensorSpec) => i.datatype === 'BYTES' && i.shape[0] === -1 && (i.shape.length === 1 || (i.shape.length === 2 && i.shape[1] === 1));

/**
 * The model's explainable input and output, or a 400 saying why it has none. The output is
 * `probabilities` when there is one (the platform's classifiers), else the first FP32 output of rank 1 or 2.
 */
export function explainTarget(m: { name: string; inputs: TensorSpec[]; outputs: TensorSpec[] }): ExplainTarget {
  if (m.inputs.length > 1 && m.inputs.every(isColumnInput)) {
    const out = outputOf(m);
    const columns = m.inputs.map((i): ExplainColumn => ({
      name: i.name,
      kind: i.datatype === 'FP32' ? 'number' : 'string',
      rank: i.shape.length === 1 ? 1 : 2,
    }));
    return { input: columns[0]!.name, output: out.name, features: columns.length, columns };
  }
  const only = m.inputs.length === 1 ? m.inputs[0]! : undefined;
  const text = only !== undefined && isTextInput(only);
  if (!only || (!text && (only.datatype !== 'FP32' || only.shape.length !== 2 || only.shape[0] !== -1))) {
    throw badRequest(
      `model ${m.name} cannot be explained: attributions need exactly one FP32 input shaped [rows, features], one BYTES (text) input shaped [rows] or [rows, 1], or inputs that each take one value per row (FP32 or BYTES [rows, 1]), with a dynamic first dimension`,
    );
  }
  const out = outputOf(m);
  return text ? { input: only.name, output: out.name, features: 0, text: true } : { input: only.name, output: out.name, features: only.shape[1]! };
}

/** The attributed output: `probabilities` when there is one (the platform's classifiers), else the first FP32 output of rank 1 or 2. */
function outputOf(m: { name: string; outputs: TensorSpec[] }): TensorSpec {
  const floats = m.outputs.filter((o) => o.datatype === 'FP32' && (o.shape.length === 1 || o.shape.length === 2) && o.shape[0] === -1);
  const out = floats.find((o) => o.name === 'probabilities') ?? floats[0];
  if (!out) throw badRequest(`model ${m.name} cannot be explained: it has no FP32 output shaped [rows] or [rows, classes]`);
  return out;
}

/** PUT /v1/models/{name}/versions/{v}/background */
export const backgroundBodySchema = z
  .object({
    rows: z
      .array(z.union([z.array(z.union([z.number(), z.string(), z.null()])), z.record(z.string(), z.union([z.number(), z.string(), z.null()]))]))
      .min(1)
      .max(MAX_BACKGROUND_ROWS)
      .meta({
        description: `Background rows (1-${MAX_BACKGROUND_ROWS}), e.g. a sample of the training data; attributions are measured from their mean output. Numbers [rows, features] for a model of one FP32 input; for a column-input model, one value per column (in input order, or an object keyed by column; null or absent: missing)`,
      }),
  })
  .strict();

/** A column-input model's background body as stored: one array per column; a 400 naming the first bad row. */
export function columnBackground(rows: z.infer<typeof backgroundBodySchema>['rows'], columns: ExplainColumn[]): ColumnBackground {
  const out: ColumnBackground = { rows: rows.length, columns: Object.fromEntries(columns.map((c) => [c.name, []])) };
  rows.forEach((row, r) => {
    if (Array.isArray(row) && row.length !== columns.length) throw badRequest(`rows[${r}] has ${row.length} values; the model has ${columns.length} columns`);
    if (!Array.isArray(row)) {
      const unknown = Object.keys(row).find((k) => !columns.some((c) => c.name === k));
      if (unknown !== undefined) throw badRequest(`rows[${r}] names "${unknown}", which is not a column of the model`);
    }
    columns.forEach((c, f) => {
      const v = (Array.isArray(row) ? row[f] : row[c.name]) ?? null;
      if (v !== null && (c.kind === 'number') !== (typeof v === 'number'))
        throw badRequest(`rows[${r}] column "${c.name}" must be a ${c.kind === 'number' ? 'number' : 'string'} or null`);
      out.columns[c.name]!.push(v);
    });
  });
  return out;
}
