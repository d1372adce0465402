// Parquet page headers (Thrift compact protocol), read by the fast column decoder
// (parquet-column.ts): just enough Thrift to parse a PageHeader and skip the fields it does not use.
// hyparquet keeps its own reader private, and the footer is still read by hyparquet.

/** A decoded Thrift struct: field id -> value (numbers, booleans, bytes, lists, nested structs). */
export type Struct = Map<number, unknown>;

interface Reader {
  u: Uint8Array;
  at: number;
}

function varint(r: Reader): number {
  let out = 0;
  let scale = 1;
  for (;;) {
    const b = r.u[r.at++];
    if (b === undefined) throw new Error('page header runs past the column chunk');
    out += (b & 0x7f) * scale;
    if (b < 0x80) return out;
    scale *= 128;
  }
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
      return (r.u[r.at++]! << 24) >> 24;
    case 4:
    case 5:
    case 6:
      return zigzag(r);
    case 7:
      r.at += 8;
      return null; // a double: no page header field this reader uses
    case 8: {
      const n = varint(r);
      const b = r.u.subarray(r.at, r.at + n);
      r.at += n;
      return b;
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

function list(r: Reader): unknown[] {
  const head = r.u[r.at++]!;
  const n = head >> 4 === 15 ? varint(r) : head >> 4;
  const type = head & 15;
  const out: unknown[] = [];
  // Booleans in a list are a byte each (1 true, 2 false in the compact protocol, 0 in some writers).
  for (let i = 0; i < n; i++) out.push(type === 1 || type === 2 ? r.u[r.at++] === 1 : value(r, type));
  return out;
}

function map(r: Reader): null {
  const n = varint(r);
  if (!n) return null;
  const types = r.u[r.at++]!;
  for (let i = 0; i < n; i++) {
    value(r, types >> 4);
    value(r, types & 15);
  }
  return null;
}

function struct(r: Reader): Struct {
  const out: Struct = new Map();
  let id = 0;
  for (;;) {
    const head = r.u[r.at++];
    if (head === undefined) throw new Error('page header runs past the column chunk');
    if (head === 0) return out;
    const delta = head >> 4;
    id = delta ? id + delta : zigzag(r);
    out.set(id, value(r, head & 15));
  }
}

/** The struct starting at u[at], and where it ends. */
export function readStruct(u: Uint8Array, at: number): { value: Struct; end: number } {
  const r = { u, at };
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

export function readPageHeader(u: Uint8Array, at: number): { header: PageHeader; end: number } {
  const { value: s, end } = readStruct(u, at);
  const v1 = s.get(5) as Struct | undefined;
  const dict = s.get(7) as Struct | undefined;
  const v2 = s.get(8) as Struct | undefined;
  const body = v1 ?? dict ?? v2;
  const header: PageHeader = {
    type: num(s, 1),
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
  if (header.compressed < 0 || header.uncompressed < 0) throw new Error('page header without its sizes');
  return { header, end };
}
