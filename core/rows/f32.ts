// Reads JSON-grammar numbers from bytes straight into a Float32Array, each exactly Math.fround of
// what JSON.parse (or Number) gives. Shared by the producer's inference body parser and the batch
// row parsers in the engine threads: a heap number per element (JSON.parse) was their largest cost.
// The micro-benchmark of the producer's use is bench/online.ts; the batch use is bench/batch.ts.

/** Exact powers of ten as doubles (10^22 is the largest). */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
/** Math.fround of the magnitude of the number in buf[s, e), the plain way. */
const slow = (buf: Uint8Array, s: number, e: number) => Math.fround(Math.abs(Number(Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('latin1'))));

/** Where the last readF32Array or readF32 stopped, and how many numbers readF32Array wrote. */
export const f32Read = { end: 0, count: 0 };

/**
 * Reads one number starting at buf[i] (a '-' or a digit), as Math.fround of JSON.parse's value.
 * Sets f32Read.end to the index after it. Returns NaN when it is malformed or leaves float32's
 * range (the caller then takes its ordinary path, which words the error).
 */
export function readF32(buf: Uint8Array, i: number): number {
  let c = buf[i]!;
  const s = i;
  let neg = false;
  if (c === 0x2d) {
    neg = true;
    c = buf[++i]!;
  }
  // hi holds the first 15 significant digits and the value is hi * 10^exp, exactly unless a
  // later digit was dropped (then `dropped`, and the value is below the truth by under 1e-14).
  let hi = 0;
  let sig = 0;
  let exp = 0;
  let dropped = false;
  if (c === 0x30) c = buf[++i]!;
  else if (c >= 0x31 && c <= 0x39) {
    do {
      hi = hi * 10 + (c - 0x30);
      sig++;
      c = buf[++i]!;
    } while (c >= 0x30 && c <= 0x39 && sig < 15);
    while (c >= 0x30 && c <= 0x39) {
      if (c !== 0x30) dropped = true;
      exp++;
      c = buf[++i]!;
    }
  } else return NaN;
  if (c === 0x2e) {
    c = buf[++i]!;
    if (!(c >= 0x30 && c <= 0x39)) return NaN;
    if (sig === 0) {
      while (c === 0x30) {
        exp--;
        c = buf[++i]!;
      } // leading zeros are not significant
    }
    while (c >= 0x30 && c <= 0x39 && sig < 15) {
      hi = hi * 10 + (c - 0x30);
      sig++;
      exp--;
      c = buf[++i]!;
    }
    while (c >= 0x30 && c <= 0x39) {
      if (c !== 0x30) dropped = true;
      c = buf[++i]!;
    }
  }
  if (c === 0x65 || c === 0x45) {
    c = buf[++i]!;
    let eneg = false;
    if (c === 0x2b || c === 0x2d) {
      eneg = c === 0x2d;
      c = buf[++i]!;
    }
    if (!(c >= 0x30 && c <= 0x39)) return NaN;
    let e = 0;
    do {
      if (e < 100000) e = e * 10 + (c - 0x30);
      c = buf[++i]!;
    } while (c >= 0x30 && c <= 0x39);
    exp += eneg ? -e : e;
  }
  f32Read.end = i;
  let v: number;
  if (exp < -22 || exp > 22) v = slow(buf, s, i);
  else {
    // Clinger's fast path: an integer below 2^53 times or over an exact power of ten is the
    // correctly rounded double, i.e. JSON.parse's when no digit was dropped.
    const d = exp >= 0 ? hi * POW10[exp]! : hi / POW10[-exp]!;
    if (!dropped) v = Math.fround(d);
    else {
      // The truth lies in [d, d * (1 + 1e-14)] (give or take a rounding): when both ends round
      // to the same float32, so does the truth; otherwise ask Number().
      const a = Math.fround(d * (1 - 1e-15));
      v = a === Math.fround(d * (1 + 2e-14)) ? a : slow(buf, s, i);
    }
  }
  // Past float32's range (or a double's): the ordinary path gives its ordinary answer.
  if (v === Infinity) return NaN;
  return neg ? -v : v;
}

/**
 * Reads the JSON array starting at buf[start] ('[') into out[at, at + count), at most `limit`
 * numbers. Returns the index after its ']' (count in f32Read.count); -1 when the array holds
 * anything but numbers (or nothing), -2 when it is malformed or a number leaves float32's range,
 * -3 when it has more than `limit` numbers.
 */
export function readF32Array(buf: Uint8Array, start: number, out: Float32Array, at: number, limit: number): number {
  // The number reader of readF32, inlined: this loop is the hottest of the producer's online path
  // and of batch parsing, and a call per element cost a third of it.
  let i = start + 1;
  let c = buf[i]!;
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i]!;
  if (!(c === 0x2d || isDigit(c))) return -1;
  let k = 0;
  for (;;) {
    if (!(c === 0x2d || isDigit(c))) return -1;
    if (k === limit) return -3;
    const s = i;
    let neg = false;
    if (c === 0x2d) {
      neg = true;
      c = buf[++i]!;
    }
    let hi = 0;
    let sig = 0;
    let exp = 0;
    let dropped = false;
    if (c === 0x30) c = buf[++i]!;
    else if (c >= 0x31 && c <= 0x39) {
      do {
        hi = hi * 10 + (c - 0x30);
        sig++;
        c = buf[++i]!;
      } while (c >= 0x30 && c <= 0x39 && sig < 15);
      while (c >= 0x30 && c <= 0x39) {
        if (c !== 0x30) dropped = true;
        exp++;
        c = buf[++i]!;
      }
    } else return -2;
    if (c === 0x2e) {
      c = buf[++i]!;
      if (!(c >= 0x30 && c <= 0x39)) return -2;
      if (sig === 0) {
        while (c === 0x30) {
          exp--;
          c = buf[++i]!;
        }
      }
      while (c >= 0x30 && c <= 0x39 && sig < 15) {
        hi = hi * 10 + (c - 0x30);
        sig++;
        exp--;
        c = buf[++i]!;
      }
      while (c >= 0x30 && c <= 0x39) {
        if (c !== 0x30) dropped = true;
        c = buf[++i]!;
      }
    }
    if (c === 0x65 || c === 0x45) {
      c = buf[++i]!;
      let eneg = false;
      if (c === 0x2b || c === 0x2d) {
        eneg = c === 0x2d;
        c = buf[++i]!;
      }
      if (!(c >= 0x30 && c <= 0x39)) return -2;
      let e = 0;
      do {
        if (e < 100000) e = e * 10 + (c - 0x30);
        c = buf[++i]!;
      } while (c >= 0x30 && c <= 0x39);
      exp += eneg ? -e : e;
    }
    let v: number;
    if (exp < -22 || exp > 22) v = slow(buf, s, i);
    else {
      const d = exp >= 0 ? hi * POW10[exp]! : hi / POW10[-exp]!;
      if (!dropped) v = Math.fround(d);
      else {
        const a = Math.fround(d * (1 - 1e-15));
        v = a === Math.fround(d * (1 + 2e-14)) ? a : slow(buf, s, i);
      }
    }
    if (v === Infinity) return -2;
    out[at + k++] = neg ? -v : v;
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i]!;
    if (c === 0x2c) {
      c = buf[++i]!;
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i]!;
      continue;
    }
    if (c === 0x5d) {
      f32Read.count = k;
      return i + 1;
    }
    return -2;
  }
}
