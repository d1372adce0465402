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
 * The background a column-input model's training leaves (workers/explain/training-artifacts.ts):
 * sampled training rows by source column, as the model's inputs take them (a missing number as
 * null, to feed as NaN; a missing string as "").
 */
export const columnBackgroundSchema = z.object({
  rows: z.number().int().min(0),
  columns: z.record(z.string(), z.union([z.array(z.number().nullable()), z.array(z.string())])),
});
export type ColumnBackground = z.infer<typeof columnBackgroundSchema>;

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

export const explainJobSchema = z.object({
  model: modelTargetSchema,
  request: inferRequestSchema,
  /** The one FP32 [N, features] input and the output whose class column is attributed. */
  input: z.string(),
  output: z.string(),
  /** Shapley (features; needs the background) or occlusion (a text input: each word removed in turn). */
  method: z.enum(['shapley', 'occlusion']).optional(),
  background: artifactRefSchema.optional(),
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

/** Model evaluations one explained row costs: the permutation walks plus the shared endpoints. */
export const evaluationsPerRow = (samples: number, backgroundRows: number, features: number) => samples * backgroundRows * Math.max(0, features - 1);

/** What an explanation of a model attributes: its one FP32 [N, F] input and one FP32 [N] or [N, C] output. */
export interface ExplainTarget {
  input: string;
  output: string;
  /** Features of a [rows, features] input; 0 for a text input. */
  features: number;
  /** A text model: one BYTES input [rows] or [rows, 1], explained by occlusion of its words. */
  text?: boolean;
}

/** A model with one string input [rows] or [rows, 1]: its words are explained by occlusion. */
const isTextInput = (i: TensorSpec) => i.datatype === 'BYTES' && i.shape[0] === -1 && (i.shape.length === 1 || (i.shape.length === 2 && i.shape[1] === 1));

/**
 * The model's explainable input and output, or a 400 saying why it has none. The output is
 * `probabilities` when there is one (the platform's classifiers), else the first FP32 output of rank 1 or 2.
 */
export function explainTarget(m: { name: string; inputs: TensorSpec[]; outputs: TensorSpec[] }): ExplainTarget {
  const only = m.inputs.length === 1 ? m.inputs[0]! : undefined;
  const text = only !== undefined && isTextInput(only);
  if (!only || (!text && (only.datatype !== 'FP32' || only.shape.length !== 2 || only.shape[0] !== -1))) {
    throw badRequest(
      `model ${m.name} cannot be explained: attributions need exactly one FP32 input shaped [rows, features] or one BYTES (text) input shaped [rows] or [rows, 1], with a dynamic first dimension`,
    );
  }
  const floats = m.outputs.filter((o) => o.datatype === 'FP32' && (o.shape.length === 1 || o.shape.length === 2) && o.shape[0] === -1);
  const out = floats.find((o) => o.name === 'probabilities') ?? floats[0];
  if (!out) throw badRequest(`model ${m.name} cannot be explained: it has no FP32 output shaped [rows] or [rows, classes]`);
  return text ? { input: only.name, output: out.name, features: 0, text: true } : { input: only.name, output: out.name, features: only.shape[1]! };
}

/** PUT /v1/models/{name}/versions/{v}/background */
export const backgroundBodySchema = z
  .object({
    rows: z
      .array(z.array(z.number()))
      .min(1)
      .max(MAX_BACKGROUND_ROWS)
      .meta({
        description: `Background rows [rows, features] (1-${MAX_BACKGROUND_ROWS}), e.g. a sample of the training data; attributions are measured from their mean output`,
      }),
  })
  .strict();
