// The fast path of Parquet batch rows: a row group's input columns decoded by parquet-column.ts
// straight into the run's typed arrays, a run at a time, page by page (so a row group is never
// decoded whole). Used when every input column is a plain numeric scalar or single-level list and
// every input is a non-64-bit-integer tensor; otherwise, or when a page holds something the decoder
// does not read (a FastDecodeError), the row group goes through hyparquet (parquet.ts) instead,
// with identical results. MODELQ_FAST_ROWS=0 turns it off, to re-measure (the worker's config
// reaches the engine threads, which pass it to scoreRowGroup); the profile that justified it:
// `npm run bench parquet-decode`.
import { parquetSchema, type FileMetaData, type SchemaTree } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { TensorSpec } from '../../core/tensors.ts';
import { isColumnInput, isFloat } from '../../core/rows/columns.ts';
import { ColumnCursor, type ColumnLayout, type Physical, type Target } from '../../core/rows/parquet-column.ts';
import { ParquetShapeError } from '../../core/rows/parquet-errors.ts';
import { parquetLimits, type ParquetLimits } from '../../core/rows/parquet-limits.ts';
import type { ParquetPlan } from '../../core/rows/parquet.ts';

/** A page the fast decoder could not read: the caller reads the row group with hyparquet. */
export class FastDecodeError extends Error {}

const PHYSICAL = new Set(['FLOAT', 'DOUBLE', 'INT32', 'INT64']);
const PLAIN_INTS = new Set(['INT_8', 'INT_16', 'INT_32', 'INT_64']);
const ENCODINGS = new Set(['PLAIN', 'PLAIN_DICTIONARY', 'RLE_DICTIONARY', 'RLE']);

const isList = (e: SchemaTree['element']) => e.converted_type === 'LIST' || e.logical_type?.type === 'LIST';

/** The column's levels, when it is a top-level number or a standard list of numbers that hyparquet reads as plain numbers. */
function levelsOf(top: SchemaTree): (Omit<ColumnLayout, 'codec' | 'start' | 'end' | 'rows'> & { path: string }) | null {
  const chain = [top];
  while (chain.at(-1)!.children.length === 1) chain.push(chain.at(-1)!.children[0]!);
  const leaf = chain.at(-1)!;
  const e = leaf.element;
  if (leaf.children.length || !PHYSICAL.has(e.type ?? '')) return null;
  if (e.converted_type && !PLAIN_INTS.has(e.converted_type)) return null;
  if (e.logical_type && !(e.logical_type.type === 'INTEGER' && e.logical_type.isSigned)) return null;
  const reps = chain.map((n) => n.element.repetition_type === 'REPEATED');
  const maxRep = reps.filter(Boolean).length;
  const maxDef = chain.filter((n) => n.element.repetition_type !== 'REQUIRED').length;
  const at = reps.indexOf(true);
  // Shapes: a number; `repeated number`; list (LIST) { repeated number }; list (LIST) { repeated group { number } }.
  const shape =
    maxRep === 0
      ? chain.length === 1
      : maxRep === 1 && (chain.length === 1 || (isList(top.element) && at === 1 && (chain.length === 2 || (chain.length === 3 && !reps[2]))));
  if (!shape) return null;
  const listDef = chain.slice(0, Math.max(0, at)).filter((n) => n.element.repetition_type !== 'REQUIRED').length;
  return { type: e.type as Physical, maxDef, maxRep, listDef, path: chain.map((n) => n.element.name).join('.') };
}

/** The file's top-level columns by name, once per parsed footer. */
const topsOf = new WeakMap<FileMetaData, Map<string, SchemaTree>>();

/** A cursor over column `name` of the row group, when this decoder reads it. */
function cursorOf(meta: FileMetaData, name: string, g: RowGroupSource, limits: ParquetLimits): { cursor: ColumnCursor; list: boolean; type: Physical } | null {
  let first = 0;
  const group = meta.row_groups.find((rg) => (first += Number(rg.num_rows)) - Number(rg.num_rows) === g.firstRow && Number(rg.num_rows) === g.rows);
  if (!group) return null;
  let tops = topsOf.get(meta);
  if (!tops) topsOf.set(meta, (tops = new Map(parquetSchema(meta).children.map((t) => [t.element.name, t]))));
  const top = tops.get(name);
  const levels = top && levelsOf(top);
  const chunk = levels && group.columns.find((c) => c.meta_data?.path_in_schema.join('.') === levels.path)?.meta_data;
  if (!levels || !chunk) return null;
  if (!chunk.encodings.every((e) => ENCODINGS.has(e)) || (chunk.codec !== 'UNCOMPRESSED' && !compressors[chunk.codec])) return null;
  const start = Number(chunk.dictionary_page_offset || chunk.data_page_offset) - g.start;
  const end = start + Number(chunk.total_compressed_size);
  if (start < 0 || end > g.bytes.length) return null;
  return {
    list: levels.maxRep > 0,
    type: levels.type,
    cursor: new ColumnCursor(g.bytes, { ...levels, codec: chunk.codec, start, end, rows: g.rows }, compressors, limits),
  };
}

