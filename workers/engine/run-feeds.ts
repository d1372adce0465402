// The one-run function batch scoring is written against (score-segment.ts, score-parquet.ts) and
// that explained and drift-sampled scoring wrap (explain-rows.ts, drift-rows.ts).
import type { RowRef } from '../../core/rows/output-lines.ts';
import type { RawTensor } from '../../core/tensors.ts';

/** One onnxruntime run; rejects with an AppError `bad_request` when the data is at fault. `refs`: the rows it scores. */
export type RunFeeds = (feeds: Record<string, RawTensor>, refs?: readonly RowRef[]) => Promise<Record<string, RawTensor>>;
