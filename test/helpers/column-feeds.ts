// Feeds for a column-input model (one [N, 1] input per source column) in onnxruntime-node: numbers
// as float32 with NaN for a missing value, strings with "" for one; and the trainer's reference rows as such feeds.
import * as ort from 'onnxruntime-node';
import type { Predictions } from '../../workers/training/child/run-training.ts';

export type ColumnValues = Record<string, (number | null | undefined)[] | (string | null | undefined)[]>;

/** One [N, 1] tensor per column; a column of numbers (or nulls) is float32, any string makes it a string column. */
export function columnFeeds(columns: ColumnValues, numeric?: Set<string>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, list] of Object.entries(columns)) {
    const values = list as unknown[];
    const isNumber = numeric ? numeric.has(name) : values.every((v) => v === null || v === undefined || typeof v === 'number');
    feeds[name] = isNumber
      ? new ort.Tensor(
          'float32',
          Float32Array.from(values, (v): number => (typeof v === 'number' ? v : NaN)),
          [values.length, 1],
        )
      : new ort.Tensor(
          'string',
          values.map((v) => (v === null || v === undefined ? '' : String(v))),
          [values.length, 1],
        );
  }
  return feeds;
}

/** The trainer's reference rows (predictions.json) as the model's feeds. */
export function referenceFeeds(ref: Predictions): Record<string, ort.Tensor> {
  return columnFeeds({ ...(ref.numbers ?? {}), ...(ref.strings ?? {}) }, new Set(Object.keys(ref.numbers ?? {})));
}
