// Parquet page headers (Thrift compact protocol), read by the fast column decoder
// (parquet-column.ts) and the page checker (parquet-check.ts) with hyparquet's own Thrift reader.
// It reads from a view that ends where the column chunk does, so a header that runs past the chunk,
// a list or string longer than the bytes left, or an unknown type throws; every such error, a
// stack overflow from structs nested without end included, is a ParquetShapeError here.
import { deserializeTCompactProtocol } from 'hyparquet/src/thrift.js';
import { ParquetShapeError } from './parquet-errors.ts';

/** A decoded Thrift struct, as hyparquet reads it (and hyparquet-writer writes it): `field_<id>` -> value. */
export type Struct = ReturnType<typeof deserializeTCompactProtocol>;

/** The struct starting at u[at] and ending by u[end] (default: u's end), and where it ends. */
export function readStruct(u: Uint8Array, at: number, end = u.length): { value: Struct; end: number } {
  end = Math.min(end, u.length);
  if (at >= end) throw new ParquetShapeError('a page header runs past its column chunk');
  const reader = { view: new DataView(u.buffer, u.byteOffset + at, end - at), offset: 0 };
  try {
    const value = deserializeTCompactProtocol(reader) as Struct;
    return { value, end: at + reader.offset };
  } catch (e) {
    const m = (e as Error).message;
    const past = (e instanceof RangeError && !/call stack/.test(m)) || /ended without STOP|exceeds remaining/.test(m);
    const why = past ? 'runs past its column chunk' : `cannot be read (${m})`;
    throw new ParquetShapeError(`a page header ${why}`);
  }
}

/** What the decoder needs of a PageHeader (parquet.thrift field ids in comments). */
export interface PageHeader {
  type: number; // 1: 0 DATA_PAGE, 1 INDEX_PAGE, 2 DICTIONARY_PAGE, 3 DATA_PAGE_V2
  uncompressed: number; // 2
  compressed: number; // 3
  /** Level entries (values and nulls) in a data page; values in a dictionary page. */
  numValues: number;
  encoding: number;
  /** v1: encodings of definition and repetition levels (3 RLE, 4 BIT_PACKED). */
  defEncoding: number;
  repEncoding: number;
  /** v2: byte lengths of the (uncompressed) level sections, and whether the values are compressed. */
  defBytes: number;
  repBytes: number;
  compressedValues: boolean;
}

const field = (s: Struct | undefined, id: number) => s?.[`field_${id}`];
const num = (s: Struct | undefined, id: number) => {
  const v = field(s, id);
  return typeof v === 'number' ? v : -1;
};
const sub = (s: Struct, id: number) => {
  const v = field(s, id);
  return v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) ? (v as Struct) : undefined;
};
const BODY: Record<number, number> = { 0: 5, 2: 7, 3: 8 };

/** The page header at u[at], within u[at, end); its sizes and counts are present and not negative. */
export function readPageHeader(u: Uint8Array, at: number, end = u.length): { header: PageHeader; end: number } {
  const { value: s, end: after } = readStruct(u, at, end);
  const v1 = sub(s, 5);
  const v2 = sub(s, 8);
  const type = num(s, 1);
  const body = BODY[type] === undefined ? undefined : sub(s, BODY[type]);
  const header: PageHeader = {
    type,
    uncompressed: num(s, 2),
    compressed: num(s, 3),
    numValues: num(body, 1),
    encoding: v2 ? num(v2, 4) : num(body, 2),
    defEncoding: num(v1, 3),
    repEncoding: num(v1, 4),
    defBytes: num(v2, 5),
    repBytes: num(v2, 6),
    compressedValues: field(v2, 7) !== false,
  };
  if (header.compressed < 0 || header.uncompressed < 0) throw new ParquetShapeError('a page header without its sizes');
  if (BODY[type] !== undefined && (!body || header.numValues < 0)) throw new ParquetShapeError(`a page header of type ${type} without its num_values`);
  if (type === 3 && (header.defBytes < 0 || header.repBytes < 0 || header.defBytes + header.repBytes > header.compressed))
    throw new ParquetShapeError('a data page v2 whose level lengths are missing or past its size');
  return { header, end: after };
}
