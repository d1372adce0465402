// The fast decoder of one numeric Parquet column chunk (a scalar column, or a list column with one
// level of repetition): page by page, values go straight into a run's typed array, a run's rows at
// a time, with no per-row JS values. hyparquet turns a list<float> column into one JS array per row
// (15-24 us a row of 256 floats), which made it the largest cost of scoring Parquet.
// Handles data pages v1 and v2, PLAIN and dictionary encodings of FLOAT, DOUBLE, INT32 and INT64,
// levels in the RLE/bit-packed hybrid, and the codecs of hyparquet-compressors. Anything else
// throws, and the caller reads the row group with hyparquet instead (parquet-fast.ts); a page whose
// sizes or counts are past its bytes or the limits throws a ParquetShapeError, which fails the chunk.
import type { Compressors } from 'hyparquet-compressors';
import { ParquetShapeError } from './parquet-errors.ts';
import type { ParquetLimits } from './parquet-limits.ts';
import { bitWidth, readHybrid } from './parquet-rle.ts';
import { readPageHeader, type PageHeader } from './parquet-thrift.ts';

export type Physical = 'FLOAT' | 'DOUBLE' | 'INT32' | 'INT64';
type Values = Float32Array | Float64Array | Int32Array;
/** A run's array of a numeric input (not a BigInt64Array). */
export type Target = Exclude<import('../tensors.ts').TypedArray, BigInt64Array | BigUint64Array>;

/** Where a column chunk lies, and the shape of its levels. */
export interface ColumnLayout {
  type: Physical;
  codec: string;
  /** Byte range of the column chunk in the row group's bytes. */
  start: number;
  end: number;
  maxDef: number;
  maxRep: number;
  /** A list column: definition levels below this are a null list; equal to it, an empty list; between it and maxDef, a null element. */
  listDef: number;
  /** Rows in the row group (a scalar column's pages hold one entry per row, so no more than this in all). */
  rows: number;
}

/** Where a take puts a run's rows: row r's values at target[r * stride + offset + k]. */
export interface Sink {
  target: Target;
  stride: number;
  offset: number;
  /** Lists: values per row (-1 when the list is null). Values past `stride` are counted, not written. */
  count?: Int32Array;
  /** Lists: position of the row's first null element; scalars: the first null column's `column` (-1: none). */
  firstNull: Int32Array;
  column: number;
}

const PLAIN = 0;
const PLAIN_DICTIONARY = 2;
const RLE = 3;
const RLE_DICTIONARY = 8;
const WIDTH: Record<Physical, number> = { FLOAT: 4, DOUBLE: 8, INT32: 4, INT64: 8 };

export class ColumnCursor {
  private pos: number;
  private dict: Values | null = null;
  // The current data page: its levels (null when the column has none), values, and positions in both.
  private rep: Uint8Array | null = null;
  /** Buffers the levels of each page are decoded into: [repetition, definition]. */
  private readonly levelBufs: [Uint8Array, Uint8Array] = [new Uint8Array(0), new Uint8Array(0)];
  private def: Uint8Array | null = null;
  private values: Values = new Float64Array(0);
  private entries = 0;
  /** The current page holds whole lists of this many values only, none null (0: not so, or not a list). */
  private fixed = 0;
  private i = 0;
  private vi = 0;
  /** Rows started so far in the row group. */
  private row = 0;
  /** Level entries of the data pages read so far. */
  private seen = 0;

  constructor(
    private readonly u: Uint8Array,
    private readonly c: ColumnLayout,
    private readonly compressors: Compressors,
    private readonly limits: Pick<ParquetLimits, 'pageValues' | 'pageBytes'>,
  ) {
    this.pos = c.start;
  }

  /** The next n rows into the sink's rows [0, n) (its count 0 and firstNull -1 beforehand); throws when the column has fewer. */
  take(n: number, sink: Sink): void {
    const base = this.row;
    const stop = base + n;
    const list = this.c.maxRep > 0;
    for (;;) {
      if (this.i >= this.entries && !this.nextPage()) break;
      if (list ? this.takeList(stop, base, sink) : this.takeScalars(stop, base, sink)) break;
    }
    if (this.row < stop) throw new Error(`column ends after ${this.row} rows`);
  }

  /** Entries of the current page into the sink until row `stop` would begin; true when it did. */
  private takeList(stop: number, base: number, s: Sink): boolean {
    const { rep, def, values, entries } = this;
    const { maxDef, listDef } = this.c;
    const count = s.count!;
    const { target, stride, firstNull } = s;
    // A page of whole lists of `stride` values each (the usual list<float> input): rows at once.
    if (this.fixed === stride && s.offset === 0) return this.takeFixed(stop, base, s);
    let i = this.i;
    let vi = this.vi;
    let row = this.row;
    let r = row - base - 1;
    let done = false;
    if (rep !== null && i < entries && rep[i] !== 0 && r < 0) throw new Error('a row continues past where it should start');
    for (; i < entries; i++) {
      if (rep === null || rep[i] === 0) {
        if (row === stop) {
          done = true;
          break;
        }
        r = row++ - base;
      }
      const d = def === null ? maxDef : def[i]!;
      if (d === maxDef) {
        const k = count[r]!;
        if (k < stride) target[r * stride + k] = values[vi]!;
        vi++;
        count[r] = k + 1;
      } else if (d > listDef) {
        if (firstNull[r] === -1) firstNull[r] = count[r]!;
        count[r]!++;
      } else if (d < listDef) {
        count[r] = -1;
      }
    }
    this.i = i;
    this.vi = vi;
    this.row = row;
    return done;
  }

