// The fast path of the batch row parsers: a JSONL or CSV row read from its bytes straight into the
// Float32Arrays of a run, with no intermediate array, object or number per value. It covers the
// common shape (FP32 inputs of fixed size, flat arrays, plain ids); on anything else it answers
// "bail" and the caller parses the row the ordinary way (parse.ts), which also words every error,
// so results are identical either way. MODELQ_FAST_ROWS=0 turns it off (to re-measure): the
// worker's config (core/config.ts) reaches the engine threads, which pass it here as `enabled`.
import type { TensorSpec } from '../../core/tensors.ts';
import { csvColumns } from '../../core/rows/parse.ts';
import { f32Read, readF32, readF32Array } from '../../core/rows/f32.ts';
import type { RowFormat } from '../../core/rows/scanner.ts';

export interface FastPlan {
  format: RowFormat;
  /** Per input: its name as bytes and its values per row. */
  inputs: { name: Buffer; per: number }[];
  /** CSV: the number of columns and the id column (-1 when none). */
  columns: number;
  idColumn: number;
}

/** What a parsed row's id is, as JSON text: '' when the row has none, null when the row needs the ordinary parser. */
export type FastId = string | null;

/** A plan when every input is FP32 with a fixed row shape (CSV: one 2-D input), else null. */
export function fastPlan(format: RowFormat, inputs: TensorSpec[], header: string | undefined, enabled = true): FastPlan | null {
  if (!enabled || !inputs.length) return null;
  const plan: FastPlan = { format, inputs: [], columns: 0, idColumn: -1 };
  for (const s of inputs) {
    const row = s.shape.slice(1);
    if (s.datatype !== 'FP32' || row.some((d) => d < 0)) return null;
    plan.inputs.push({ name: Buffer.from(s.name), per: row.reduce((a, b) => a * b, 1) });
  }
  if (format === 'csv') {
    const cols = csvColumns(header ?? '');
    plan.columns = cols.length;
    plan.idColumn = cols.indexOf('id');
    if (inputs.length !== 1 || plan.inputs[0]!.per !== cols.length - (plan.idColumn >= 0 ? 1 : 0)) return null;
  }
  return plan;
}

const isWs = (c: number | undefined) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;

/** The end of a plain JSON string starting after its opening quote (no escapes, no control bytes), or -1. */
function plainString(u: Uint8Array, i: number, e: number): number {
  for (; i < e; i++) {
    const c = u[i]!;
    if (c === 0x22) return i;
    if (c === 0x5c || c < 0x20) return -1;
  }
  return -1;
}

/** Whether u[a, b) equals `name`. */
function same(u: Uint8Array, a: number, b: number, name: Buffer): boolean {
  if (b - a !== name.length) return false;
  for (let k = 0; k < name.length; k++) if (u[a + k] !== name[k]) return false;
  return true;
}

const seen: boolean[] = [];
const utf8 = new TextDecoder();

/** u[a, b) as text: short ASCII (the usual id) without a Buffer object per row. */
function text(u: Uint8Array, a: number, b: number): string {
  if (b - a <= 32) {
    let s = '';
    for (let k = a; k < b; k++) {
      const c = u[k]!;
      if (c >= 0x80) return utf8.decode(u.subarray(a, b));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return utf8.decode(u.subarray(a, b));
}

/** Reads the JSONL row u[s, e) into feeds[j] at row `slot`; see FastId. */
export function fastJsonlRow(u: Uint8Array, s: number, e: number, plan: FastPlan, feeds: Float32Array[], slot: number): FastId {
  const inputs = plan.inputs;
  for (let j = 0; j < inputs.length; j++) seen[j] = false;
  let id = '';
  let found = 0;
  let i = s;
  while (isWs(u[i])) i++;
  if (u[i] !== 0x7b) return null;
  i++;
  while (isWs(u[i])) i++;
  for (;;) {
    if (u[i] !== 0x22) return null;
    const ks = i + 1;
    const ke = plainString(u, ks, e);
    if (ke < 0) return null;
    i = ke + 1;
    while (isWs(u[i])) i++;
    if (u[i] !== 0x3a) return null;
    i++;
    while (isWs(u[i])) i++;
    let j = 0;
    while (j < inputs.length && !same(u, ks, ke, inputs[j]!.name)) j++;
    if (j < inputs.length) {
      if (seen[j] || u[i] !== 0x5b) return null;
      const per = inputs[j]!.per;
      const end = readF32Array(u, i, feeds[j]!, slot * per, per);
      if (end < 0 || f32Read.count !== per) return null;
      seen[j] = true;
      found++;
      i = end;
    } else if (ke - ks === 2 && u[ks] === 0x69 && u[ks + 1] === 0x64 && id === '') {
      const vs = i;
      if (u[i] === 0x22) {
        const ve = plainString(u, i + 1, e);
        if (ve < 0) return null;
        i = ve + 1;
      } else {
        // An integer written as JSON.stringify writes it (no "-0", at most 15 digits).
        if (u[i] === 0x2d) i++;
        const ds = i;
        while (u[i]! >= 0x30 && u[i]! <= 0x39) i++;
        const digits = i - ds;
        if (digits === 0 || digits > 15 || (u[ds] === 0x30 && (digits > 1 || ds > vs))) return null;
      }
      id = text(u, vs, i);
    } else return null;
    while (isWs(u[i])) i++;
    if (u[i] === 0x2c) {
      i++;
      while (isWs(u[i])) i++;
      continue;
    }
    if (u[i] !== 0x7d) return null;
    i++;
    break;
  }
  while (i < e && isWs(u[i])) i++;
  return i === e && found === inputs.length ? id : null;
}

/** Reads the CSV row u[s, e) (no quotes) into feeds[0] at row `slot`; see FastId. */
export function fastCsvRow(u: Uint8Array, s: number, e: number, plan: FastPlan, feeds: Float32Array[], slot: number): FastId {
  const out = feeds[0]!;
  let at = slot * plan.inputs[0]!.per;
  let id = '';
  let i = s;
  for (let c = 0; c < plan.columns; c++) {
    if (c > 0) {
      if (u[i] !== 0x2c) return null;
      i++;
    }
    if (c === plan.idColumn) {
      const fs = i;
      while (i < e && u[i] !== 0x2c && u[i] !== 0x0a) {
        const b = u[i]!;
        if (b === 0x22 || b === 0x5c || b < 0x20) return null;
        i++;
      }
      id = `"${text(u, fs, i)}"`;
      continue;
    }
    while (u[i] === 0x20 || u[i] === 0x09) i++;
    const v = readF32(u, i);
    if (v !== v) return null;
    out[at++] = v;
    i = f32Read.end;
    while (u[i] === 0x20 || u[i] === 0x09 || u[i] === 0x0d) i++;
  }
  if (u[i] === 0x0a) i++;
  return i === e ? id : null;
}
