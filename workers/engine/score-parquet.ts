// Scores one Parquet row group inside an engine thread: its columns are decoded from the row
// group's own bytes (core/rows/parquet.ts), copied into the run's typed arrays SCORE_RUN_ROWS rows
// at a time, and the output and error lines come back as bytes, as for JSONL and CSV segments.
import { decodeRowGroup, type ParquetPlan, type RowGroupBytes } from '../../core/rows/parquet.ts';
import { errorLine, ownBytes, type RowRef } from '../../core/rows/output-lines.ts';
import { elementCount, toOrtType, type RawTensor, type TensorSpec, type TypedArray } from '../../core/tensors.ts';
import { runRows, SCORE_RUN_ROWS, TYPED, type Acc, type RunFeeds, type ScoredSegment } from './score-segment.ts';

export interface RowGroupJob extends RowGroupBytes {
  inputs: TensorSpec[];
  plan: ParquetPlan;
  /** Row number (in the file) of the row group's first row, and its rows. */
  firstRow: number;
  rows: number;
}

/** The JSON text of an id as JSON.stringify writes it (bigints as numbers). */
function idJson(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? String(Number(v)) : JSON.stringify(String(v));
  return JSON.stringify(v) ?? '';
}

/** The flat numbers of one cell (a list, nested lists, or a scalar), or a message. */
function cellValues(v: unknown): ArrayLike<unknown> | string {
  if (v === null || v === undefined) return 'is null';
  if (Array.isArray(v)) return v.some(Array.isArray) ? (v.flat(Infinity) as unknown[]) : v;
  if (ArrayBuffer.isView(v)) return v as unknown as ArrayLike<unknown>;
  return [v];
}

export async function scoreRowGroup(job: RowGroupJob, run: RunFeeds): Promise<ScoredSegment> {
  const cols = await decodeRowGroup(job, job.plan, job.firstRow, job.rows);
  const ids = job.plan.id ? cols.get(job.plan.id)! : undefined;
  const acc: Acc = { out: '', err: [], completed: 0, failed: 0 };
  const pers = job.inputs.map((s) => elementCount(s.shape.slice(1)));
  for (let at = 0; at < job.rows; at += SCORE_RUN_ROWS) {
    const end = Math.min(job.rows, at + SCORE_RUN_ROWS);
    const arrays = job.inputs.map((s, j) => new TYPED[s.datatype]!((end - at) * pers[j]!));
    const refs: RowRef[] = [];
    for (let r = at; r < end; r++) {
      const n = job.firstRow + r;
      const id = ids ? idJson(ids[r]) : '';
      const problem = fill(job, cols, r, arrays, refs.length, pers);
      if (problem) {
        acc.err.push({ n, line: errorLine(n, id, { code: 'bad_row', message: problem }) });
        acc.failed++;
        continue;
      }
      refs.push({ n, id });
    }
    if (!refs.length) continue;
    const feeds = (from: number, count: number): Record<string, RawTensor> => Object.fromEntries(job.inputs.map((s, j) => [s.name, {
      type: toOrtType(s.datatype), dims: [count, ...s.shape.slice(1)], data: arrays[j]!.slice(from * pers[j]!, (from + count) * pers[j]!),
    }]));
    await runRows(refs, feeds(0, refs.length), (i) => feeds(i, 1), run, acc);
  }
  acc.err.sort((a, b) => a.n - b.n);
  return { out: ownBytes(acc.out), err: ownBytes(acc.err.map((e) => e.line).join('')), rows: job.rows, completed: acc.completed, failed: acc.failed };
}

/** Copies row r's values into slot `slot` of each input's array; returns a message when the row cannot be used. */
function fill(job: RowGroupJob, cols: Map<string, ArrayLike<unknown>>, r: number, arrays: TypedArray[], slot: number, pers: number[]): string | null {
  for (let j = 0; j < job.inputs.length; j++) {
    const spec = job.inputs[j]!;
    const per = pers[j]!;
    const out = arrays[j]!;
    const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
    if (job.plan.mode === 'scalars') {
      for (let k = 0; k < per; k++) {
        const v = cols.get(job.plan.columns[k]!)![r];
        if (v === null || v === undefined) return `column "${job.plan.columns[k]}" is null`;
        out[slot * per + k] = (big ? BigInt(v as number) : Number(v)) as never;
      }
      continue;
    }
    const vals = cellValues(cols.get(spec.name)![r]);
    if (typeof vals === 'string') return `column "${spec.name}" ${vals}`;
    if (vals.length !== per) return `column "${spec.name}" has ${vals.length} values, the model's input "${spec.name}" [${spec.shape.join(',')}] takes ${per} per row`;
    for (let k = 0; k < per; k++) {
      const v = vals[k];
      if (v === null || v === undefined) return `column "${spec.name}" has a null value at ${k}`;
      out[slot * per + k] = (big ? BigInt(v as number) : Number(v)) as never;
    }
  }
  return null;
}