  /** takeList for a page of whole lists of `this.fixed` values, none null: each run of rows one copy. */
  private takeFixed(stop: number, base: number, s: Sink): boolean {
    const per = this.fixed;
    const k = Math.min(stop - this.row, (this.entries - this.i) / per);
    const r = this.row - base;
    s.target.set(this.values.subarray(this.vi, this.vi + k * per), r * s.stride);
    s.count!.fill(per, r, r + k);
    this.i += k * per;
    this.vi += k * per;
    this.row += k;
    return this.row === stop;
  }

  private takeScalars(stop: number, base: number, s: Sink): boolean {
    const { def, values, entries } = this;
    const { maxDef } = this.c;
    const { target, stride, offset, firstNull, column } = s;
    let i = this.i;
    let vi = this.vi;
    let row = this.row;
    const last = Math.min(entries, i + (stop - row));
    for (; i < last; i++, row++) {
      const r = row - base;
      if (def === null || def[i] === maxDef) target[r * stride + offset] = values[vi++]!;
      else if (firstNull[r] === -1) firstNull[r] = column;
    }
    this.i = i;
    this.vi = vi;
    this.row = row;
    return row === stop;
  }

  /** Decodes the next data page (reading a dictionary page on the way); false at the chunk's end. */
  private nextPage(): boolean {
    while (this.pos < this.c.end) {
      const { header: h, end } = readPageHeader(this.u, this.pos, this.c.end);
      checkPage(h, end, this.c.end, this.limits);
      const raw = this.u.subarray(end, end + h.compressed);
      this.pos = end + h.compressed;
      if (h.type === 2) {
        if (h.encoding !== PLAIN && h.encoding !== PLAIN_DICTIONARY) throw new Error(`dictionary page encoding ${h.encoding}`);
        this.dict = this.plain(this.decompress(raw, h.uncompressed), 0, h.numValues);
      } else if (h.type === 0 || h.type === 3) {
        this.seen += h.numValues;
        if (!this.c.maxRep && this.seen > this.c.rows)
          throw new ParquetShapeError(`a data page brings the column's values to ${this.seen}; its row group has ${this.c.rows} rows`);
        this.dataPage(h, raw);
        if (this.entries > 0) return true;
      } else if (h.type !== 1) {
        throw new Error(`page type ${h.type}`);
      }
    }
    return false;
  }

  private dataPage(h: PageHeader, raw: Uint8Array) {
    const { maxDef, maxRep } = this.c;
    const n = h.numValues;
    let data: Uint8Array;
    let at = 0;
    // The levels go into buffers kept from page to page (readHybrid writes every one of the n).
    const levels = (from: Uint8Array, s: number, e: number, max: number, which: 0 | 1) => {
      let buf = this.levelBufs[which];
      if (buf.length < n) buf = this.levelBufs[which] = new Uint8Array(n);
      const out = buf.subarray(0, n);
      readHybrid(from, s, e, bitWidth(max), n, out);
      return out;
    };
    if (h.type === 0) {
      data = this.decompress(raw, h.uncompressed);
      const v1 = (max: number, encoding: number, which: 0 | 1) => {
        if (!max) return null;
        if (encoding !== RLE) throw new Error(`level encoding ${encoding}`);
        if (at + 4 > data.length) throw new ParquetShapeError('a data page ends before its levels');
        const len = new DataView(data.buffer, data.byteOffset + at, 4).getUint32(0, true);
        if (len > data.length - at - 4) throw new ParquetShapeError(`a data page's levels (${len} bytes) run past its ${data.length} bytes`);
        const out = levels(data, at + 4, at + 4 + len, max, which);
        at += 4 + len;
        return out;
      };
      this.rep = v1(maxRep, h.repEncoding, 0);
      this.def = v1(maxDef, h.defEncoding, 1);
    } else {
      this.rep = maxRep ? levels(raw, 0, h.repBytes, maxRep, 0) : null;
      this.def = maxDef ? levels(raw, h.repBytes, h.repBytes + h.defBytes, maxDef, 1) : null;
      const rest = raw.subarray(h.repBytes + h.defBytes);
      const size = h.uncompressed - h.repBytes - h.defBytes;
      if (size < 0) throw new ParquetShapeError('a data page v2 whose level lengths are past its uncompressed size');
      data = h.compressedValues && size > 0 ? this.decompress(rest, size) : rest;
    }
    let present = n;
    if (this.def) {
      present = 0;
      for (let i = 0; i < n; i++) if (this.def[i] === maxDef) present++;
    }
    this.values = this.decodeValues(h.encoding, data, at, present);
    this.fixed = present === n && this.rep ? fixedLists(this.rep, n) : 0;
    this.entries = n;
    this.i = 0;
    this.vi = 0;
  }

