// Explained batch scoring, inside an engine thread: each run of a segment's rows is followed by the
// Shapley attributions of those rows (workers/explain/shapley.ts), whose perturbations run on the
// same session in a few large runs; the run's result gains `attributions` [rows, features],
// `explain_base` [rows] and `explain_class` [rows], which the output lines carry like outputs.
import { AppError } from '../../core/errors.ts';
import type { RawTensor } from '../../core/tensors.ts';
import type { RowLengths } from '../../core/rows/output-lines.ts';
import { occlusion } from '../explain/occlusion.ts';
import { shapley } from '../explain/shapley.ts';
import { shapleyColumns, type ColumnValues } from '../explain/column-shapley.ts';
import type { ExplainColumn } from '../../core/jobs/explain.ts';
import type { RunFeeds } from './run-feeds.ts';

/** What a segment or row group needs to be explained (the batch's explain settings and the background rows). */
export interface ExplainRows {
  input: string;
  output: string;
  features: number;
  /** occlusion: a text model's words (no background); else Shapley. */
  method?: 'shapley' | 'occlusion';
  /** Row-major [rows, features]. */
  background: Float32Array;
  /** A column-input model: one player per column, against these background values per column. */
  columns?: ExplainColumn[];
  columnBackground?: ColumnValues[];
  samples: number;
  seed: number;
  classIndex?: number;
  runRows: number;
  /** Most bytes of text one run's occlusion may feed the model (MODELQ_EXPLAIN_MAX_BYTES). */
  maxBytes?: number;
}

/** One run of given outputs on the thread's session. */
export type RunOutputs = (feeds: Record<string, RawTensor>, outputs?: string[]) => Promise<Record<string, RawTensor>>;

/** `run`, followed by the attributions of the rows it scored; rows are seeded by their number in the file. */
export function explainingRun(run: RunFeeds, runOutputs: RunOutputs, e: ExplainRows): RunFeeds {
  if (e.method === 'occlusion') return occludingRun(run, runOutputs, e);
  if (e.columns) return columnRun(run, runOutputs, e, e.columns);
  return async (feeds, refs) => {
    const result = await run(feeds, refs);
    const t = feeds[e.input];
    if (!t || t.type !== 'float32' || t.dims.length !== 2 || t.dims[1] !== e.features) {
      throw new AppError('bad_request', `input "${e.input}" must be FP32 [rows, ${e.features}] to be explained`);
    }
    const rows = t.dims[0]!;
    let r;
    try {
      r = await shapley(
        {
          x: t.data as Float32Array,
          rows,
          features: e.features,
          background: e.background,
          samples: e.samples,
          seed: e.seed,
          ...(e.classIndex !== undefined ? { classIndex: e.classIndex } : {}),
          runRows: e.runRows,
          ...(refs ? { rowKeys: refs.map((x) => x.n) } : {}),
        },
        async (batch, n) => {
          const out = (await runOutputs({ [e.input]: { type: 'float32', dims: [n, e.features], data: batch } }, [e.output]))[e.output];
          if (!out || out.type !== 'float32') throw new AppError('bad_request', `output "${e.output}" is not FP32`);
          return { scores: out.data as Float32Array, classes: out.dims.length > 1 ? out.dims.slice(1).reduce((a, b) => a * b, 1) : 1 };
        },
      );
    } catch (err) {
      if (err instanceof RangeError) throw new AppError('bad_request', err.message);
      throw err;
    }
    return {
      ...result,
      attributions: { type: 'float32', dims: [rows, e.features], data: r.attributions },
      explain_base: { type: 'float32', dims: [rows], data: Float32Array.from(r.base) },
      explain_class: { type: 'int32', dims: [rows], data: Int32Array.from(r.classes) },
    };
  };
}

