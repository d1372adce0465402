// Tensor datatypes: Open Inference Protocol names <-> onnxruntime type names, and conversion of
// protocol JSON data (flat or nested) into the typed arrays onnxruntime wants, and back.
import { z } from 'zod';

export const DATATYPES = ['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;
export type Datatype = (typeof DATATYPES)[number];

const TO_ORT: Record<Datatype, string> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
};
const FROM_ORT = Object.fromEntries(Object.entries(TO_ORT).map(([k, v]) => [v, k])) as Record<string, Datatype>;

export const toOrtType = (d: Datatype): string => TO_ORT[d];
export function fromOrtType(t: string): Datatype {
  const d = FROM_ORT[t];
  if (!d) throw new Error(`unsupported tensor type "${t}"`);
  return d;
}

/** A model's input or output as the registry and the protocol describe it; -1 marks a dynamic dimension. */
export const tensorSpecSchema = z.object({
  name: z.string(),
  datatype: z.enum(DATATYPES),
  shape: z.array(z.number().int()),
});
export type TensorSpec = z.infer<typeof tensorSpecSchema>;

/**
 * An array checked in O(1): zod walking every element of a large tensor costs tens of
 * milliseconds of main thread; elements are checked once, by flattenData, at the HTTP edge.
 * A Float32Array is the producer's parse of flat FP32 data (producer/inference/infer-json.ts).
 */
export const dataArray = <T = number | string | boolean>(description = 'Tensor data, flat in row-major order') =>
  z.custom<T[]>((v) => Array.isArray(v) || v instanceof Float32Array, 'must be an array').meta({ description, type: 'array' });

/** A tensor moving between processes: flat data, as JSON allows. INT64/UINT64 travel as numbers. */
export const tensorSchema = z.object({
  name: z.string(),
  datatype: z.enum(DATATYPES),
  shape: z.array(z.number().int().min(0)),
  data: dataArray(),
});
export type Tensor = z.infer<typeof tensorSchema>;

/** What crosses to an engine thread: onnxruntime type name, dims and a typed array (or strings). */
export interface RawTensor {
  type: string;
  dims: number[];
  data: ArrayBufferView | string[];
}

export type TypedArray =
  Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/** A typed array class, built by length or over a buffer. */
export interface TypedArrayClass {
  readonly BYTES_PER_ELEMENT: number;
  new (n: number): TypedArray;
  new (b: ArrayBuffer, offset: number, n: number): TypedArray;
}

/** The typed array that carries each numeric protocol datatype (BOOL as bytes). */
export const TYPED_ARRAYS: Partial<Record<Datatype, TypedArrayClass>> = {
  FP32: Float32Array,
  FP64: Float64Array,
  INT8: Int8Array,
  UINT8: Uint8Array,
  INT16: Int16Array,
  UINT16: Uint16Array,
  INT32: Int32Array,
  UINT32: Uint32Array,
  INT64: BigInt64Array,
  UINT64: BigUint64Array,
  BOOL: Uint8Array,
};

export const elementCount = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Converts protocol JSON data to a typed array for onnxruntime. Assumes values were validated. */
export function toRaw(t: Tensor): RawTensor {
  const d = t.data;
  let data: ArrayBufferView | string[];
  switch (t.datatype) {
    case 'FP32':
      data = d instanceof Float32Array ? d : Float32Array.from(d as number[]);
      break;
    case 'FP64':
      data = Float64Array.from(d as number[]);
      break;
    case 'INT8':
      data = Int8Array.from(d as number[]);
      break;
    case 'UINT8':
      data = Uint8Array.from(d as number[]);
      break;
    case 'INT16':
      data = Int16Array.from(d as number[]);
      break;
    case 'UINT16':
      data = Uint16Array.from(d as number[]);
      break;
    case 'INT32':
      data = Int32Array.from(d as number[]);
      break;
    case 'UINT32':
      data = Uint32Array.from(d as number[]);
      break;
    case 'INT64':
      data = BigInt64Array.from(d as number[], (x) => BigInt(x));
      break;
    case 'UINT64':
      data = BigUint64Array.from(d as number[], (x) => BigInt(x));
      break;
    case 'BOOL':
      data = Uint8Array.from(d as (boolean | number)[], (x) => (x ? 1 : 0));
      break;
    case 'FP16':
      throw new Error('FP16 inputs are sent as FP32 over JSON; the model should cast');
    case 'BYTES':
      data = (d as unknown[]).map(String);
      break;
  }
  return { type: toOrtType(t.datatype), dims: [...t.shape], data };
}