  private decodeValues(encoding: number, data: Uint8Array, at: number, count: number): Values {
    if (encoding === PLAIN) return this.plain(data, at, count);
    if (encoding !== RLE_DICTIONARY && encoding !== PLAIN_DICTIONARY) throw new Error(`value encoding ${encoding}`);
    const dict = this.dict;
    if (!dict) throw new Error('dictionary-encoded page without a dictionary');
    if (count && at >= data.length) throw new ParquetShapeError('a dictionary-encoded page without its bit width');
    const idx = new Uint32Array(count);
    if (count) readHybrid(data, at + 1, data.length, data[at]!, count, idx);
    const out = new (dict.constructor as new (n: number) => Values)(count);
    for (let i = 0; i < count; i++) {
      const v = dict[idx[i]!];
      if (v === undefined) throw new ParquetShapeError(`dictionary index ${idx[i]} past its ${dict.length} values`);
      out[i] = v;
    }
    return out;
  }

  /** `count` PLAIN values from data[at]; INT64 become numbers as Number(bigint) would round them. */
  private plain(data: Uint8Array, at: number, count: number): Values {
    const type = this.c.type;
    const bytes = count * WIDTH[type];
    if (at + bytes > data.length) throw new ParquetShapeError(`a page holds fewer than its ${count} values`);
    if (type === 'INT64') {
      const view = new DataView(data.buffer, data.byteOffset + at, bytes);
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const hi = view.getInt32(8 * i + 4, true);
        // Exact in a double while |hi| < 2^21; beyond, the bigint's own rounding.
        out[i] = hi >= -0x200000 && hi < 0x200000 ? hi * 4294967296 + view.getUint32(8 * i, true) : Number(view.getBigInt64(8 * i, true));
      }
      return out;
    }
    // Typed arrays need aligned offsets; a page's values rarely are, so copy them (a memcpy).
    const own = (data.byteOffset + at) % WIDTH[type] === 0 ? data : data.slice(at, at + bytes);
    const from = own === data ? data.byteOffset + at : 0;
    if (type === 'FLOAT') return new Float32Array(own.buffer, from, count);
    if (type === 'DOUBLE') return new Float64Array(own.buffer, from, count);
    return new Int32Array(own.buffer, from, count);
  }

  private decompress(raw: Uint8Array, size: number): Uint8Array {
    return decompressPage(this.c.codec, this.compressors, raw, size);
  }
}

/**
 * The length L when the repetition levels of n entries are whole lists of L entries each (a 0 then
 * L - 1 ones, n / L times); otherwise 0.
 */
export function fixedLists(rep: Uint8Array, n: number): number {
  if (n === 0 || rep[0] !== 0) return 0;
  let per = 1;
  while (per < n && rep[per] === 1) per++;
  if (n % per !== 0) return 0;
  for (let i = per; i < n; i += per) {
    if (rep[i] !== 0) return 0;
    for (let k = i + 1, e = i + per; k < e; k++) if (rep[k] !== 1) return 0;
  }
  return per;
}

/** A page's declared sizes and count against the bytes its column chunk has left and the limits: before anything is allocated. */
export function checkPage(h: PageHeader, at: number, end: number, limits: Pick<ParquetLimits, 'pageValues' | 'pageBytes'>): void {
  if (h.compressed > end - at) throw new ParquetShapeError(`a page of ${h.compressed} bytes runs past its column chunk (${end - at} bytes left)`);
  if (h.uncompressed > limits.pageBytes)
    throw new ParquetShapeError(`a page declares ${h.uncompressed} bytes uncompressed; the limit is MODELQ_PARQUET_MAX_PAGE_BYTES (${limits.pageBytes})`);
  if (h.numValues > limits.pageValues)
    throw new ParquetShapeError(`a page declares num_values=${h.numValues}; the limit is MODELQ_PARQUET_MAX_PAGE_VALUES (${limits.pageValues})`);
}

/** A page's bytes decompressed to the `size` its header declares (checked against the limits beforehand). */
export function decompressPage(codec: string, compressors: Compressors, raw: Uint8Array, size: number): Uint8Array {
  if (codec === 'UNCOMPRESSED') return raw;
  if (size === 0) return new Uint8Array(0); // an empty page can be an empty stream, which some decompressors refuse
  const f = compressors[codec as keyof Compressors];
  if (!f) throw new Error(`codec ${codec}`);
  let out: Uint8Array;
  try {
    out = f(raw, size);
  } catch (e) {
    throw new ParquetShapeError(`a ${codec} page does not decompress: ${(e as Error).message}`);
  }
  if (out.length !== size) throw new ParquetShapeError(`a page decompressed to ${out.length} bytes, its header says ${size}`);
  return out;
}
