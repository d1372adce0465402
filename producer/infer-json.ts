// Parses an inference request body in one pass over its bytes, reading the `data` array of each
// input straight into a Float32Array. JSON.parse was the largest single cost of the producer per
// request (~50 us for one 512-float row): it makes a heap number per element, which the request
// then turns into a Float32Array anyway. The result is what JSON.parse gives, except that flat
// all-number `inputs[i].data` arrays are Float32Arrays holding exactly Math.fround of JSON.parse's
// numbers. Anything unusual (escapes aside, which are handed to JSON.parse) returns undefined, and
// the caller uses JSON.parse, which also words the error of a malformed body.

/** Exact powers of ten as doubles (10^22 is the largest). */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

class Bail extends Error {}
const EMPTY = Buffer.alloc(0);

// Output of readF32Array: result[0, count). The numbers go to a reused buffer, grown as needed up
// to SCRATCH_MAX elements (bodies of a few MB); larger arrays are read into one of their own.
const SCRATCH_MAX = 1 << 20;
const EMPTY_F32 = new Float32Array(0);
let scratch = new Float32Array(4096);
let big = EMPTY_F32;
let result = scratch;
let count = 0;
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
/** Math.fround of the magnitude of the number in buf[s, e), the plain way. */
const slow = (buf: Uint8Array, s: number, e: number) => Math.fround(Math.abs(Number(Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('latin1'))));

/**
 * Reads the array starting at buf[start] ('[') into scratch[0, count), each number as
 * Math.fround of JSON.parse's value. Returns the index after its ']', -1 when the array holds
 * anything but numbers (or nothing), -2 when it is malformed or a number leaves float32's range.
 * One function with locals only: this loop is the producer's hottest.
 */
function readF32Array(buf: Uint8Array, start: number): number {
  const n = buf.length;
  let i = start + 1;
  let c = buf[i]!;
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i]!;
  if (!(c === 0x2d || isDigit(c))) return -1;
  // Elements take at least two bytes ("0,"): the bytes left bound the count. A large body gets an
  // array of its own rather than a scratch buffer kept for good.
  const bound = Math.ceil((n - i) / 2) + 1;
  if (bound > scratch.length) {
    if (bound <= SCRATCH_MAX) scratch = new Float32Array(bound);
    else big = new Float32Array(bound);
  }
  const out = bound > SCRATCH_MAX ? big : scratch;
  let k = 0;
  for (;;) {
    if (!(c === 0x2d || isDigit(c))) return -1;
    const s = i;
    let neg = false;
    if (c === 0x2d) { neg = true; c = buf[++i]!; }
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
    } else return -2;
    if (c === 0x2e) {
      c = buf[++i]!;
      if (!(c >= 0x30 && c <= 0x39)) return -2;
      if (sig === 0) {
        while (c === 0x30) { exp--; c = buf[++i]!; } // leading zeros are not significant
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
      if (c === 0x2b || c === 0x2d) { eneg = c === 0x2d; c = buf[++i]!; }
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
    if (v === Infinity) return -2;
    out[k++] = neg ? -v : v;
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i]!;
    if (c === 0x2c) {
      c = buf[++i]!;
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++i]!;
      continue;
    }
    if (c === 0x5d) {
      count = k;
      result = out;
      big = EMPTY_F32;
      return i + 1;
    }
    return -2;
  }
}
const BAIL = new Bail();

// The body being parsed and the position in it: module state rather than closures, which were
// made (and named, under tsx) on every call. Parsing is synchronous, so calls never interleave.
let b: Buffer = EMPTY;
let u: Uint8Array = EMPTY; // the same bytes as a plain typed array: indexing a Buffer was slower here
let i = 0;

function ws() {
  let c = u[i];
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = u[++i];
}

function str(): string {
  // at the opening quote
  const s = ++i;
  const n = u.length;
  let plain = true;
  for (;;) {
    if (i >= n) throw BAIL;
    const c = u[i]!;
    if (c === 0x22) break;
    if (c === 0x5c) { plain = false; i += 2; continue; }
    if (c < 0x20) throw BAIL;
    if (c >= 0x80) plain = false;
    i++;
  }
  const e = i++;
  if (plain) return b.toString('latin1', s, e);
  return JSON.parse(b.toString('utf8', s - 1, e + 1)) as string;
}

