// The features drift watches in a request: every column of each [N, K] input and each [N] or [N, 1]
// input, named, and the values of those features read from a request's (or a batch's) rows.
import { badRequest } from '../errors.ts';
import type { TensorSpec } from '../tensors.ts';

/** One feature's place in a request: input name and column, and whether it is numeric or categorical. */
export interface Slot {
  name: string;
  input: string;
  column: number;
  categorical: boolean;
  /** For categorical slots: profile as text (true) or as categories (false); unset, by the values' word count. */
  text?: boolean;
}

/**
 * The features drift is watched on: every column of each [N, K] input (K fixed) and each [N] or
 * [N, 1] input; BYTES inputs are categorical. `names` names them in that order (default: the input
 * name for one-column inputs, `input[j]` otherwise). Other inputs (images, sequences) are not profiled.
 */
export function modelSlots(inputs: TensorSpec[], names?: string[]): Slot[] {
  const slots: Slot[] = [];
  for (const i of inputs) {
    const width = i.shape.length === 1 ? 1 : i.shape.length === 2 && i.shape[1]! > 0 ? i.shape[1]! : 0;
    for (let j = 0; j < width; j++)
      slots.push({ name: width === 1 ? i.name : `${i.name}[${j}]`, input: i.name, column: j, categorical: i.datatype === 'BYTES' });
  }
  if (!slots.length) throw badRequest('drift needs inputs shaped [rows] or [rows, features] with a fixed feature count');
  if (names) {
    if (names.length !== slots.length) throw badRequest(`columns: ${names.length} names given, the model's inputs have ${slots.length} features`);
    names.forEach((n, k) => {
      slots[k]!.name = n;
    });
  }
  return slots;
}

/** A tensor's rows as drift reads them (a request's input, or rows sampled from a batch). */
export interface RowsOf {
  name: string;
  shape: number[];
  data: ArrayLike<unknown>;
}

/** Where feature (input, column) sits in rows of `inputs`: the tensor's data and row width; undefined when the input is missing. */
export interface Column {
  n: number;
  data: ArrayLike<unknown>;
  width: number;
  column: number;
}

/**
 * Feature (input, column) of rows [0, n): value r is `data[r * width + column]`. A plain record, no
 * closure: drift reads every feature of a sampled request, and a closure made per feature (named
 * by tsx on each creation) cost more than the reads.
 */
export function columnOf(inputs: RowsOf[], input: string, column: number): Column | undefined {
  let t: RowsOf | undefined;
  for (let k = 0; k < inputs.length; k++)
    if (inputs[k]!.name === input) {
      t = inputs[k];
      break;
    }
  if (!t) return undefined;
  const s = t.shape;
  let width = 1;
  for (let d = 1; d < s.length; d++) width *= s[d]!;
  return { n: s[0] ?? 1, data: t.data, width, column };
}

/** Rows as one value per slot (for a reference built from served rows), at most `limit`. */
export function featureRows(slots: Slot[], inputs: RowsOf[], limit: number): (number | string)[][] {
  const cols = slots.map((s) => columnOf(inputs, s.input, s.column));
  if (cols.some((c) => !c)) return [];
  const n = Math.min(limit, ...cols.map((c) => c!.n));
  const out: (number | string)[][] = [];
  for (let r = 0; r < n; r++) {
    const row = new Array<number | string>(slots.length);
    for (let k = 0; k < slots.length; k++) {
      const c = cols[k]!;
      const v = c.data[r * c.width + c.column];
      row[k] = slots[k]!.categorical ? String(v) : Number(v);
    }
    out.push(row);
  }
  return out;
}
