// A Parquet file as a batch of files, for a model with declared processing or a pipeline of files:
// a binary (BYTE_ARRAY) column per file input, named as the input, or, for a model with one file
// input, as `fileColumn` says; an `id` column is echoed. The file is stored and planned from its
// footer as every Parquet batch is (one chunk per row group); the workers read each row group's
// values and decode them as the other file batches' rows (workers/processing/parquet-files.ts).
// Nothing is decoded here.
import { badRequest } from '../../core/errors.ts';
import type { TensorSpec } from '../../core/tensors.ts';

/**
 * The columns the planner looks for, as BYTES inputs of one value per row (core/rows/parquet.ts takes
 * a binary or string column for them): each file input's own name, or `fileColumn` for the only one.
 */
export function fileColumnInputs(model: { name: string }, inputs: string[], fileColumn: string | undefined): TensorSpec[] {
  if (fileColumn !== undefined && inputs.length !== 1)
    throw badRequest(
      `fileColumn: model ${model.name} takes files for ${inputs.length} inputs (${inputs.map((i) => `"${i}"`).join(', ')}): name the Parquet columns as the inputs`,
    );
  if (fileColumn === 'id') throw badRequest('fileColumn: "id" is the rows\' id column; name the column holding the files');
  return (fileColumn !== undefined ? [fileColumn] : inputs).map((name) => ({ name, datatype: 'BYTES', shape: [-1] }));
}

/**
 * A row group is one chunk, read whole by a worker: one past MODELQ_BATCH_CHUNK_BYTES is refused at
 * submit (a file of images written as one row group would otherwise be one chunk of gigabytes).
 */
export function checkFileGroups(chunks: { start: number; end: number; file?: number }[], maxBytes: number): void {
  for (const [i, c] of chunks.entries())
    if (c.end - c.start > maxBytes)
      throw badRequest(
        `a row group of ${c.end - c.start} bytes (chunk ${i}${c.file !== undefined ? `, in input file ${c.file}` : ''}): a row group of files is one chunk, at most MODELQ_BATCH_CHUNK_BYTES (${maxBytes}): write the Parquet file with smaller row groups (pyarrow: row_group_size)`,
      );
}
