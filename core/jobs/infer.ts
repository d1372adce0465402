// Job kind "infer" on the `infer` queue: one or more validated online requests for one model
// version. Several requests may share a job (the producer coalesces them); each gets its own answer.
import { z } from 'zod';
import { errorDataSchema } from '../errors.ts';
import { processingSchema } from '../processing/spec.ts';
import { pipelineSchema } from '../processing/pipeline.ts';
import { DATATYPES, elementCount, fromOrtType, tensorSchema, toOrtType, toRaw, TYPED_ARRAYS, type Datatype, type RawTensor, type Tensor } from '../tensors.ts';

export const modelTargetSchema = z.object({
  name: z.string(),
  version: z.number().int().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The version's declared processing: requests then carry files, which the worker turns into tensors. */
  processing: processingSchema.optional(),
  /** A pipeline's steps (core/processing/pipeline.ts): the worker runs them, each on its own model. */
  pipeline: pipelineSchema.optional(),
});
export type ModelTarget = z.infer<typeof modelTargetSchema>;

/**
 * A numeric tensor as its raw little-endian bytes in base64. Job data and return values travel as
 * JSON through Redis; a float written as JSON text is ~4x larger than base64 and costs a number
 * formatter in one process and a number parser in the other, which was most of the per-request
 * cost of the online path (profiles in the online-batching issue).
 */
export const packedTensorSchema = z.object({
  name: z.string(),
  datatype: z.enum(DATATYPES),
  shape: z.array(z.number().int().min(0)),
  b64: z.string(),
});
export type PackedTensor = z.infer<typeof packedTensorSchema>;
/** JSON data (from older producers, and BYTES / FP16 tensors) or packed bytes. */
export const jobTensorSchema = z.union([packedTensorSchema, tensorSchema]);
export type JobTensor = Tensor | PackedTensor;

export const inferRequestSchema = z.object({
  inputs: z.array(jobTensorSchema).min(1),
  /** Output names to return; all when absent. */
  outputs: z.array(z.string()).optional(),
  /** Epoch ms after which nobody waits for the answer: then the request is not computed. */
  deadline: z.number().optional(),
  /** Drawn for drift by the producer (a model with declared processing: the worker summarises its rows, core/drift/processed.ts). */
  drift: z.boolean().optional(),
});
export type InferRequest = z.infer<typeof inferRequestSchema>;

/** Dynamic batching settings of the model (registry config) and whether it can batch at all. */
export const batchingSchema = z.object({
  maxBatch: z.number().int().min(1),
  maxDelayMs: z.number().min(0),
  instances: z.number().int().min(1),
  /** Every input and output has a dynamic first dimension. */
  batchable: z.boolean(),
});
export type Batching = z.infer<typeof batchingSchema>;

export const inferJobSchema = z.object({
  model: modelTargetSchema,
  /** Absent in jobs from older producers: then requests run one by one. */
  batching: batchingSchema.optional(),
  /** The producer reads packed outputs; absent (older producers): outputs come back as JSON data. */
  packed: z.boolean().optional(),
  requests: z.array(inferRequestSchema).min(1),
});
export type InferJob = z.infer<typeof inferJobSchema>;

export const inferResponseSchema = z.union([
  z.object({ ok: z.literal(true), outputs: z.array(jobTensorSchema) }),
  z.object({ ok: z.literal(false), error: errorDataSchema }),
]);
export type InferResponse = z.infer<typeof inferResponseSchema>;

export const inferResultSchema = z.object({ responses: z.array(inferResponseSchema) });
export type InferResult = z.infer<typeof inferResultSchema>;

/**
 * The progress an online job reports when its model is not loaded on the worker yet: `loading`
 * when the load starts (epoch ms), `loaded` with its duration when it ends. The producer does not
 * count that time against the request's timeout, and answers 503 with Retry-After when the timeout
 * passes while the load is still going.
 */
export const loadProgressSchema = z.union([z.object({ model: z.string(), loading: z.number() }), z.object({ model: z.string(), loaded: z.number() })]);
export type LoadProgress = z.infer<typeof loadProgressSchema>;

/** Upper bounds of the batch-size histogram buckets (rows per onnxruntime run). */
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

// Packing. Byte order is the host's; every platform onnxruntime-node ships for is little-endian.
const ARRAYS = TYPED_ARRAYS;

export const isPacked = (t: WireTensor): t is PackedTensor => 'b64' in t;

/**
 * A numeric tensor as its raw bytes, never text: how the online stream transport carries tensors
 * (core/jobs/online-wire.ts), and how its answers reach the doors. Only in memory and in binary
 * frames, never in JSON job data.
 */
export interface ByteTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  bytes: Uint8Array;
}
/** Any tensor form a request or an answer takes between a door and an engine. */
export type WireTensor = JobTensor | ByteTensor;
export const isBytes = (t: WireTensor): t is ByteTensor => 'bytes' in t;

/** Validated protocol data -> a view of its bytes (no copy when the data is already a typed array); BYTES and FP16 stay JSON. */
export function bytesTensor(t: JobTensor): WireTensor {
  if (isPacked(t) || !ARRAYS[t.datatype]) return t;
  const d = toRaw(t).data as ArrayBufferView;
  return { name: t.name, datatype: t.datatype, shape: t.shape, bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
}

/** An engine output as a byte tensor (a view, no copy); null for strings. */
export function bytesOfRaw(name: string, r: RawTensor): ByteTensor | null {
  const datatype = fromOrtType(r.type);
  if (!ARRAYS[datatype] || Array.isArray(r.data)) return null;
  const d = r.data;
  return { name, datatype, shape: r.dims, bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) };
}

