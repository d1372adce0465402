// Output and error lines of batch scoring, as JSONL text built per run rather than per row: the
// same text JSON.stringify gives for { row, id, outputs: { name: [values] } }, without the arrays
// and objects it would need per row.
import { elementCount, type RawTensor } from '../tensors.ts';

/** A scored row: its number in the file and its id as JSON text ('' when it has none). */
export interface RowRef {
  n: number;
  id: string;
}

/** A tensor padded per row whose lines carry only each row's first `rowLengths[row]` values (explained text: its words). */
export type RowLengths = RawTensor & { rowLengths?: ArrayLike<number> };

/** JSON.stringify's text for one number of an output. */
const num = (x: number) => (Number.isFinite(x) ? String(x) : 'null');

/** The text a versioned batch's output lines carry before their outputs (versionTag(3): `"model_version":3,`). */
export const versionTag = (version: number | undefined): string => (version === undefined ? '' : `"model_version":${version},`);

/**
 * Lines for rows[a, b), whose outputs are rows [from, from + b - a) of `result`; each line ends with
 * '\n'. `tag` (versionTag) goes between the id and the outputs.
 */
export function outputLines(rows: readonly RowRef[], a: number, b: number, result: Record<string, RawTensor>, from = 0, tag = ''): string {
  const outs = Object.entries(result).map(([name, t]) => ({
    key: `${JSON.stringify(name)}:[`,
    per: elementCount(t.dims.slice(1)),
    data: t.data,
    lengths: (t as RowLengths).rowLengths,
  }));
  let text = '';
  for (let r = a; r < b; r++) {
    const row = rows[r]!;
    text += row.id ? `{"row":${row.n},"id":${row.id},${tag}"outputs":{` : `{"row":${row.n},${tag}"outputs":{`;
    const i = from + r - a;
    for (let o = 0; o < outs.length; o++) {
      const { key, per: width, data, lengths } = outs[o]!;
      const per = lengths ? lengths[i]! : width;
      text += o ? `,${key}` : key;
      const s = i * width;
      if (Array.isArray(data)) {
        for (let k = 0; k < per; k++) text += (k ? ',' : '') + JSON.stringify(data[s + k]);
      } else if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
        for (let k = 0; k < per; k++) text += (k ? ',' : '') + num(Number(data[s + k]!));
      } else {
        const d = data as Float32Array;
        for (let k = 0; k < per; k++) text += (k ? ',' : '') + num(d[s + k]!);
      }
      text += ']';
    }
    text += '}}\n';
  }
  return text;
}

/** One error line, with '\n'. */
export function errorLine(n: number, id: string, error: { code: string; message: string }): string {
  return `{"row":${n}${id ? `,"id":${id}` : ''},"error":${JSON.stringify({ code: error.code, message: error.message })}}\n`;
}

/** The JSON text of a parsed id, as FastId/RowRef carry it. */
export const idText = (id: unknown): string => (id === undefined ? '' : JSON.stringify(id));

/** A string as UTF-8 in a buffer of its own (not Node's shared pool), so it can be transferred. */
export function ownBytes(text: string): Uint8Array {
  const out = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  out.write(text);
  return out;
}
