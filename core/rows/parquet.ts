// Parquet batch files (hyparquet): which columns feed which model inputs, row groups as chunks
// (byte ranges read on their own), and decoding one row group's columns from its bytes alone.
// A file fits a model when it has a column per input, named as the input (a list column for an
// input with dimensions beyond the batch one; a string column for a BYTES input), or, for a model
// with one 2-D input, numeric scalar columns in order (as CSV). An `id` column is echoed. An input of
// one value per row takes a scalar column; a column-input model's nulls are missing values (columns.ts).
import { parquetMetadata, parquetRead, parquetSchema, type AsyncBuffer, type FileMetaData, type SchemaTree } from 'hyparquet';
// hyparquet reads snappy and uncompressed pages itself; this adds gzip, brotli, zstd and lz4
// (polars and Spark write zstd, pandas/pyarrow snappy).
import { compressors } from 'hyparquet-compressors';
import type { TensorSpec } from '../tensors.ts';
import { oneValuePerRow } from './columns.ts';
import { checkRowGroupPages } from './parquet-check.ts';
import { ParquetShapeError } from './parquet-errors.ts';
import { checkMetadata } from './parquet-meta-check.ts';
import { parquetLimits, type ParquetLimits } from './parquet-limits.ts';
import type { ChunkRange } from './scanner.ts';

export { ParquetShapeError };

export interface ParquetPlan {
  /** lists: one column per input, named as it; scalars: the single 2-D input from these scalar columns. */
  mode: 'lists' | 'scalars';
  columns: string[];
  id?: string;
}

const NUMERIC = new Set(['FLOAT', 'DOUBLE', 'INT32', 'INT64', 'BOOLEAN']);
const TRAILER = 8; // footer length (4 bytes) + "PAR1"

interface Column {
  name: string;
  list: boolean;
  leaf: string;
}

function describe(t: SchemaTree): Column {
  let node = t;
  let list = false;
  while (node.children.length) {
    if (node.element.converted_type === 'LIST' || node.element.logical_type?.type === 'LIST' || node.element.repetition_type === 'REPEATED') list = true;
    if (node.children.length !== 1) return { name: t.element.name, list, leaf: 'STRUCT' };
    node = node.children[0]!;
  }
  if (node.element.repetition_type === 'REPEATED') list = true;
  const leaf = node.element.converted_type === 'UTF8' || node.element.logical_type?.type === 'STRING' ? 'STRING' : String(node.element.type);
  return { name: t.element.name, list, leaf };
}

/** Decides how the file's columns feed `inputs`, or throws ParquetShapeError naming the problem. */
export function planParquet(meta: FileMetaData, inputs: TensorSpec[]): ParquetPlan {
  const cols = parquetSchema(meta).children.map(describe);
  const byName = new Map(cols.map((c) => [c.name, c]));
  const id = byName.has('id') ? 'id' : undefined;
  const numericInput = (s: TensorSpec) => s.datatype !== 'BYTES';
  if (inputs.every((s) => byName.has(s.name))) {
    for (const s of inputs) {
      const c = byName.get(s.name)!;
      if (!numericInput(s)) {
        // Strings (a text model's input): a string column, scalar for one string per row ([N] or [N, 1]).
        if (c.leaf !== 'STRING' && c.leaf !== 'BYTE_ARRAY')
          throw new ParquetShapeError(`column "${c.name}" holds ${c.leaf} values; the model's input "${s.name}" takes strings (BYTES)`);
        if (s.shape.slice(1).some((d) => d < 0))
          throw new ParquetShapeError(
            `input "${s.name}" [${s.shape.join(',')}] leaves a dimension open; Parquet batches take inputs of fixed size (use JSONL)`,
          );
        if (!c.list && !s.shape.slice(1).every((d) => d === 1))
          throw new ParquetShapeError(`column "${c.name}" is a scalar column; the model's input "${s.name}" [${s.shape.join(',')}] needs a list column`);
        continue;
      }
      if (!NUMERIC.has(c.leaf))
        throw new ParquetShapeError(`column "${c.name}" holds ${c.leaf} values; the model's input "${s.name}" takes ${s.datatype} numbers`);
      if (s.shape.slice(1).some((d) => d < 0))
        throw new ParquetShapeError(`input "${s.name}" [${s.shape.join(',')}] leaves a dimension open; Parquet batches take inputs of fixed size (use JSONL)`);
      if (s.shape.length > 1 && !c.list && !oneValuePerRow(s))
        throw new ParquetShapeError(
          `column "${c.name}" is a scalar column; the model's input "${s.name}" [${s.shape.join(',')}] needs a list column (values without the batch dimension)`,
        );
    }
    return { mode: 'lists', columns: inputs.map((s) => s.name), ...(id ? { id } : {}) };
  }
  const absent = inputs.filter((s) => !byName.has(s.name));
  const missing = absent[0]!;
  if (inputs.length !== 1 || inputs[0]!.shape.length !== 2 || !numericInput(inputs[0]!)) {
    throw new ParquetShapeError(
      `the Parquet file has no column ${absent.map((s) => `"${s.name}"`).join(', ')} (the model's input${absent.length > 1 ? 's' : ''}); its columns: ${cols
        .map((c) => c.name)
        .join(', ')
        .slice(0, 300)}`,
    );
  }
  const features = cols.filter((c) => c.name !== 'id');
  const bad = features.find((c) => c.list || !NUMERIC.has(c.leaf));
  if (bad)
    throw new ParquetShapeError(
      `column "${bad.name}" is ${bad.list ? 'a list' : bad.leaf}; without a column "${missing.name}", every column but id must be a number (one per feature)`,
    );
  const want = inputs[0]!.shape[1]!;
  if (want >= 0 && features.length !== want)
    throw new ParquetShapeError(`the Parquet file has ${features.length} feature columns, the model's input "${missing.name}" takes ${want}`);
  return { mode: 'scalars', columns: features.map((c) => c.name), ...(id ? { id } : {}) };
}