/**
 * Byte tensor -> a typed array over the same bytes (a view, no copy) when they are aligned for
 * the datatype, as a frame's blobs are; a copy only when they are not. Null when the bytes do not
 * match the shape. A view shares its ArrayBuffer: Engine.run copies such feeds before they cross
 * to a thread, the batcher's concatenation copies them anyway.
 */
export function rawOfBytes(t: ByteTensor): RawTensor | null {
  const Ctor = ARRAYS[t.datatype];
  if (!Ctor) return null;
  const n = elementCount(t.shape);
  if (t.bytes.byteLength !== n * Ctor.BYTES_PER_ELEMENT) return null;
  const { buffer, byteOffset } = t.bytes;
  if (byteOffset % Ctor.BYTES_PER_ELEMENT === 0 && buffer instanceof ArrayBuffer) {
    return { type: toOrtType(t.datatype), dims: [...t.shape], data: new Ctor(buffer, byteOffset, n) };
  }
  const buf = new ArrayBuffer(t.bytes.byteLength);
  new Uint8Array(buf).set(t.bytes);
  return { type: toOrtType(t.datatype), dims: [...t.shape], data: new Ctor(buf, 0, n) };
}

function b64Of(data: ArrayBufferView): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}

/** Validated protocol data -> packed bytes; BYTES and FP16 (which onnxruntime gets as FP32 JSON) stay JSON. */
export function packTensor(t: JobTensor): JobTensor {
  if (isPacked(t) || !ARRAYS[t.datatype]) return t;
  return { name: t.name, datatype: t.datatype, shape: t.shape, b64: b64Of(toRaw(t).data as ArrayBufferView) };
}

/** An engine output as a job tensor: packed when the reader asked for it. */
export function packRaw(name: string, r: RawTensor): PackedTensor | null {
  const datatype = fromOrtType(r.type);
  if (!ARRAYS[datatype] || Array.isArray(r.data)) return null;
  return { name, datatype, shape: r.dims, b64: b64Of(r.data) };
}

/**
 * Packed bytes -> a typed array in its own, exactly sized ArrayBuffer (aligned, and transferable
 * to an engine thread). Null when the bytes do not match the shape.
 */
export function unpackRaw(t: PackedTensor): RawTensor | null {
  const Ctor = ARRAYS[t.datatype];
  if (!Ctor) return null;
  const n = elementCount(t.shape);
  const bytes = n * Ctor.BYTES_PER_ELEMENT;
  if (Buffer.byteLength(t.b64, 'base64') !== bytes) return null;
  const buf = Buffer.allocUnsafeSlow(bytes); // unpooled: offset 0, its own ArrayBuffer
  if (buf.write(t.b64, 'base64') !== bytes) return null;
  return { type: toOrtType(t.datatype), dims: [...t.shape], data: new Ctor(buf.buffer as ArrayBuffer, 0, n) };
}

/**
 * JSON.stringify(toProtocolTensor(t)), written straight from the tensor's bytes for a byte tensor:
 * no array of boxed numbers and no object per answer (a REST answer's output was a few percent of
 * the producer's CPU per request as Array.from + JSON.stringify). Numbers print as JSON.stringify
 * prints them (non-finite ones as null); other forms go through toProtocolTensor.
 */
export function protocolTensorJson(t: WireTensor): string {
  if (!isBytes(t)) return JSON.stringify(toProtocolTensor(t));
  const raw = rawOfBytes(t);
  if (!raw) return JSON.stringify(toProtocolTensor(t)); // throws its error
  const d = raw.data as unknown as ArrayLike<number | bigint>;
  const bool = t.datatype === 'BOOL';
  let data = '';
  for (let i = 0; i < d.length; i++) {
    const x = d[i]!;
    const v = typeof x === 'bigint' ? Number(x) : x;
    data += (i ? ',' : '') + (bool ? (v !== 0 ? 'true' : 'false') : Number.isFinite(v) ? String(v) : 'null');
  }
  return `{"name":${JSON.stringify(t.name)},"datatype":${JSON.stringify(t.datatype)},"shape":${JSON.stringify(t.shape)},"data":[${data}]}`;
}

/** Any job tensor -> protocol JSON (flat data), as the HTTP answer carries it. */
export function toProtocolTensor(t: WireTensor): Tensor {
  if (!isPacked(t) && !isBytes(t)) return t;
  const raw = isBytes(t) ? rawOfBytes(t) : unpackRaw(t);
  if (!raw) throw new Error(`output "${t.name}": its bytes do not match shape [${t.shape.join(',')}] of ${t.datatype}`);
  const d = raw.data as ArrayBufferView;
  let data: (number | boolean)[];
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) data = Array.from(d, Number);
  else if (t.datatype === 'BOOL') data = Array.from(d as Uint8Array, (x) => x !== 0);
  else data = Array.from(d as Float32Array);
  return { name: t.name, datatype: t.datatype, shape: t.shape, data };
}
