// Column names of a batch's CSV and Parquet output: a one-value output is one scalar column named
// as the output (`label`), a classifier's per-class output is named by class (`probabilities_yes`),
// anything else by position (`output_0`, `output_1`, ...).
import type { TensorSpec } from '../tensors.ts';

/** One value per row whatever the batch: shape [n] or [n, 1]. */
export function isScalarOutput(o: TensorSpec): boolean {
  return o.shape.length === 1 || (o.shape.length === 2 && o.shape[1] === 1);
}

/** A class as part of a column name: letters, digits, `_`, `-` and `.` kept, anything else `_`. */
const classPart = (c: string | number) => String(c).replace(/[^\p{L}\p{N}_.-]+/gu, '_');

/** The CSV columns of output `name` holding `count` values per row. */
export function outputColumnNames(name: string, count: number, classes?: readonly (string | number)[], scalar = count === 1): string[] {
  if (scalar && count === 1) return [name];
  if (classes && classes.length === count) {
    const names = classes.map((c) => `${name}_${classPart(c)}`);
    // Two classes that read the same once cleaned would make ambiguous columns: fall back to positions.
    if (new Set(names).size === names.length) return names;
  }
  return Array.from({ length: count }, (_, i) => `${name}_${i}`);
}
