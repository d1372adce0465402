// Parquet's RLE/bit-packed hybrid encoding, for definition and repetition levels and dictionary
// indices, decoded into a typed array (the fast column decoder's; see parquet-column.ts).

/** Decodes `count` values of `width` bits from u[at, end) into out[0, count); returns where it stopped. */
export function readHybrid(u: Uint8Array, at: number, end: number, width: number, count: number, out: Uint8Array | Uint16Array | Uint32Array): number {
  if (width > 24) throw new Error(`values of ${width} bits`); // the bit buffer below holds 32 bits
  const bytes = (width + 7) >> 3;
  let n = 0;
  while (n < count) {
    if (at >= end) throw new Error(`levels or indices end after ${n} of ${count} values`);
    let head = 0;
    let scale = 1;
    for (;;) {
      const b = u[at++]!;
      head += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
    }
    if (head % 2 === 0) {
      // A run: one value, repeated.
      const len = head / 2;
      let v = 0;
      for (let i = 0; i < bytes; i++) v |= u[at++]! << (8 * i);
      out.fill(v, n, Math.min(count, n + len));
      n += len;
    } else {
      // Bit-packed groups of 8 values, least significant bit first. The last group may be padded.
      const len = ((head - 1) / 2) * 8;
      const stop = at + (len * width) / 8;
      const take = Math.min(len, count - n);
      unpack(u, at, Math.min(stop, end), width, take, out, n);
      at = stop;
      n += len;
    }
  }
  return at;
}

function unpack(u: Uint8Array, at: number, end: number, width: number, count: number, out: Uint8Array | Uint16Array | Uint32Array, from: number) {
  const mask = width === 0 ? 0 : 0xffffffff >>> (32 - width);
  let buf = 0;
  let bits = 0;
  for (let i = 0; i < count; i++) {
    while (bits < width) {
      buf |= (at < end ? (u[at] ?? 0) : 0) << bits;
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
