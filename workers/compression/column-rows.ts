// Dataset rows for a column-input model (every input one value per row, named as a dataset column,
// as the models the platform trains and scikit-learn pipelines converted to ONNX are): each input
// reads its own column, a missing number as NaN and a missing string as "", as the model takes them.
import { datasetRows, numericValue, type DatasetRecord } from '../../core/datasets.ts';
import { AppError } from '../../core/errors.ts';
import type { VersionRecord } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { TensorSpec } from '../../core/tensors.ts';

/**
 * Whether the model is fed by column from this dataset: it has several inputs or one float input, each
 * one value per row ([N] or [N, 1]) and each named as a dataset column other than the target (the
 * models the platform trains; scikit-learn pipelines converted to ONNX look the same).
 */
export function isColumnInput(model: Pick<VersionRecord, 'inputs'>, columns: Map<string, string>, target?: string): boolean {
  const perRow = model.inputs.every(
    (i) => (i.datatype === 'FP32' || i.datatype === 'BYTES') && i.shape.length >= 1 && i.shape.length <= 2 && i.shape.slice(1).every((d) => d === 1),
  );
  const named = model.inputs.every((i) => columns.has(i.name) && i.name !== target);
  // One string input alone stays with the text path (its column may be named apart from the input).
  const lone = model.inputs.length === 1 && model.inputs[0]!.datatype === 'BYTES' && model.inputs[0]!.shape.length === 1;
  return perRow && named && !lone && model.inputs.length > 0;
}

export interface ColumnRows {
  rows: number;
  columns: { input: TensorSpec; values: Float32Array | string[] }[];
  targets: unknown[];
}

/** Each input's column (NaN / "" where missing) and the raw target. */
export async function loadColumnRows(store: ArtifactStore, ds: DatasetRecord, model: Pick<VersionRecord, 'inputs'>, target?: string): Promise<ColumnRows> {
  const nums: number[][] = model.inputs.map(() => []);
  const strs: string[][] = model.inputs.map(() => []);
  const targets: unknown[] = [];
  let rows = 0;
  for await (const row of datasetRows(await store.read(ds.key), ds.format)) {
    rows++;
    model.inputs.forEach((input, i) => {
      const v = row.values[input.name];
      const missing = v === null || v === undefined;
      if (input.datatype === 'BYTES') return void strs[i]!.push(missing ? '' : typeof v === 'string' ? v : String(v));
      const n = missing ? NaN : numericValue(v, ds.format);
      if (n === null) throw new AppError('bad_request', `dataset line ${row.line}: input column "${input.name}" is not a number`);
      nums[i]!.push(n);
    });
    if (target !== undefined) {
      const t = row.values[target];
      if (t === null || t === undefined) throw new AppError('bad_request', `dataset line ${row.line}: target "${target}" is missing`);
      targets.push(t);
    }
  }
  return { rows, columns: model.inputs.map((input, i) => ({ input, values: input.datatype === 'BYTES' ? strs[i]! : Float32Array.from(nums[i]!) })), targets };
}
