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

/** The values of feature (input, column) in rows [0, n) of the tensors; undefined when the input is missing. */
export function columnOf(inputs: RowsOf[], input: string, column: number): { n: number; at: (r: number) => unknown } | undefined {
  const t = inputs.find((i) => i.name === input);
  if (!t) return undefined;
  const n = t.shape[0] ?? 1;
  const width = t.shape.length > 1 ? t.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
  return { n, at: (r) => t.data[r * width + column] };
}

/** Rows as one value per slot (for a reference built from served rows), at most `limit`. */
export function featureRows(slots: Slot[], inputs: RowsOf[], limit: number): (number | string)[][] {
  const cols = slots.map((s) => columnOf(inputs, s.input, s.column));
  if (cols.some((c) => !c)) return [];
  const n = Math.min(limit, ...cols.map((c) => c!.n));
  const out: (number | string)[][] = [];
  for (let r = 0; r < n; r++) {
    out.push(
      slots.map((s, k) => {
        const v = cols[k]!.at(r);
        return s.categorical ? String(v) : typeof v === 'bigint' ? Number(v) : Number(v);
      }),
    );
  }
  return out;
}