const digit = (j: number) => u[j]! >= 0x30 && u[j]! <= 0x39;

/** A number anywhere but in input data: validated, and exactly what JSON.parse gives. */
function num(): number {
  let j = i;
  if (u[j] === 0x2d) j++;
  if (u[j] === 0x30) j++;
  else if (u[j]! >= 0x31 && u[j]! <= 0x39) { while (digit(j)) j++; }
  else throw BAIL;
  if (u[j] === 0x2e) {
    j++;
    if (!digit(j)) throw BAIL;
    while (digit(j)) j++;
  }
  if (u[j] === 0x65 || u[j] === 0x45) {
    j++;
    if (u[j] === 0x2b || u[j] === 0x2d) j++;
    if (!digit(j)) throw BAIL;
    while (digit(j)) j++;
  }
  const v = Number(b.toString('latin1', i, j));
  i = j;
  if (!Number.isFinite(v)) throw BAIL;
  return v;
}

/** `role`: 1 the root object, 2 the inputs array, 3 an input object (whose `data` may be read as float32). */
function value(role: number): unknown {
  ws();
  const c = u[i];
  if (c === 0x7b) {
    i++;
    const obj: Record<string, unknown> = {};
    ws();
    if (u[i] === 0x7d) { i++; return obj; }
    for (;;) {
      if (u[i] !== 0x22) throw BAIL;
      const key = str();
      if (key === '__proto__') throw BAIL;
      ws();
      if (u[i] !== 0x3a) throw BAIL;
      i++;
      let v: unknown;
      if (role === 3 && key === 'data') {
        ws();
        const end = u[i] === 0x5b ? readF32Array(u, i) : -1;
        if (end === -2) throw BAIL;
        if (end === -1) v = value(0);
        else {
          i = end;
          v = result.slice(0, count); // its own, exactly sized buffer
          result = scratch;
        }
      } else {
        v = value(role === 1 && key === 'inputs' ? 2 : 0);
      }
      obj[key] = v;
      ws();
      const d = u[i];
      if (d === 0x2c) { i++; ws(); continue; }
      if (d === 0x7d) { i++; return obj; }
      throw BAIL;
    }
  }
  if (c === 0x5b) {
    i++;
    const arr: unknown[] = [];
    ws();
    if (u[i] === 0x5d) { i++; return arr; }
    for (;;) {
      arr.push(value(role === 2 ? 3 : 0));
      ws();
      const d = u[i];
      if (d === 0x2c) { i++; continue; }
      if (d === 0x5d) { i++; return arr; }
      throw BAIL;
    }
  }
  if (c === 0x22) return str();
  if (c === 0x74 && u[i + 1] === 0x72 && u[i + 2] === 0x75 && u[i + 3] === 0x65) { i += 4; return true; }
  if (c === 0x66 && u[i + 1] === 0x61 && u[i + 2] === 0x6c && u[i + 3] === 0x73 && u[i + 4] === 0x65) { i += 5; return false; }
  if (c === 0x6e && u[i + 1] === 0x75 && u[i + 2] === 0x6c && u[i + 3] === 0x6c) { i += 4; return null; }
  return num();
}

export function parseInferJson(buf: Buffer, start = 0): unknown {
  b = buf;
  u = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  i = start;
  try {
    const v = value(1);
    ws();
    if (i !== u.length) return undefined;
    // Float32 data is only a faithful stand-in for an FP32 tensor's numbers: any other datatype
    // needs the exact numbers.
    const inputs = (v as { inputs?: unknown } | null)?.inputs;
    if (Array.isArray(inputs)) {
      for (const t of inputs) {
        if (t && typeof t === 'object' && (t as { data?: unknown }).data instanceof Float32Array && (t as { datatype?: unknown }).datatype !== 'FP32') return undefined;
      }
    }
    return v;
  } catch (e) {
    if (e === BAIL) return undefined;
    throw e;
  } finally {
    b = EMPTY; // neither the body nor a large array outlives the call
    u = EMPTY;
    big = EMPTY_F32;
    result = scratch;
  }
}
