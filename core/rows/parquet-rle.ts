// Parquet's RLE/bit-packed hybrid encoding, for definition and repetition levels and dictionary
// indices, decoded into a typed array (the fast column decoder's, and the page checker's before a
// row group goes to hyparquet). Every header and value is checked against the bytes present: a
// stream that ends mid-varint, mid-value or mid-group is an error, never a read past the view.
// hyparquet's readRleBitPackedHybrid (src/encoding.js) is not used here: it loops over a run's
// declared length whatever the values left (a run header of 2^31 spins), and measured about half
// as fast on a list column's levels.
import { ParquetShapeError } from './parquet-errors.ts';

/**
 * Decodes `count` values of `width` bits from u[at, end) into out[0, count); returns where it
 * stopped. A run that claims more values than `count` is refused (writers end runs at the page's
 * values; only a bit-packed group's padding may go past them).
 */
export function readHybrid(u: Uint8Array, at: number, end: number, width: number, count: number, out: Uint8Array | Uint16Array | Uint32Array): number {
  if (width > 24) throw new Error(`values of ${width} bits`); // the bit buffer below holds 32 bits
  end = Math.min(end, u.length);
  const bytes = (width + 7) >> 3;
  let n = 0;
  while (n < count) {
    if (at >= end) throw new ParquetShapeError(`levels or indices end after ${n} of ${count} values`);
    // The run header: a ULEB128 varint of at most 5 bytes (it holds a 32-bit count).
    let head = 0;
    let scale = 1;
    for (let k = 0; ; k++) {
      if (at >= end || k === 5) throw new ParquetShapeError(`a run header of levels or indices ${at >= end ? 'ends mid-varint' : 'is longer than 5 bytes'}`);
      const b = u[at++]!;
      head += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
    }
    if (head % 2 === 0) {
      // A run: one value, repeated.
      const len = head / 2;
      if (len > count - n) throw new ParquetShapeError(`a run of ${len} levels or indices where ${count - n} remain`);
      if (at + bytes > end) throw new ParquetShapeError('a run of levels or indices ends mid-value');
      let v = 0;
      for (let i = 0; i < bytes; i++) v |= u[at++]! << (8 * i);
      out.fill(v, n, n + len);
      n += len;
    } else {
      // Bit-packed groups of 8 values, least significant bit first. The last group may be padded.
      const groups = (head - 1) / 2;
      if (groups === 0) continue; // an empty group list: the header itself moved `at` on
      if (groups > Math.ceil((count - n) / 8)) throw new ParquetShapeError(`${groups} bit-packed groups of levels or indices where ${count - n} values remain`);
      const len = groups * 8;
      const take = Math.min(len, count - n);
      const need = Math.ceil((take * width) / 8);
      if (at + need > end) throw new ParquetShapeError('bit-packed levels or indices end mid-group');
      unpack(u, at, width, take, out, n);
      at = Math.min(at + (len * width) / 8, end);
      n += take;
    }
  }
  return at;
}

function unpack(u: Uint8Array, at: number, width: number, count: number, out: Uint8Array | Uint16Array | Uint32Array, from: number) {
  if (width === 1) {
    // A list's repetition levels: a bit a value, eight a byte.
    const whole = count & ~7;
    for (let i = 0; i < whole; i += 8) {
      const b = u[at + (i >> 3)]!;
      const o = from + i;
      out[o] = b & 1;
      out[o + 1] = (b >> 1) & 1;
      out[o + 2] = (b >> 2) & 1;
      out[o + 3] = (b >> 3) & 1;
      out[o + 4] = (b >> 4) & 1;
      out[o + 5] = (b >> 5) & 1;
      out[o + 6] = (b >> 6) & 1;
      out[o + 7] = b >> 7;
    }
    for (let i = whole; i < count; i++) out[from + i] = (u[at + (i >> 3)]! >> (i & 7)) & 1;
    return;
  }
  const mask = width === 0 ? 0 : 0xffffffff >>> (32 - width);
  let buf = 0;
  let bits = 0;
  for (let i = 0; i < count; i++) {
    while (bits < width) {
      buf |= (u[at] ?? 0) << bits;
      at++;
      bits += 8;
    }
    out[from + i] = (buf & mask) >>> 0;
    buf >>>= width;
    bits -= width;
  }
}

/** Bits needed for levels up to `max`. */
export const bitWidth = (max: number) => (max === 0 ? 0 : 32 - Math.clz32(max));
