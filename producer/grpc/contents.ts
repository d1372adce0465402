// Tensor contents of the gRPC protocol: raw_input_contents (little-endian bytes, BYTES as 4-byte
// length prefixes) or typed `contents` in, the protocol's JSON data form out for the shared checks;
// answers leave as raw_output_contents, the only form Triton's clients decode.
import { badRequest } from '../../core/errors.ts';
import { isBytes, isPacked, type WireTensor } from '../../core/jobs/infer.ts';
import type { Datatype } from '../../core/tensors.ts';

/** The message InferTensorContents as proto-loader gives it (keepCase, longs as numbers). */
export interface TensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: number[];
  uint_contents?: number[];
  uint64_contents?: number[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}

type Data = unknown[] | Float32Array;

const WIDTH: Record<string, number> = {
  BOOL: 1,
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  FP16: 2,
  UINT32: 4,
  INT32: 4,
  FP32: 4,
  UINT64: 8,
  INT64: 8,
  FP64: 8,
};

/**
 * Copies into an aligned buffer when the view is not aligned for its element width. The copy comes
 * from Node's buffer pool where it fits (slices of it start at multiples of 8): an ArrayBuffer of
 * its own per request cost more than the copy.
 */
function aligned(buf: Buffer, width: number): { buffer: ArrayBuffer; offset: number } {
  if (buf.byteOffset % width === 0) return { buffer: buf.buffer as ArrayBuffer, offset: buf.byteOffset };
  const copy = Buffer.allocUnsafe(buf.byteLength);
  if (copy.byteOffset % width !== 0) return { buffer: Uint8Array.from(buf).buffer, offset: 0 };
  buf.copy(copy);
  return { buffer: copy.buffer as ArrayBuffer, offset: copy.byteOffset };
}

function halfToFloat(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

function floatToHalf(f: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, f);
  const x = b.getUint32(0);
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const frac = x & 0x7fffff;
  if (exp >= 31) return sign | 0x7c00 | (((x >>> 23) & 0xff) === 0xff && frac ? 0x200 : 0);
  if (exp <= 0) return exp < -10 ? sign : sign | ((frac | 0x800000) >> (14 - exp));
  return sign | (exp << 10) | (frac >> 13);
}

/** BYTES elements: each a 4-byte little-endian length, then that many bytes (UTF-8 here). */
export function decodeBytes(buf: Buffer, label: string): string[] {
  const out: string[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 4 > buf.length) throw badRequest(`${label}: BYTES element ${out.length} has a truncated 4-byte length prefix`);
    const len = buf.readUInt32LE(off);
    off += 4;
    if (off + len > buf.length) throw badRequest(`${label}: BYTES element ${out.length} says ${len} bytes, ${buf.length - off} are left`);
    out.push(buf.toString('utf8', off, off + len));
    off += len;
  }
  return out;
}

/** The elements of a raw BYTES entry as bytes (its framing already checked by decodeBytes). */
export function bytesElements(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off + 4 <= buf.length;) {
    const len = buf.readUInt32LE(off);
    out.push(buf.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}

export function encodeBytes(values: readonly unknown[]): Buffer {
  const parts = values.map((v) => Buffer.from(String(v), 'utf8'));
  const out = Buffer.allocUnsafe(parts.reduce((a, p) => a + 4 + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.writeUInt32LE(p.length, off);
    p.copy(out, off + 4);
    off += 4 + p.length;
  }
  return out;
}

/** One raw_input_contents entry -> data in the protocol's JSON form (FP32 stays a Float32Array). */
export function decodeRaw(buf: Buffer, datatype: string, label: string): Data {
  if (datatype === 'BYTES') return decodeBytes(buf, label);
  const width = WIDTH[datatype];
  if (width === undefined) return []; // the signature check names the unknown datatype
  if (buf.byteLength % width !== 0) throw badRequest(`${label}: ${buf.byteLength} bytes is not a whole number of ${datatype} elements (${width} bytes each)`);
  const n = buf.byteLength / width;
  const { buffer, offset } = aligned(buf, width);
  switch (datatype as Datatype) {
    case 'FP32':
      return new Float32Array(buffer, offset, n);
    case 'FP64':
      return Array.from(new Float64Array(buffer, offset, n));
    case 'FP16':
      return Array.from(new Uint16Array(buffer, offset, n), halfToFloat);
    case 'INT8':
      return Array.from(new Int8Array(buffer, offset, n));
    case 'UINT8':
      return Array.from(new Uint8Array(buffer, offset, n));
    case 'INT16':
      return Array.from(new Int16Array(buffer, offset, n));
    case 'UINT16':
      return Array.from(new Uint16Array(buffer, offset, n));
    case 'INT32':
      return Array.from(new Int32Array(buffer, offset, n));
    case 'UINT32':
      return Array.from(new Uint32Array(buffer, offset, n));
    case 'INT64':
      return Array.from(new BigInt64Array(buffer, offset, n), Number);
    case 'UINT64':
      return Array.from(new BigUint64Array(buffer, offset, n), Number);
    default:
      return Array.from(new Uint8Array(buffer, offset, n), (x) => x !== 0); // BOOL
  }
}

const FIELD: Partial<Record<Datatype, keyof TensorContents>> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

/** Typed `contents` -> data in the protocol's JSON form; only the field of the tensor's datatype is read. */
export function decodeTyped(c: TensorContents | undefined, datatype: string, label: string): Data {
  const field = FIELD[datatype as Datatype];
  if (!field) {
    if (datatype === 'FP16') throw badRequest(`${label}: FP16 has no typed contents field; send it in raw_input_contents`);
    return [];
  }
  const values = c?.[field] ?? [];
  if (values.length === 0 && c) {
    // Data in another field (numbers for a BYTES input, say) would otherwise read as no elements.
    const other = (Object.keys(c) as (keyof TensorContents)[]).find((k) => k !== field && (c[k]?.length ?? 0) > 0);
    if (other) throw badRequest(`${label}: datatype ${datatype} takes ${field}, the request has ${other}`);
  }
  return field === 'bytes_contents' ? (values as Buffer[]).map((b) => b.toString('utf8')) : values;
}

/** An answer tensor as raw_output_contents bytes. */
export function encodeOutput(t: WireTensor): Buffer {
  if (isPacked(t)) return Buffer.from(t.b64, 'base64');
  if (isBytes(t)) return Buffer.from(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength);
  const d = t.data as unknown[];
  switch (t.datatype) {
    case 'BYTES':
      return encodeBytes(d);
    case 'FP32':
      return typed(Float32Array.from(d as number[]));
    case 'FP64':
      return typed(Float64Array.from(d as number[]));
    case 'FP16':
      return typed(Uint16Array.from(d as number[], floatToHalf));
    case 'INT8':
      return typed(Int8Array.from(d as number[]));
    case 'UINT8':
      return typed(Uint8Array.from(d as number[]));
    case 'INT16':
      return typed(Int16Array.from(d as number[]));
    case 'UINT16':
      return typed(Uint16Array.from(d as number[]));
    case 'INT32':
      return typed(Int32Array.from(d as number[]));
    case 'UINT32':
      return typed(Uint32Array.from(d as number[]));
    case 'INT64':
      return typed(BigInt64Array.from(d as number[], (x) => BigInt(x)));
    case 'UINT64':
      return typed(BigUint64Array.from(d as number[], (x) => BigInt(x)));
    case 'BOOL':
      return typed(Uint8Array.from(d as unknown[], (x) => (x ? 1 : 0)));
  }
}

const typed = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