interface Column {
  name: string;
  cursor: ColumnCursor;
  list: boolean;
}

export interface RowGroupSource {
  bytes: Uint8Array;
  /** Where `bytes` starts in the file. */
  start: number;
  firstRow: number;
  rows: number;
}

/** Reads a row group's input columns run by run; null when a column or input is not for the fast path. */
export class FastRowGroup {
  private constructor(
    private readonly plan: ParquetPlan,
    private readonly inputs: TensorSpec[],
    private readonly pers: number[],
    private readonly columns: Column[],
    /** Per input: whether a null is a missing value, fed as NaN (a float input of a column-input model). */
    private readonly nanForNull: boolean[],
  ) {}

  static open(
    meta: FileMetaData,
    plan: ParquetPlan,
    inputs: TensorSpec[],
    pers: number[],
    g: RowGroupSource,
    limits: ParquetLimits = parquetLimits(),
  ): FastRowGroup | null {
    if (!inputs.every((s) => ['FP32', 'FP64', 'INT8', 'UINT8', 'INT16', 'UINT16', 'INT32', 'UINT32', 'BOOL'].includes(s.datatype))) return null;
    const columns: Column[] = [];
    for (const name of plan.columns) {
      const c = cursorOf(meta, name, g, limits);
      if (!c || (plan.mode === 'scalars' && c.list)) return null;
      columns.push({ name, ...c });
    }
    const columnInput = plan.mode === 'lists' && isColumnInput(inputs);
    return new FastRowGroup(
      plan,
      inputs,
      pers,
      columns,
      inputs.map((s) => columnInput && isFloat(s)),
    );
  }

  /**
   * The row group's values of a scalar numeric column (the ids), one a row (null for a null), as
   * hyparquet gives them; null when this decoder does not read the column, or an INT64 value is
   * past what a double holds exactly (hyparquet's bigint keeps its digits).
   */
  static ids(meta: FileMetaData, name: string, g: RowGroupSource, limits: ParquetLimits = parquetLimits()): (number | null)[] | null {
    const c = cursorOf(meta, name, g, limits);
    if (!c || c.list) return null;
    const values = new Float64Array(g.rows);
    const firstNull = new Int32Array(g.rows).fill(-1);
    try {
      c.cursor.take(g.rows, { target: values, stride: 1, offset: 0, firstNull, column: 0 });
    } catch (e) {
      if (e instanceof ParquetShapeError) throw e;
      return null;
    }
    const out = new Array<number | null>(g.rows);
    for (let r = 0; r < g.rows; r++) {
      const v = values[r]!;
      if (c.type === 'INT64' && !Number.isSafeInteger(v)) return null;
      out[r] = firstNull[r]! >= 0 ? null : v;
    }
    return out;
  }

  /** The next n rows into rows [0, n) of `arrays` (one per input); each row's problem, or null. */
  read(n: number, arrays: Target[]): (string | null)[] {
    const problems = new Array<string | null>(n).fill(null);
    const firstNull = new Int32Array(n);
    try {
      if (this.plan.mode === 'scalars') {
        firstNull.fill(-1);
        this.columns.forEach((c, k) => c.cursor.take(n, { target: arrays[0]!, stride: this.pers[0]!, offset: k, firstNull, column: k }));
        for (let r = 0; r < n; r++) if (firstNull[r]! >= 0) problems[r] = `column "${this.plan.columns[firstNull[r]!]}" is null`;
        return problems;
      }
      const count = new Int32Array(n);
      // Inputs in order, so a row's problem is the first input's, as the ordinary path reports it.
      for (let j = this.inputs.length - 1; j >= 0; j--) {
        const c = this.columns[j]!;
        count.fill(0);
        firstNull.fill(-1);
        c.cursor.take(n, { target: arrays[j]!, stride: this.pers[j]!, offset: 0, ...(c.list ? { count } : {}), firstNull, column: 0 });
        const nan = this.nanForNull[j]! && !c.list;
        for (let r = 0; r < n; r++) {
          if (nan && firstNull[r]! >= 0) {
            arrays[j]![r] = Number.NaN;
            continue;
          }
          const p = this.problem(j, c, count[r]!, firstNull[r]!);
          if (p) problems[r] = p;
        }
      }
      return problems;
    } catch (e) {
      // A file that is wrong is wrong on every path: no second try through hyparquet.
      if (e instanceof ParquetShapeError) throw e;
      throw new FastDecodeError(`column decode: ${(e as Error).message}`);
    }
  }

  private problem(j: number, c: Column, count: number, firstNull: number): string | null {
    const spec = this.inputs[j]!;
    if (!c.list) return firstNull >= 0 ? `column "${spec.name}" is null` : null;
    if (count < 0) return `column "${spec.name}" is null`;
    const per = this.pers[j]!;
    if (count !== per) return `column "${spec.name}" has ${count} values, the model's input "${spec.name}" [${spec.shape.join(',')}] takes ${per} per row`;
    return firstNull >= 0 ? `column "${spec.name}" has a null value at ${firstNull}` : null;
  }
}
