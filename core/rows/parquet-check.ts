// Checks a row group's pages before hyparquet decodes them (the path for columns the fast decoder
// does not read). hyparquet sizes its arrays from the headers (`new Array(num_values)`) and extends
// them by whatever run length the levels claim, so a 200-byte page can ask for gigabytes: every
// header, level run and dictionary index is checked here first, with the fast decoder's rules.
import { parquetSchema, type FileMetaData, type SchemaTree } from 'hyparquet';
import type { Compressors } from 'hyparquet-compressors';
import { checkPage, decompressPage } from './parquet-column.ts';
import { ParquetShapeError } from './parquet-errors.ts';
import type { ParquetLimits } from './parquet-limits.ts';
import { bitWidth, readHybrid } from './parquet-rle.ts';
import { readPageHeader, type PageHeader } from './parquet-thrift.ts';

const DICTIONARY = new Set([2, 8]); // PLAIN_DICTIONARY, RLE_DICTIONARY
const WIDTH: Record<string, number> = { INT32: 4, FLOAT: 4, INT64: 8, DOUBLE: 8, INT96: 12 };

interface Leaf {
  maxDef: number;
  maxRep: number;
  type: string;
}

/** The levels of the leaf at `path` (names below the root). */
function leafOf(root: SchemaTree, path: string[]): Leaf {
  let node = root;
  let maxDef = 0;
  let maxRep = 0;
  for (const name of path) {
    const next = node.children.find((c) => c.element.name === name);
    if (!next) throw new ParquetShapeError(`a column chunk's path ${path.join('.')} is not in the schema`);
    node = next;
    if (node.element.repetition_type === 'REPEATED') maxRep++;
    if (node.element.repetition_type !== 'REQUIRED') maxDef++;
  }
  return { maxDef, maxRep, type: node.element.type ?? '' };
}

/**
 * Checks the pages of every column chunk of row group `index` under the top-level `columns`, in
 * `bytes` (which start at file offset `start`); throws a ParquetShapeError naming the first problem.
 */
export function checkRowGroupPages(
  meta: FileMetaData,
  index: number,
  columns: string[],
  bytes: Uint8Array,
  start: number,
  compressors: Compressors,
  limits: ParquetLimits,
): void {
  const group = meta.row_groups[index];
  if (!group) throw new ParquetShapeError(`the file has no row group ${index}`);
  const rows = Number(group.num_rows);
  if (!(rows >= 0 && rows <= limits.groupRows))
    throw new ParquetShapeError(`row group ${index} declares ${rows} rows; the limit is MODELQ_PARQUET_MAX_GROUP_ROWS (${limits.groupRows})`);
  const root = parquetSchema(meta);
  const wanted = new Set(columns);
  for (const chunk of group.columns) {
    const m = chunk.meta_data;
    if (!m || !wanted.has(m.path_in_schema[0] ?? '')) continue;
    const leaf = leafOf(root, m.path_in_schema);
    const from = Number(m.dictionary_page_offset || m.data_page_offset) - start;
    const to = from + Number(m.total_compressed_size);
    if (!(from >= 0 && to <= bytes.length && from <= to))
      throw new ParquetShapeError(`column ${m.path_in_schema.join('.')} of row group ${index} lies outside the row group's bytes`);
    checkChunk(bytes, from, to, leaf, m.codec, rows, compressors, limits, m.path_in_schema.join('.'));
  }
}

function checkChunk(
  u: Uint8Array,
  pos: number,
  end: number,
  leaf: Leaf,
  codec: string,
  rows: number,
  compressors: Compressors,
  limits: ParquetLimits,
  name: string,
) {
  let dictSize = -1;
  let seen = 0;
  let rowsSeen = 0;
  try {
    while (pos < end) {
      const { header: h, end: body } = readPageHeader(u, pos, end);
      checkPage(h, body, end, limits);
      const raw = u.subarray(body, body + h.compressed);
      pos = body + h.compressed;
      if (h.type === 2) {
        const width = WIDTH[leaf.type] ?? 4; // a BYTE_ARRAY value has a 4-byte length at least
        if (h.numValues * width > h.uncompressed) throw new ParquetShapeError(`a dictionary page declares ${h.numValues} values in ${h.uncompressed} bytes`);
        dictSize = h.numValues;
      } else if (h.type === 0 || h.type === 3) {
        seen += h.numValues;
        if (!leaf.maxRep && seen > rows) throw new ParquetShapeError(`a data page brings the column's values to ${seen}; its row group has ${rows} rows`);
        rowsSeen += checkDataPage(h, raw, leaf, codec, compressors, dictSize);
      }
    }
    // hyparquet sizes its output from the row group's num_rows: pages must hold exactly that many rows.
    if (rowsSeen !== rows) throw new ParquetShapeError(`its pages hold ${rowsSeen} rows; the row group declares ${rows}`);
  } catch (e) {
    // Whatever stops the check (a codec's own error included) stops hyparquet too: the file is wrong.
    throw new ParquetShapeError(`column ${name}: ${(e as Error).message}`);
  }
}

/** Checks one data page; returns the rows it starts (its entries with repetition level 0). */
function checkDataPage(h: PageHeader, raw: Uint8Array, leaf: Leaf, codec: string, compressors: Compressors, dictSize: number): number {
  const n = h.numValues;
  let present = n;
  let starts = n;
  let data: Uint8Array;
  let at = 0;
  const levels = (from: Uint8Array, s: number, e: number, max: number, count: boolean) => {
    const out = new Uint8Array(n);
    readHybrid(from, s, e, bitWidth(max), n, out);
    if (count) present = out.reduce((k, d) => k + (d === max ? 1 : 0), 0);
    else starts = out.reduce((k, d) => k + (d === 0 ? 1 : 0), 0);
  };
  if (h.type === 0) {
    data = decompressPage(codec, compressors, raw, h.uncompressed);
    for (const [max, isDef] of [
      [leaf.maxRep, false],
      [leaf.maxDef, true],
    ] as const) {
      if (!max) continue;
      if (at + 4 > data.length) throw new ParquetShapeError('a data page ends before its levels');
      const len = new DataView(data.buffer, data.byteOffset + at, 4).getUint32(0, true);
      if (len > data.length - at - 4) throw new ParquetShapeError(`a data page's levels (${len} bytes) run past its ${data.length} bytes`);
      levels(data, at + 4, at + 4 + len, max, isDef);
      at += 4 + len;
    }
  } else {
    if (leaf.maxRep) levels(raw, 0, h.repBytes, leaf.maxRep, false);
    if (leaf.maxDef) levels(raw, h.repBytes, h.repBytes + h.defBytes, leaf.maxDef, true);
    const rest = raw.subarray(h.repBytes + h.defBytes);
    const size = h.uncompressed - h.repBytes - h.defBytes;
    if (size < 0) throw new ParquetShapeError('a data page v2 whose level lengths are past its uncompressed size');
    data = h.compressedValues && size > 0 ? decompressPage(codec, compressors, rest, size) : rest;
  }
  if (!DICTIONARY.has(h.encoding) || present === 0) return starts;
  if (dictSize < 0) throw new ParquetShapeError('a dictionary-encoded page without a dictionary');
  if (at >= data.length) throw new ParquetShapeError('a dictionary-encoded page without its bit width');
  const idx = new Uint32Array(present);
  readHybrid(data, at + 1, data.length, data[at]!, present, idx);
  for (const i of idx) if (i >= dictSize) throw new ParquetShapeError(`dictionary index ${i} past its ${dictSize} values`);
  return starts;
}
