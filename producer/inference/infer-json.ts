// Parses an inference request body in one pass over its bytes, reading the `data` array of each
// input straight into a Float32Array. JSON.parse was the largest single cost of the producer per
// request (~50 us for one 512-float row): it makes a heap number per element, which the request
// then turns into a Float32Array anyway. The result is what JSON.parse gives, except that flat
// all-number `inputs[i].data` arrays are Float32Arrays holding exactly Math.fround of JSON.parse's
// numbers. Anything unusual (escapes aside, which are handed to JSON.parse) returns undefined, and
// the caller uses JSON.parse, which also words the error of a malformed body.

import { f32Read, readF32Array as readInto } from '../../core/rows/f32.ts';

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

/**
 * Reads the array starting at buf[start] ('[') into result[0, count) (core/rows/f32.ts). Returns
 * the index after its ']', -1 when the array holds anything but numbers (or nothing), -2 when it
 * is malformed or a number leaves float32's range.
 */
function readF32Array(buf: Uint8Array, start: number): number {
  // Elements take at least two bytes ("0,"): the bytes left bound the count. A large body gets an
  // array of its own rather than a scratch buffer kept for good.
  const bound = Math.ceil((buf.length - start) / 2) + 1;
  if (bound > scratch.length) {
    if (bound <= SCRATCH_MAX) scratch = new Float32Array(bound);
    else big = new Float32Array(bound);
  }
  const out = bound > SCRATCH_MAX ? big : scratch;
  const end = readInto(buf, start, out, 0, out.length);
  if (end < 0) return end;
  count = f32Read.count;
  result = out;
  big = EMPTY_F32;
  return end;
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
    if (c === 0x5c) {
      plain = false;
      i += 2;
      continue;
    }
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
  else if (u[j]! >= 0x31 && u[j]! <= 0x39) {
    while (digit(j)) j++;
  } else throw BAIL;
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
    if (u[i] === 0x7d) {
      i++;
      return obj;
    }
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
      if (d === 0x2c) {
        i++;
        ws();
        continue;
      }
      if (d === 0x7d) {
        i++;
        return obj;
      }
      throw BAIL;
    }
  }
  if (c === 0x5b) {
    i++;
    const arr: unknown[] = [];
    ws();
    if (u[i] === 0x5d) {
      i++;
      return arr;
    }
    for (;;) {
      arr.push(value(role === 2 ? 3 : 0));
      ws();
      const d = u[i];
      if (d === 0x2c) {
        i++;
        continue;
      }
      if (d === 0x5d) {
        i++;
        return arr;
      }
      throw BAIL;
    }
  }
  if (c === 0x22) return str();
  if (c === 0x74 && u[i + 1] === 0x72 && u[i + 2] === 0x75 && u[i + 3] === 0x65) {
    i += 4;
    return true;
  }
  if (c === 0x66 && u[i + 1] === 0x61 && u[i + 2] === 0x6c && u[i + 3] === 0x73 && u[i + 4] === 0x65) {
    i += 5;
    return false;
  }
  if (c === 0x6e && u[i + 1] === 0x75 && u[i + 2] === 0x6c && u[i + 3] === 0x6c) {
    i += 4;
    return null;
  }
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
        if (t && typeof t === 'object' && (t as { data?: unknown }).data instanceof Float32Array && (t as { datatype?: unknown }).datatype !== 'FP32')
          return undefined;
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