/** The file's columns that feed no input (a target, notes), `id` aside. */
export function parquetIgnoredColumns(meta: FileMetaData, plan: ParquetPlan): string[] {
  const used = new Set([...plan.columns, ...(plan.id ? [plan.id] : [])]);
  return parquetSchema(meta)
    .children.map((t) => t.element.name)
    .filter((n) => !used.has(n));
}

/**
 * Each row group as a chunk: its byte range (every column chunk in it) and its rows. With `bounds`,
 * the ranges must lie between the magic and the footer of a file of `fileBytes` with a footer of
 * `footerBytes`, and no group may have more than `groupRows` rows.
 */
export function rowGroupChunks(meta: FileMetaData, bounds?: { fileBytes: number; footerBytes: number; groupRows: number }): ChunkRange[] {
  let firstRow = 0;
  return meta.row_groups
    .map((g, index) => {
      let start = Infinity;
      let end = 0;
      for (const c of g.columns) {
        const m = c.meta_data;
        if (!m) throw new ParquetShapeError(`row group ${index} has a column without metadata`);
        // A dictionary_page_offset of 0 means none (some writers set it so; offset 0 is the magic "PAR1").
        const from = Math.min(Number(m.dictionary_page_offset || m.data_page_offset), Number(m.data_page_offset));
        const size = Number(m.total_compressed_size);
        if (!Number.isSafeInteger(from) || !Number.isSafeInteger(size) || from < 4 || size < 0)
          throw new ParquetShapeError(`row group ${index}: column ${m.path_in_schema.join('.')} has offset ${from} and size ${size}`);
        start = Math.min(start, from);
        end = Math.max(end, from + size);
      }
      const rows = Number(g.num_rows);
      if (!Number.isSafeInteger(rows) || rows < 0) throw new ParquetShapeError(`row group ${index} declares num_rows=${g.num_rows}`);
      if (bounds && rows > bounds.groupRows)
        throw new ParquetShapeError(`row group ${index} declares ${rows} rows; the limit is MODELQ_PARQUET_MAX_GROUP_ROWS (${bounds.groupRows})`);
      if (bounds && rows > 0 && end > bounds.fileBytes - bounds.footerBytes)
        throw new ParquetShapeError(`row group ${index} ends at byte ${end}, past where the footer starts (${bounds.fileBytes - bounds.footerBytes})`);
      const chunk = { index, start, end, firstRow, rows };
      firstRow += rows;
      return chunk;
    })
    .filter((c) => c.rows > 0);
}

