// The column contract of a column-input model (one graph input per source column): which columns of
// the training data it reads and how, as written in the ONNX metadata (`modelq.columns`), in the
// version record's metadata (`columns`) and in a train job's result. Missing values are fed as NaN
// (numbers) or "" (categories, text); the graph imputes and encodes them itself.
import { z } from 'zod';

/** The ONNX metadata_props key that holds the JSON of ModelColumns. */
export const MODEL_COLUMNS_KEY = 'modelq.columns';

export const IMPUTATION_STRATEGIES = ['median', 'mean', 'constant'] as const;
export type ImputationStrategy = (typeof IMPUTATION_STRATEGIES)[number];

export const columnInfoSchema = z.object({
  name: z.string(),
  type: z.enum(['number', 'category', 'text']),
  /** Whether the model reads it (a graph input of the same name). */
  used: z.boolean(),
  /** Why a column is not used: the target, no values, constant, an identifier, not among the requested features. */
  reason: z.string().optional(),
  /** Numbers: what a missing value (NaN) becomes inside the graph, fitted on the training split. */
  imputation: z.object({ strategy: z.enum(IMPUTATION_STRATEGIES), value: z.number() }).optional(),
  /** Numbers: the graph adds a 0/1 "was missing" feature (the training split had gaps). */
  missingIndicator: z.boolean().optional(),
  /** Categories: the one-hot levels in order; "" is the missing level, present when the training split had gaps. Others encode as zeros. */
  levels: z.array(z.string()).optional(),
});
export type ColumnInfo = z.infer<typeof columnInfoSchema>;

export const modelColumnsSchema = z.object({
  columns: z.array(columnInfoSchema),
  target: z.string(),
  classes: z.array(z.union([z.string(), z.number()])).optional(),
});
export type ModelColumns = z.infer<typeof modelColumnsSchema>;

/** The columns of a model's ONNX metadata value (JSON), or undefined when it is absent or not this contract. */
export function parseModelColumns(json: string | undefined): ModelColumns | undefined {
  if (!json) return undefined;
  try {
    const r = modelColumnsSchema.safeParse(JSON.parse(json));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
