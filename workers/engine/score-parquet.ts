// Scores one Parquet row group inside an engine thread: SCORE_RUN_ROWS rows at a time go into the
// run's typed arrays, either straight from the pages (workers/rows/parquet-fast.ts) or, for columns
// the fast decoder does not read, from hyparquet's decoded columns (core/rows/parquet.ts); the
// output and error lines come back as bytes, as for JSONL and CSV segments.
import { errorLine, versionTag, type RowRef } from '../../core/rows/output-lines.ts';
import type { Target } from '../../core/rows/parquet-column.ts';
import { isColumnInput, missingValue } from '../../core/rows/columns.ts';
import { FastDecodeError, FastRowGroup } from '../rows/parquet-fast.ts';
import { decodeRowGroup, metadataOf, type ParquetPlan, type RowGroupBytes } from '../../core/rows/parquet.ts';
import { elementCount, toOrtType, type RawTensor, type TensorSpec, type TypedArray } from '../../core/tensors.ts';
import type { ExplainRows } from './explain-rows.ts';
import type { DriftProfile } from '../../core/drift/index.ts';
import { OutputEncoder, type EncodeSpec } from '../../core/rows/output-encode.ts';
import { finished, runRows, SCORE_RUN_ROWS, TYPED, type Acc, type RunFeeds, type ScoredSegment } from './score-segment.ts';

export interface RowGroupJob extends RowGroupBytes {
  inputs: TensorSpec[];
  plan: ParquetPlan;
  /** Row number (in the file) of the row group's first row, and its rows. */
  firstRow: number;
  rows: number;
  /** The number the output gives the first row (default `firstRow`; a batch by reference numbers rows within each part from 0). */
  numberFrom?: number;
  /** As for segments (score-segment.ts). */
  explain?: ExplainRows;
  driftSample?: number;
  driftMaxRows?: number;
  driftProfile?: DriftProfile;
  encode?: EncodeSpec;
  modelVersion?: number;
}

/** One run's values of an input: a typed array, or strings for a BYTES input. */
type Values = TypedArray | string[];

/** Fills the next n rows into rows [0, n) of the arrays; each row's problem, or null. */
type ReadRows = (n: number, arrays: Values[]) => (string | null)[];

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

/** `fastRows`: MODELQ_FAST_ROWS (the engine thread's init); false reads every row group with hyparquet. */
export async function scoreRowGroup(job: RowGroupJob, run: RunFeeds, fastRows = true): Promise<ScoredSegment> {
  const pers = job.inputs.map((s) => elementCount(s.shape.slice(1)));
  const meta = fastRows ? metadataOf(job.footer) : undefined;
  const fast = meta ? FastRowGroup.open(meta, job.plan, job.inputs, pers, job) : null;
  if (fast) {
    try {
      // The ids by the same decoder where it reads them (a numeric scalar column), else through hyparquet.
      const id = job.plan.id;
      const ids = id ? (FastRowGroup.ids(meta!, id, job) ?? (await decodeRowGroup(job, [id], job.firstRow, job.rows)).get(id)) : undefined;
      return await scoreRuns(job, run, pers, ids, (n, arrays) => fast.read(n, arrays as Target[]));
    } catch (e) {
      // A page the fast decoder does not read: the whole row group again, through hyparquet.
      if (!(e instanceof FastDecodeError)) throw e;
    }
  }
  const cols = await decodeRowGroup(job, [...job.plan.columns, ...(job.plan.id ? [job.plan.id] : [])], job.firstRow, job.rows);
  // A column-input model's null cell is its input's missing value (NaN, or "" for strings).
  const missing = job.plan.mode === 'lists' && isColumnInput(job.inputs) ? job.inputs.map(missingValue) : [];
  let next = 0;
  return scoreRuns(job, run, pers, job.plan.id ? cols.get(job.plan.id) : undefined, (n, arrays) => {
    const problems = Array.from({ length: n }, (_, r) => fillRow(job, cols, next + r, arrays, r, pers, missing));
    next += n;
    return problems;
  });
}

