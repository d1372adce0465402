// Parquet page headers (Thrift compact protocol), read by the fast column decoder
// (parquet-column.ts): just enough Thrift to parse a PageHeader and skip the fields it does not use.
// hyparquet keeps its own reader private, and the footer is still read by hyparquet. Every read is
// checked against the end of the bytes it may use (the column chunk's): a header that runs past
// it, a list longer than the bytes left, or structs nested past MAX_DEPTH are ParquetShapeErrors.
import { ParquetShapeError } from './parquet-errors.ts';

/** A decoded Thrift struct: field id -> value (numbers, booleans, bytes, lists, nested structs). */
export type Struct = Map<number, unknown>;

interface Reader {
  u: Uint8Array;
  at: number;
  /** Where the bytes this header may use end. */
  end: number;
  depth: number;
}

/** Page headers nest three deep (header, page header, statistics); this leaves room and no more. */
const MAX_DEPTH = 16;

const past = () => new ParquetShapeError('a page header runs past its column chunk');

function byte(r: Reader): number {
  if (r.at >= r.end) throw past();
  return r.u[r.at++]!;
}

/** ULEB128 of at most 10 bytes (64 bits). */
function varint(r: Reader): number {
  let out = 0;
  let scale = 1;
  for (let k = 0; k < 10; k++) {
    const b = byte(r);
    out += (b & 0x7f) * scale;
    if (b < 0x80) return out;
    scale *= 128;
  }
  throw new ParquetShapeError('a page header has a varint longer than 10 bytes');
}

function skip(r: Reader, n: number) {
  if (n > r.end - r.at) throw past();
  r.at += n;
}

/** Zigzag varint; past 2^53 it loses precision, which no page header field this reader uses reaches. */
function zigzag(r: Reader): number {
  const v = varint(r);
  return v % 2 === 0 ? v / 2 : -(v + 1) / 2;
}

function value(r: Reader, type: number): unknown {
  switch (type) {
    case 1:
      return true;
    case 2:
      return false;
    case 3:
      return (byte(r) << 24) >> 24;
    case 4:
    case 5:
    case 6:
      return zigzag(r);
    case 7:
      skip(r, 8);
      return null; // a double: no page header field this reader uses
    case 8: {
      const n = varint(r);
      const from = r.at;
      skip(r, n);
      return r.u.subarray(from, r.at);
    }
    case 9:
    case 10:
      return list(r);
    case 11:
      return map(r);
    case 12:
      return struct(r);
    default:
      throw new Error(`page header has an unknown Thrift type ${type}`);
  }
}

/** Every element takes a byte at least: a count past the bytes left is a lie, refused before looping on it. */
function count(r: Reader, n: number): number {
  if (n > r.end - r.at) throw new ParquetShapeError(`a page header lists ${n} elements in ${r.end - r.at} bytes`);
  return n;
}

function list(r: Reader): unknown[] {
  const head = byte(r);
  const n = count(r, head >> 4 === 15 ? varint(r) : head >> 4);
  const type = head & 15;
  const out: unknown[] = [];
  // Booleans in a list are a byte each (1 true, 2 false in the compact protocol, 0 in some writers).
  for (let i = 0; i < n; i++) out.push(type === 1 || type === 2 ? byte(r) === 1 : value(r, type));
  return out;
}

function map(r: Reader): null {
  const n = varint(r);
  if (!n) return null;
  const types = byte(r);
  // Booleans take no byte as map keys or values, so a map of them could loop on nothing.
  if (types >> 4 <= 2 || (types & 15) <= 2) throw new ParquetShapeError('a page header has a map of booleans');
  count(r, n);
  for (let i = 0; i < n; i++) {
    value(r, types >> 4);
    value(r, types & 15);
  }
  return null;
}

function struct(r: Reader): Struct {
  if (++r.depth > MAX_DEPTH) throw new ParquetShapeError(`a page header nests structs more than ${MAX_DEPTH} deep`);
  const out: Struct = new Map();
  let id = 0;
  for (;;) {
    const head = byte(r);
    if (head === 0) {
      r.depth--;
      return out;
    }
    const delta = head >> 4;
    id = delta ? id + delta : zigzag(r);
    out.set(id, value(r, head & 15));
  }
}

/** The struct starting at u[at] and ending by u[end] (default: u's end), and where it ends. */
export function readStruct(u: Uint8Array, at: number, end = u.length): { value: Struct; end: number } {
  const r = { u, at, end: Math.min(end, u.length), depth: 0 };
  const s = struct(r);
  return { value: s, end: r.at };
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

const num = (s: Struct | undefined, id: number) => (typeof s?.get(id) === 'number' ? (s.get(id) as number) : -1);
const sub = (s: Struct, id: number) => {
  const v = s.get(id);
  return v instanceof Map ? (v as Struct) : undefined;
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
    compressedValues: v2?.get(7) !== false,
  };
  if (header.compressed < 0 || header.uncompressed < 0) throw new ParquetShapeError('a page header without its sizes');
  if (BODY[type] !== undefined && (!body || header.numValues < 0)) throw new ParquetShapeError(`a page header of type ${type} without its num_values`);
  if (type === 3 && (header.defBytes < 0 || header.repBytes < 0 || header.defBytes + header.repBytes > header.compressed))
    throw new ParquetShapeError('a data page v2 whose level lengths are missing or past its size');
  return { header, end: after };
}