/** Converts an onnxruntime output to protocol JSON (flat data). */
export function fromRaw(name: string, r: RawTensor): Tensor {
  const datatype = fromOrtType(r.type);
  let data: (number | string | boolean)[];
  if (Array.isArray(r.data)) data = r.data;
  else if (r.data instanceof BigInt64Array || r.data instanceof BigUint64Array) data = Array.from(r.data, Number);
  else if (datatype === 'BOOL') data = Array.from(r.data as Uint8Array, (x) => x !== 0);
  else data = Array.from(r.data as Float32Array);
  return { name, datatype, shape: r.dims, data };
}

function checkValue(datatype: Datatype, v: unknown): string | null {
  switch (datatype) {
    case 'BYTES':
      return typeof v === 'string' ? null : 'a string';
    case 'BOOL':
      return typeof v === 'boolean' || v === 0 || v === 1 ? null : 'a boolean';
    case 'FP16':
    case 'FP32':
    case 'FP64':
      return typeof v === 'number' && Number.isFinite(v) ? null : 'a finite number';
    default: {
      if (typeof v !== 'number' || !Number.isInteger(v)) return 'an integer';
      const [lo, hi] = INT_RANGE[datatype]!;
      return v >= lo && v <= hi ? null : `an integer in [${lo}, ${hi}]`;
    }
  }
}
const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  INT8: [-128, 127],
  UINT8: [0, 255],
  INT16: [-32768, 32767],
  UINT16: [0, 65535],
  INT32: [-(2 ** 31), 2 ** 31 - 1],
  UINT32: [0, 2 ** 32 - 1],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};

/**
 * Flattens protocol data (flat, or nested to match `shape`) and checks every element against the
 * datatype. Returns the flat array or a message naming what is wrong.
 */
export function flattenData(
  data: unknown,
  shape: readonly number[],
  datatype: Datatype,
  label: string,
  /** Accept NaN for a float datatype: a column-input model's missing value (core/rows/columns.ts). */
  nan = false,
): { data: (number | string | boolean)[] } | { error: string } {
  if (!Array.isArray(data) && !(data instanceof Float32Array)) return { error: `${label}.data must be an array` };
  const expected = elementCount(shape);
  let flat: unknown[];
  if (shape.length > 1 && Array.isArray(data[0])) {
    flat = [];
    const walk = (node: unknown, depth: number, path: string): string | null => {
      if (depth === shape.length) {
        if (Array.isArray(node)) return `${label}.data${path} is nested deeper than shape [${shape.join(',')}]`;
        (flat as unknown[]).push(node);
        return null;
      }
      if (!Array.isArray(node)) return `${label}.data${path} must be an array of ${shape[depth]} (shape [${shape.join(',')}])`;
      if (node.length !== shape[depth]) return `${label}.data${path} has ${node.length} elements, shape [${shape.join(',')}] says ${shape[depth]}`;
      for (let i = 0; i < node.length; i++) {
        const err = walk(node[i], depth + 1, `${path}[${i}]`);
        if (err) return err;
      }
      return null;
    };
    const err = walk(data, 0, '');
    if (err) return { error: err };
  } else {
    flat = data as unknown[];
  }
  if (flat.length !== expected) {
    return { error: `${label} has ${flat.length} elements but shape [${shape.join(',')}] needs ${expected}` };
  }
  const isFloat = datatype === 'FP32' || datatype === 'FP64' || datatype === 'FP16';
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (isFloat && typeof v === 'number' && (Number.isFinite(v) || (nan && Number.isNaN(v)))) continue; // the common case, without a call
    const want = checkValue(datatype, v);
    if (want) return { error: `${label}.data[${i}] must be ${want} for datatype ${datatype}, got ${JSON.stringify(v)?.slice(0, 40)}` };
  }
  return { data: flat as (number | string | boolean)[] };
}