/** The row group's rows, a run at a time: rows with a problem become error lines, the others one run. */
async function scoreRuns(job: RowGroupJob, run: RunFeeds, pers: number[], ids: ArrayLike<unknown> | undefined, read: ReadRows): Promise<ScoredSegment> {
  const acc: Acc = {
    out: '',
    err: [],
    completed: 0,
    failed: 0,
    tag: versionTag(job.modelVersion),
    ...(job.encode ? { enc: new OutputEncoder(job.encode) } : {}),
  };
  for (let at = 0; at < job.rows; at += SCORE_RUN_ROWS) {
    const n = Math.min(job.rows - at, SCORE_RUN_ROWS);
    const arrays: Values[] = job.inputs.map((s, j) =>
      s.datatype === 'BYTES' ? new Array<string>(n * pers[j]!).fill('') : new TYPED[s.datatype]!(n * pers[j]!),
    );
    const problems = read(n, arrays);
    const refs: RowRef[] = [];
    for (let r = 0; r < n; r++) {
      const row = (job.numberFrom ?? job.firstRow) + at + r;
      const id = ids ? idJson(ids[at + r]) : '';
      const problem = problems[r];
      if (problem) {
        acc.err.push({ n: row, line: errorLine(row, id, { code: 'bad_row', message: problem }) });
        acc.failed++;
        continue;
      }
      // Good rows close up, so a run holds them in order without gaps.
      if (refs.length !== r) arrays.forEach((a, j) => a.copyWithin(refs.length * pers[j]!, r * pers[j]!, (r + 1) * pers[j]!));
      refs.push({ n: row, id });
    }
    if (!refs.length) continue;
    const feeds = (from: number, count: number): Record<string, RawTensor> =>
      Object.fromEntries(
        job.inputs.map((s, j) => {
          const a = arrays[j]!;
          const data = from === 0 && count * pers[j]! === a.length ? a : a.slice(from * pers[j]!, (from + count) * pers[j]!);
          return [s.name, { type: toOrtType(s.datatype), dims: [count, ...s.shape.slice(1)], data }];
        }),
      );
    await runRows(refs, feeds(0, refs.length), (i) => feeds(i, 1), run, acc);
  }
  return finished(acc, job.rows);
}

/** Copies row r's decoded values into slot `slot` of each input's array; returns a message when the row cannot be used (also for compression samples). */
export function fillRow(
  job: Pick<RowGroupJob, 'inputs' | 'plan'>,
  cols: Map<string, ArrayLike<unknown>>,
  r: number,
  arrays: Values[],
  slot: number,
  pers: number[],
  missing: (number | string | undefined)[],
): string | null {
  for (let j = 0; j < job.inputs.length; j++) {
    const spec = job.inputs[j]!;
    const per = pers[j]!;
    const out = arrays[j]!;
    const m = missing[j];
    let cell = cols.get(spec.name)?.[r]; // none in scalars mode, whose columns are read below
    // A null, or a null inside a one-value list, of a column-input model.
    if (m !== undefined && (cell === null || cell === undefined || (Array.isArray(cell) && cell.length === 1 && cell[0] == null))) cell = m;
    if (Array.isArray(out)) {
      const problem = fillStrings(spec, cell, out, slot, per);
      if (problem) return problem;
      continue;
    }
    const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
    if (job.plan.mode === 'scalars') {
      for (let k = 0; k < per; k++) {
        const v = cols.get(job.plan.columns[k]!)![r];
        if (v === null || v === undefined) return `column "${job.plan.columns[k]}" is null`;
        out[slot * per + k] = (big ? BigInt(v as number) : Number(v)) as never;
      }
      continue;
    }
    const vals = cellValues(cell);
    if (typeof vals === 'string') return `column "${spec.name}" ${vals}`;
    if (vals.length !== per)
      return `column "${spec.name}" has ${vals.length} values, the model's input "${spec.name}" [${spec.shape.join(',')}] takes ${per} per row`;
    for (let k = 0; k < per; k++) {
      const v = vals[k];
      if (v === null || v === undefined) return `column "${spec.name}" has a null value at ${k}`;
      out[slot * per + k] = (big ? BigInt(v as number) : Number(v)) as never;
    }
  }
  return null;
}

/** A string cell (or a list of them) into slot `slot` of a BYTES input's strings; a message when it cannot be used. */
function fillStrings(spec: TensorSpec, cell: unknown, out: string[], slot: number, per: number): string | null {
  // hyparquet gives UTF8 columns as strings and plain BYTE_ARRAY ones as bytes.
  const text = (v: unknown) =>
    typeof v === 'string' ? v : v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8') : null;
  if (cell === null || cell === undefined) return `column "${spec.name}" is null`;
  const vals = Array.isArray(cell) ? (cell.flat(Infinity) as unknown[]) : [cell];
  if (vals.length !== per)
    return `column "${spec.name}" has ${vals.length} values, the model's input "${spec.name}" [${spec.shape.join(',')}] takes ${per} per row`;
  for (let k = 0; k < per; k++) {
    const s = text(vals[k]);
    if (s === null) return `column "${spec.name}" has a ${vals[k] === null ? 'null' : 'non-string'} value at ${k}`;
    out[slot * per + k] = s;
  }
  return null;
}
