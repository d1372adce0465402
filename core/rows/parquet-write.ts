// Column chunks of batch output written straight from typed arrays: PLAIN values, data pages v2,
// uncompressed, no statistics, the same bytes a reader gets from hyparquet-writer's writeColumn
// with PLAIN_COLUMN (output-encode.ts) but without its per-value work (levels as arrays of
// numbers, values through a DataView one at a time, INT64 as bigints): a list's levels are RLE runs
// written per row, its values one copy of the run's Float32Array. A segment of a 10-class output
// with numeric ids, encoded whole (OutputEncoder.finish): 2.0 ms CPU per 1,000 rows through
// writeColumn, 0.9 ms this way (most of what is left: the id column written both ways).
// Covered: INT64 (required: the row numbers), FLOAT/DOUBLE (an optional scalar or an optional list
// of required elements, every row present), and optional scalar DOUBLE or UTF8 (the ids, nulls
// allowed). The caller keeps writeColumn for anything else.
import { ByteWriter } from 'hyparquet-writer';
import { writePageHeader } from 'hyparquet-writer/src/datapage.js';
import type { writeColumn } from 'hyparquet-writer/src/column.js';

type ColumnChunk = ReturnType<typeof writeColumn>['chunk'];

/** Bytes of values per page (hyparquet-writer's PLAIN_COLUMN pageSize): pages split at row boundaries. */
const PAGE_BYTES = 1 << 20;
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export type NumberType = 'INT64' | 'FLOAT' | 'DOUBLE';

