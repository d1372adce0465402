// Column-input models: every graph input takes one value per row ([N] or [N, 1]), as scikit-learn
// pipelines converted to ONNX and the platform's trained models do. For them every row source (CSV
// cell, JSONL key, Parquet column, /v2 tensor element, KServe instance key) means "missing" the same
// way, and the graph imputes: a float input gets NaN, a string (BYTES) input "". Missing is an empty
// CSV cell, JSON null, an absent key, a NaN, the text "NaN" (any case; pandas and R write it so) and a
// Parquet null. Inputs of other types (integers, booleans) have no missing value: such a cell stays an error.
import type { TensorSpec } from '../tensors.ts';

/** One value per row: [N], or [N, 1, ...] with every dimension after the batch one of size 1. */
export const oneValuePerRow = (s: TensorSpec) => s.shape.slice(1).every((d) => d === 1);

/** Every input takes one value per row. */
export const isColumnInput = (inputs: readonly TensorSpec[]) => inputs.length > 0 && inputs.every(oneValuePerRow);

const FLOATS = new Set(['FP32', 'FP64', 'FP16']);
export const isFloat = (s: TensorSpec) => FLOATS.has(s.datatype);

/** What a missing value is fed as, or undefined when the input's type has none. */
export function missingValue(s: TensorSpec): number | string | undefined {
  if (FLOATS.has(s.datatype)) return Number.NaN;
  if (s.datatype === 'BYTES') return '';
  return undefined;
}

/** Whether a text cell means missing for a float input: empty (after trimming) or "NaN". */
export const isMissingText = (f: string) => {
  const t = f.trim();
  return t === '' || t.toLowerCase() === 'nan';
};

/**
 * A JSON value of a column-input model's input with missing values replaced (null or undefined;
 * for a float input also the text "NaN"), else the value as it came (checked later as usual).
 */
export function withMissing(s: TensorSpec, v: unknown): unknown {
  const m = missingValue(s);
  if (m === undefined) return v;
  if (v === null || v === undefined) return m;
  if (typeof m === 'number' && typeof v === 'string' && v.trim().toLowerCase() === 'nan') return m;
  return v;
}

/** `data` (flat or nested JSON) with every missing element replaced, as withMissing does. */
export function dataWithMissing(s: TensorSpec, data: unknown): unknown {
  if (missingValue(s) === undefined || !Array.isArray(data)) return data;
  const walk = (node: unknown): unknown => (Array.isArray(node) ? node.map(walk) : withMissing(s, node));
  return walk(data);
}
