// Shapley values of a column-input model (every input one value per row: FP32 numbers, BYTES
// categories or texts): one player per column, named as the column. A point of a walk takes each
// column's value from the explained row or from a background row, and is fed as the model's own
// inputs ([n] or [n, 1] per column), so the graph's own imputation and encoding run on it. A text
// column is one player (its whole text switched at once).
import type { ExplainColumn } from '../../core/jobs/explain.ts';
import type { RawTensor } from '../../core/tensors.ts';
import { shapleyPlan, type Segment, type ShapleyPlan, type ShapleyResult } from './shapley.ts';

/** One column's values, one per row: numbers (NaN: missing) or strings ("" missing). */
export type ColumnValues = Float32Array | string[];

export interface ColumnShapleyOptions extends Omit<ShapleyPlan, 'features' | 'backgroundRows' | 'pointBytes'> {
  columns: ExplainColumn[];
  /** Per column, the explained rows' values. */
  x: ColumnValues[];
  /** Per column, the background rows' values (as many per column). */
  background: ColumnValues[];
}

/** Runs the model on column feeds of `rows` rows; returns [rows, classes] scores of the attributed output. */
export type EvaluateColumns = (feeds: Record<string, RawTensor>, rows: number) => Promise<{ scores: Float32Array; classes: number }>;

/** The feeds of `n` rows whose values come, per column, from `pick(column)`. */
function feedsOf(columns: ExplainColumn[], n: number, pick: (f: number) => ColumnValues): Record<string, RawTensor> {
  const feeds: Record<string, RawTensor> = {};
  columns.forEach((c, f) => {
    const dims = c.rank === 1 ? [n] : [n, 1];
    const v = pick(f);
    feeds[c.name] = c.kind === 'number' ? { type: 'float32', dims, data: v as Float32Array } : { type: 'string', dims, data: v as string[] };
  });
  return feeds;
}

/** Bytes of one point as fed: 4 per number, the longest value of each string column (an estimate for the run bound). */
function pointBytes(o: ColumnShapleyOptions): number {
  let bytes = 0;
  o.columns.forEach((c, f) => {
    if (c.kind === 'number') bytes += 4;
    else {
      let most = 0;
      for (const v of [...(o.x[f] as string[]), ...(o.background[f] as string[])]) most = Math.max(most, v.length);
      bytes += 16 + 3 * most;
    }
  });
  return bytes;
}

export function shapleyColumns(o: ColumnShapleyOptions, evaluate: EvaluateColumns): Promise<ShapleyResult> {
  const F = o.columns.length;
  const B = o.background[0]?.length ?? 0;
  if (!B) throw new RangeError('a column explanation needs at least one background row');
  const copy = (v: ColumnValues): ColumnValues => (v instanceof Float32Array ? v.slice() : v.slice());
  return shapleyPlan(
    { ...o, features: F, backgroundRows: B, pointBytes: pointBytes(o) },
    {
      rows: () =>
        evaluate(
          feedsOf(o.columns, o.rows, (f) => copy(o.x[f]!)),
          o.rows,
        ),
      background: () =>
        evaluate(
          feedsOf(o.columns, B, (f) => copy(o.background[f]!)),
          B,
        ),
      points: (segments, count) => evaluate(columnPoints(o, segments, count), count),
    },
  );
}

/** The segments' points as column feeds: column f of point j of a walk is the row's value when f is among perm[0..j), else background row b's. */
function columnPoints(o: ColumnShapleyOptions, segments: Segment[], count: number): Record<string, RawTensor> {
  const F = o.columns.length;
  const out: ColumnValues[] = o.columns.map((c) => (c.kind === 'number' ? new Float32Array(count) : new Array<string>(count)));
  const pos = new Int32Array(F);
  let at = 0;
  for (const { row, perm, b, j0, j1 } of segments) {
    for (let k = 0; k < F; k++) pos[perm[k]!] = k;
    for (let j = j0; j <= j1; j++, at++) {
      for (let f = 0; f < F; f++) out[f]![at] = pos[f]! < j ? o.x[f]![row]! : o.background[f]![b]!;
    }
  }
  return feedsOf(o.columns, count, (f) => out[f]!);
}