/** An unsigned LEB128 varint. */
function varint(w: ByteWriter, v: number) {
  while (v >= 0x80) {
    w.appendUint8((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  w.appendUint8(v);
}

/** An RLE run of `count` copies of `value` (one byte: levels here are at most 2). */
function run(w: ByteWriter, value: number, count: number) {
  if (count <= 0) return;
  varint(w, count * 2);
  w.appendUint8(value);
}

/** The levels of `rows` rows, run-length encoded: def per row (scalars) or a list of `per` present values per row. */
function levels(w: ByteWriter, rows: number, per: number, list: boolean, present: Uint8Array | null, maxDef: number): { rep: number; def: number } {
  const start = w.offset;
  if (list) {
    // Repetition: each row's first value 0, the rest 1.
    if (per === 1) run(w, 0, rows);
    else
      for (let r = 0; r < rows; r++) {
        run(w, 0, 1);
        run(w, 1, per - 1);
      }
  }
  const rep = w.offset - start;
  if (maxDef) {
    if (!present) run(w, maxDef, rows * per);
    else
      for (let r = 0; r < rows;) {
        const v = present[r]!;
        let e = r + 1;
        while (e < rows && present[e] === v) e++;
        run(w, v ? maxDef : 0, e - r);
        r = e;
      }
  }
  return { rep, def: w.offset - start - rep };
}

function page(w: ByteWriter, body: ByteWriter, lv: { rep: number; def: number }, entries: number, nulls: number, rows: number): number {
  const headerStart = w.offset;
  writePageHeader(w, {
    type: 'DATA_PAGE_V2',
    uncompressed_page_size: body.offset,
    compressed_page_size: body.offset,
    data_page_header_v2: {
      num_values: entries,
      num_nulls: nulls,
      num_rows: rows,
      encoding: 'PLAIN',
      definition_levels_byte_length: lv.def,
      repetition_levels_byte_length: lv.rep,
      is_compressed: false,
    },
  });
  w.appendBytes(body.getBytes());
  return w.offset - headerStart;
}

function chunk(w: ByteWriter, path: string[], type: NumberType | 'BYTE_ARRAY', values: number, start: number, size: number): ColumnChunk {
  return {
    meta_data: {
      type,
      encodings: ['PLAIN'],
      path_in_schema: path,
      codec: 'UNCOMPRESSED',
      num_values: BigInt(values),
      total_compressed_size: BigInt(w.offset - start),
      total_uncompressed_size: BigInt(size),
      data_page_offset: BigInt(start),
    },
    file_offset: BigInt(start),
  };
}

/** Whether this platform's typed arrays are little-endian, as Parquet's PLAIN values are (else the caller uses writeColumn). */
export const canWriteFast = LE;

/**
 * A column of numbers, every row present: `per` values a row from `values` (a list column when
 * `list`; a scalar column otherwise, per = 1). INT64 values are safe integers. `maxDef`: 0 for a
 * required column, 1 for an optional scalar, 2 for an optional list of required elements.
 */
export function writeNumbers(
  w: ByteWriter,
  col: { path: string[]; type: NumberType; list: boolean; maxDef: number },
  values: Float32Array | Float64Array | ArrayLike<number>,
  rows: number,
  per: number,
): ColumnChunk {
  const start = w.offset;
  const width = col.type === 'FLOAT' ? 4 : 8;
  const pageRows = Math.max(1, Math.floor(PAGE_BYTES / Math.max(1, per * width)));
  let size = 0;
  for (let r0 = 0; r0 < rows; r0 += pageRows) {
    const n = Math.min(pageRows, rows - r0);
    const body = new ByteWriter();
    const lv = levels(body, n, per, col.list, null, col.maxDef);
    const from = r0 * per;
    const count = n * per;
    body.ensure(count * width);
    const at = body.index;
    if (col.type === 'INT64') {
      const view = body.view;
      for (let i = 0; i < count; i++) {
        const v = values[from + i]!;
        const hi = Math.floor(v / 4294967296);
        view.setUint32(at + 8 * i, v - hi * 4294967296, true);
        view.setInt32(at + 8 * i + 4, hi, true);
      }
    } else {
      const Ctor = col.type === 'FLOAT' ? Float32Array : Float64Array;
      const dst = new Uint8Array(body.buffer, at, count * width);
      let src: Float32Array | Float64Array;
      if (values instanceof Ctor) src = values.subarray(from, from + count);
      else {
        src = new Ctor(count);
        for (let i = 0; i < count; i++) src[i] = Number(values[from + i]);
      }
      dst.set(new Uint8Array(src.buffer, src.byteOffset, count * width));
    }
    body.offset += count * width;
    body.index += count * width;
    size += page(w, body, lv, count, 0, n);
  }
  return chunk(w, col.path, col.type, rows * per, start, size);
}

/** An optional scalar column with nulls: DOUBLE numbers or UTF8 strings. */
export function writeOptional(
  w: ByteWriter,
  col: { path: string[]; type: 'DOUBLE' | 'BYTE_ARRAY' },
  values: (number | null)[] | (string | null)[],
): ColumnChunk {
  const start = w.offset;
  const rows = values.length;
  const present = Uint8Array.from(values as unknown[], (v) => (v === null ? 0 : 1));
  const text = col.type === 'BYTE_ARRAY' ? (values as (string | null)[]).map((v) => (v === null ? null : Buffer.from(v, 'utf8'))) : null;
  let size = 0;
  for (let r0 = 0; r0 < rows;) {
    // Rows up to about PAGE_BYTES of values.
    let r1 = r0;
    let bytes = 0;
    while (r1 < rows && (r1 === r0 || bytes < PAGE_BYTES)) {
      bytes += text ? 4 + (text[r1]?.length ?? 0) : 8;
      r1++;
    }
    const body = new ByteWriter();
    const lv = levels(body, r1 - r0, 1, false, present.subarray(r0, r1), 1);
    let nulls = 0;
    for (let r = r0; r < r1; r++) {
      if (!present[r]) {
        nulls++;
        continue;
      }
      if (text) {
        const b = text[r]!;
        body.appendUint32(b.length);
        body.appendBytes(b);
      } else body.appendFloat64(values[r] as number);
    }
    size += page(w, body, lv, r1 - r0, nulls, r1 - r0);
    r0 = r1;
  }
  return chunk(w, col.path, col.type, rows, start, size);
}