/** The footer (metadata and trailer) of a file of `size` bytes, read through `read`; refused past `maxBytes`. */
export async function readFooter(
  read: (start: number, end: number) => Promise<Uint8Array>,
  size: number,
  maxBytes = parquetLimits().footerBytes,
): Promise<Uint8Array> {
  if (size < 12) throw new ParquetShapeError('not a Parquet file: too short');
  const tail = await read(size - TRAILER, size);
  if (tail.length !== TRAILER || Buffer.from(tail.subarray(4)).toString('latin1') !== 'PAR1')
    throw new ParquetShapeError('not a Parquet file: it does not end with "PAR1"');
  const len = new DataView(tail.buffer, tail.byteOffset, 8).getUint32(0, true);
  if (len + TRAILER + 4 > size) throw new ParquetShapeError('not a Parquet file: its footer length is past its start');
  if (len > maxBytes) throw new ParquetShapeError(`the Parquet footer is ${len} bytes; the limit is MODELQ_PARQUET_MAX_FOOTER_BYTES (${maxBytes})`);
  return read(size - TRAILER - len, size);
}

/** The parsed footer, its shape checked (parquet-meta-check.ts), so the readers can walk it. */
export function metadataOf(footer: Uint8Array): FileMetaData {
  let meta: FileMetaData;
  try {
    // Without GeoParquet marking: it skips `num_children` elements ahead, and a -1 there loops forever (hyparquet 1.x).
    meta = parquetMetadata(footer, { geoparquet: false });
  } catch (e) {
    throw new ParquetShapeError(`not a Parquet file: ${(e as Error).message}`);
  }
  checkMetadata(meta);
  return meta;
}

export interface RowGroupBytes {
  footer: Uint8Array;
  /** The row group's bytes and where they start in the file. */
  bytes: Uint8Array;
  start: number;
  fileBytes: number;
}

/** The index of the row group that starts at row `firstRow` with `rows` rows. */
export function groupAt(meta: FileMetaData, firstRow: number, rows: number): number {
  let first = 0;
  for (let i = 0; i < meta.row_groups.length; i++) {
    const n = Number(meta.row_groups[i]!.num_rows);
    if (first === firstRow && n === rows) return i;
    first += n;
  }
  throw new ParquetShapeError(`the file has no row group of ${rows} rows from row ${firstRow}`);
}

/** The file as hyparquet reads it, from one row group's bytes and the footer: reads elsewhere throw. */
export function rowGroupFile(g: RowGroupBytes): AsyncBuffer {
  const footerAt = g.fileBytes - g.footer.length;
  return {
    byteLength: g.fileBytes,
    slice(s: number, e = g.fileBytes) {
      const from = (u: Uint8Array, at: number) => u.buffer.slice(u.byteOffset + s - at, u.byteOffset + e - at) as ArrayBuffer;
      if (s >= g.start && e <= g.start + g.bytes.length) return from(g.bytes, g.start);
      if (s >= footerAt) return from(g.footer, footerAt);
      throw new Error(`read of bytes ${s}-${e} outside the row group`);
    },
  };
}

/**
 * Decoded `columns` of one row group: name -> one value per row (a number, bigint, array or null).
 * Its pages are checked first (parquet-check.ts); what hyparquet still refuses is a ParquetShapeError.
 */
export async function decodeRowGroup(
  g: RowGroupBytes,
  columns: string[],
  firstRow: number,
  rows: number,
  limits: ParquetLimits = parquetLimits(),
): Promise<Map<string, ArrayLike<unknown>>> {
  const metadata = metadataOf(g.footer);
  checkRowGroupPages(metadata, groupAt(metadata, firstRow, rows), columns, g.bytes, g.start, compressors, limits);
  const file = rowGroupFile(g);
  const pieces = new Map<string, { at: number; data: ArrayLike<unknown> }[]>();
  try {
    await parquetRead({
      file,
      metadata,
      rowStart: firstRow,
      rowEnd: firstRow + rows,
      columns,
      compressors,
      onChunk: (c) => {
        let list = pieces.get(c.columnName);
        if (!list) pieces.set(c.columnName, (list = []));
        list.push({ at: c.rowStart - firstRow, data: c.columnData as ArrayLike<unknown> });
      },
    });
  } catch (e) {
    // hyparquet's errors on bad bytes are RangeErrors from a DataView, or its own: either way the file is wrong.
    throw new ParquetShapeError(`the row group from row ${firstRow} cannot be read: ${(e as Error).message}`);
  }
  const out = new Map<string, ArrayLike<unknown>>();
  for (const name of columns) {
    const list = pieces.get(name) ?? [];
    if (list.length === 1 && list[0]!.at === 0 && list[0]!.data.length >= rows) {
      out.set(name, list[0]!.data);
      continue;
    }
    const all = new Array<unknown>(rows).fill(null);
    for (const p of list) for (let i = 0; i < p.data.length; i++) if (p.at + i >= 0 && p.at + i < rows) all[p.at + i] = p.data[i];
    out.set(name, all);
  }
  return out;
}