/** A column-input model's rows: `run`, then Shapley values with one player per column (attributions in column order). */
function columnRun(run: RunFeeds, runOutputs: RunOutputs, e: ExplainRows, columns: ExplainColumn[]): RunFeeds {
  return async (feeds, refs) => {
    const result = await run(feeds, refs);
    const x: ColumnValues[] = [];
    let rows = 0;
    for (const c of columns) {
      const t = feeds[c.name];
      if (!t) throw new AppError('bad_request', `explanation needs input "${c.name}"`);
      rows = t.dims[0]!;
      if (c.kind === 'number' && t.type === 'float32') x.push(t.data as Float32Array);
      else if (c.kind === 'string' && t.type === 'string' && Array.isArray(t.data)) x.push(t.data.map(String));
      else throw new AppError('bad_request', `input "${c.name}" must be ${c.kind === 'number' ? 'FP32' : 'BYTES'} to be explained`);
    }
    let r;
    try {
      r = await shapleyColumns(
        {
          columns,
          x,
          rows,
          background: e.columnBackground ?? [],
          samples: e.samples,
          seed: e.seed,
          ...(e.classIndex !== undefined ? { classIndex: e.classIndex } : {}),
          runRows: e.runRows,
          ...(refs ? { rowKeys: refs.map((k) => k.n) } : {}),
        },
        async (f) => {
          const out = (await runOutputs(f, [e.output]))[e.output];
          if (!out || out.type !== 'float32') throw new AppError('bad_request', `output "${e.output}" is not FP32`);
          return { scores: out.data as Float32Array, classes: out.dims.length > 1 ? out.dims.slice(1).reduce((a, b) => a * b, 1) : 1 };
        },
      );
    } catch (err) {
      if (err instanceof RangeError) throw new AppError('bad_request', err.message);
      throw err;
    }
    return {
      ...result,
      attributions: { type: 'float32', dims: [rows, columns.length], data: r.attributions },
      explain_base: { type: 'float32', dims: [rows], data: Float32Array.from(r.base) },
      explain_class: { type: 'int32', dims: [rows], data: Int32Array.from(r.classes) },
    };
  };
}

/**
 * A text model's rows: `run`, then each row's distinct words attributed by occlusion (as the online
 * answer, workers/explain/occlusion.ts); the result gains `explain_tokens` and `attributions`, padded
 * to the run's wordiest row but written per line with the row's own words only, plus `explain_base`
 * (the empty text's score) and `explain_class`.
 */
function occludingRun(run: RunFeeds, runOutputs: RunOutputs, e: ExplainRows): RunFeeds {
  return async (feeds, refs) => {
    const result = await run(feeds, refs);
    const t = feeds[e.input];
    if (!t || t.type !== 'string' || !Array.isArray(t.data) || (t.dims.length === 2 && t.dims[1] !== 1) || t.dims.length > 2) {
      throw new AppError('bad_request', `input "${e.input}" must be BYTES [rows] or [rows, 1] (text) to be explained by occlusion`);
    }
    const texts = t.data.map(String);
    const rows = texts.length;
    const shapeOf = (n: number) => (t.dims.length === 2 ? [n, 1] : [n]);
    let r;
    try {
      r = await occlusion(
        texts,
        async (batch) => {
          const out = (await runOutputs({ [e.input]: { type: 'string', dims: shapeOf(batch.length), data: batch } }, [e.output]))[e.output];
          if (!out || out.type !== 'float32') throw new AppError('bad_request', `output "${e.output}" is not FP32`);
          return { scores: out.data as Float32Array, classes: out.dims.length > 1 ? out.dims.slice(1).reduce((a, b) => a * b, 1) : 1 };
        },
        {
          ...(e.classIndex !== undefined ? { classIndex: e.classIndex } : {}),
          runRows: e.runRows,
          ...(e.maxBytes !== undefined ? { maxBytes: e.maxBytes } : {}),
        },
      );
    } catch (err) {
      if (err instanceof RangeError) throw new AppError('bad_request', err.message);
      throw err;
    }
    const width = Math.max(0, ...r.map((x) => x.tokens.length));
    const lengths = Int32Array.from(r, (x) => x.tokens.length);
    const tokens: string[] = [];
    const attributions = new Float32Array(rows * width);
    r.forEach((x, n) => {
      for (let k = 0; k < width; k++) tokens.push(x.tokens[k] ?? '');
      attributions.set(x.attributions, n * width);
    });
    const explainTokens: RowLengths = { type: 'string', dims: [rows, width], data: tokens, rowLengths: lengths };
    const attr: RowLengths = { type: 'float32', dims: [rows, width], data: attributions, rowLengths: lengths };
    return {
      ...result,
      explain_tokens: explainTokens,
      attributions: attr,
      explain_base: { type: 'float32', dims: [rows], data: Float32Array.from(r, (x) => x.base) },
      explain_class: { type: 'int32', dims: [rows], data: Int32Array.from(r, (x) => x.class) },
    };
  };
}
