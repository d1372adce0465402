// The online stream transport's wire form (MODELQ_ONLINE_TRANSPORT=streams): a coalesced group of
// requests on its way to a worker, and the worker's messages back, each as one binary frame: a
// version byte, the length of a JSON head, the head, then every numeric tensor's raw bytes, each
// starting at a multiple of 8. The head names tensors' datatypes and shapes and points at their
// bytes; numbers are never written as text (BYTES and FP16 tensors, which have no typed array
// here, stay JSON in the head). Every length read from a frame is checked against the bytes present.
import { z } from 'zod';
import { AppError, errorDataSchema, type ErrorData } from '../errors.ts';
import { DATATYPES, elementCount, tensorSchema, TYPED_ARRAYS } from '../tensors.ts';
import { batchingSchema, isBytes, isPacked, modelTargetSchema, type Batching, type ByteTensor, type ModelTarget, type WireTensor } from './infer.ts';

const VERSION = 1;
const ALIGN = 8;
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** The stream of a queue's online requests, and the group its workers read it in. */
export const onlineStreamKey = (prefix: string, queue: string) => `${prefix}:online:${queue}`;
export const ONLINE_GROUP = 'workers';
/**
 * The queue name of a queue's shadow lane: mirrored requests (producer/shadow.ts) travel on a stream
 * of their own, which workers read only in their idle gaps (workers/inference/online-stream.ts).
 */
export const shadowLane = (queue: string) => `${queue}:shadow`;
/** The channel on which a producer hears its answers. */
export const replyChannel = (prefix: string, producer: string) => `${prefix}:online-reply:${producer}`;

export interface WireRequest {
  inputs: WireTensor[];
  outputs?: string[];
  deadline?: number;
  /** Drawn for drift (core/jobs/infer.ts). */
  drift?: boolean;
}
export type WireResponse = { ok: true; outputs: WireTensor[] } | { ok: false; error: ErrorData };

/** One coalesced group: `id` is the producer's, `reply` its channel. */
export interface WireJob {
  id: string;
  reply: string;
  model: ModelTarget;
  batching: Batching;
  requests: WireRequest[];
}

/** A worker's message about a job: its answers, its failure as a whole, or that its model is loading (or loaded) first. */
export type WireReply =
  | { id: string; kind: 'answer'; responses: WireResponse[] }
  | { id: string; kind: 'failed'; error: ErrorData }
  | { id: string; kind: 'loading'; model: string; since: number }
  | { id: string; kind: 'loaded'; model: string; ms: number };

const blobHead = z.object({
  name: z.string(),
  datatype: z.enum(DATATYPES),
  shape: z.array(z.number().int().min(0)).max(16),
  blob: z.number().int().min(0),
});
const tensorHead = z.union([blobHead, tensorSchema]);
const sizes = z.array(z.number().int().min(0));

export const jobHead = z.object({
  id: z.string().max(200),
  reply: z.string().max(1000),
  model: modelTargetSchema,
  batching: batchingSchema,
  requests: z
    .array(
      z.object({ inputs: z.array(tensorHead).min(1), outputs: z.array(z.string()).optional(), deadline: z.number().optional(), drift: z.boolean().optional() }),
    )
    .min(1),
  sizes,
});
export const replyHead = z.union([
  z.object({
    id: z.string(),
    kind: z.literal('answer'),
    responses: z.array(z.union([z.object({ ok: z.literal(true), outputs: z.array(tensorHead) }), z.object({ ok: z.literal(false), error: errorDataSchema })])),
    sizes,
  }),
  z.object({ id: z.string(), kind: z.literal('failed'), error: errorDataSchema }),
  z.object({ id: z.string(), kind: z.literal('loading'), model: z.string(), since: z.number() }),
  z.object({ id: z.string(), kind: z.literal('loaded'), model: z.string(), ms: z.number() }),
]);

/** Tensors -> heads pointing at blobs (numeric ones) or carrying JSON data. */
function headsOf(tensors: WireTensor[], blobs: Uint8Array[]) {
  return tensors.map((t) => {
    if (isBytes(t) || isPacked(t)) {
      const bytes = isBytes(t) ? t.bytes : Buffer.from(t.b64, 'base64');
      blobs.push(bytes);
      return { name: t.name, datatype: t.datatype, shape: t.shape, blob: blobs.length - 1 };
    }
    return t;
  });
}

function frame(head: object, blobs: Uint8Array[]): Buffer {
  const json = Buffer.from(JSON.stringify({ ...head, sizes: blobs.map((b) => b.byteLength) }));
  let size = align(5 + json.length);
  for (const b of blobs) size += align(b.byteLength);
  const out = Buffer.allocUnsafe(size);
  out[0] = VERSION;
  out.writeUInt32LE(json.length, 1);
  json.copy(out, 5);
  let at = align(5 + json.length);
  out.fill(0, 5 + json.length, at);
  for (const b of blobs) {
    out.set(b, at);
    const end = at + b.byteLength;
    at = align(end);
    out.fill(0, end, at);
  }
  return out;
}

/** Splits a frame into its head (unchecked JSON) and its blobs (views into `buf`, no copies). */
function unframe(buf: Buffer): { head: unknown; blobs: (declared: number[]) => Buffer[] } {
  if (buf.length < 5 || buf[0] !== VERSION) throw new AppError('bad_request', 'not an online frame of version 1');
  const headLength = buf.readUInt32LE(1);
  if (5 + headLength > buf.length) throw new AppError('bad_request', `the frame's head claims ${headLength} bytes, ${buf.length - 5} are present`);
  let head: unknown;
  try {
    head = JSON.parse(buf.toString('utf8', 5, 5 + headLength));
  } catch {
    throw new AppError('bad_request', "the frame's head is not JSON");
  }
  const blobs = (declared: number[]) => {
    const out: Buffer[] = [];
    let at = align(5 + headLength);
    for (const n of declared) {
      if (at + n > buf.length) throw new AppError('bad_request', `the frame's blobs claim more than its ${buf.length} bytes`);
      out.push(buf.subarray(at, at + n));
      at = align(at + n);
    }
    return out;
  };
  return { head, blobs };
}

/** Heads -> tensors, each blob checked against its datatype and shape. */
function tensorsOf(heads: z.infer<typeof tensorHead>[], blobs: Buffer[]): WireTensor[] {
  return heads.map((h): WireTensor => {
    if (!('blob' in h)) return h;
    const bytes = blobs[h.blob];
    const Ctor = TYPED_ARRAYS[h.datatype];
    if (!bytes || !Ctor) throw new AppError('bad_request', `tensor "${h.name}": no bytes for ${h.datatype}`);
    if (bytes.byteLength !== elementCount(h.shape) * Ctor.BYTES_PER_ELEMENT)
      throw new AppError('bad_request', `tensor "${h.name}": ${bytes.byteLength} bytes do not match shape [${h.shape.join(',')}] of ${h.datatype}`);
    return { name: h.name, datatype: h.datatype, shape: h.shape, bytes } satisfies ByteTensor;
  });
}

// Hand checks of the common heads (every tensor a blob head, every response an answer), which are
// every group's under load: zod's walk over a group's request and response objects was a few
// microseconds per request in each process. They accept exactly what the schemas accept and give
// what they give (known keys only); anything else, valid or not, goes through the schemas, which
// word the errors.
const DATATYPE_SET: ReadonlySet<string> = new Set(DATATYPES);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0; // zod's int()

function blobHeads(x: unknown): z.infer<typeof blobHead>[] | undefined {
  if (!Array.isArray(x)) return undefined;
  const out: z.infer<typeof blobHead>[] = [];
  for (const h of x as unknown[]) {
    if (!isObj(h) || typeof h.name !== 'string' || typeof h.datatype !== 'string' || !DATATYPE_SET.has(h.datatype) || !isCount(h.blob)) return undefined;
    const shape = h.shape;
    if (!Array.isArray(shape) || shape.length > 16 || !shape.every(isCount)) return undefined;
    out.push({ name: h.name, datatype: h.datatype as z.infer<typeof blobHead>['datatype'], shape: shape as number[], blob: h.blob });
  }
  return out;
}

function sizesOf(x: unknown): number[] | undefined {
  return Array.isArray(x) && x.every(isCount) ? (x as number[]) : undefined;
}

function simpleJobHead(head: unknown): z.infer<typeof jobHead> | undefined {
  if (!isObj(head) || typeof head.id !== 'string' || head.id.length > 200 || typeof head.reply !== 'string' || head.reply.length > 1000) return undefined;
  const sizes = sizesOf(head.sizes);
  const model = modelTargetSchema.safeParse(head.model);
  const batching = batchingSchema.safeParse(head.batching);
  if (!sizes || !model.success || !batching.success || !Array.isArray(head.requests) || head.requests.length === 0) return undefined;
  const requests: z.infer<typeof jobHead>['requests'] = [];
  for (const r of head.requests as unknown[]) {
    if (!isObj(r)) return undefined;
    const inputs = blobHeads(r.inputs);
    if (!inputs || inputs.length === 0) return undefined;
    const req: (typeof requests)[number] = { inputs };
    if (r.outputs !== undefined) {
      if (!Array.isArray(r.outputs) || !r.outputs.every((o) => typeof o === 'string')) return undefined;
      req.outputs = r.outputs as string[];
    }
    if (r.deadline !== undefined) {
      if (typeof r.deadline !== 'number' || !Number.isFinite(r.deadline)) return undefined;
      req.deadline = r.deadline;
    }
    if (r.drift === true) req.drift = true;
    requests.push(req);
  }
  return { id: head.id, reply: head.reply, model: model.data, batching: batching.data, requests, sizes };
}

function simpleAnswerHead(head: unknown): z.infer<typeof replyHead> | undefined {
  if (!isObj(head) || head.kind !== 'answer' || typeof head.id !== 'string' || !Array.isArray(head.responses)) return undefined;
  const sizes = sizesOf(head.sizes);
  if (!sizes) return undefined;
  const responses: { ok: true; outputs: z.infer<typeof blobHead>[] }[] = [];
  for (const r of head.responses as unknown[]) {
    if (!isObj(r) || r.ok !== true) return undefined;
    const outputs = blobHeads(r.outputs);
    if (!outputs) return undefined;
    responses.push({ ok: true, outputs });
  }
  return { id: head.id, kind: 'answer', responses, sizes };
}

function parsed<T>(schema: z.ZodType<T>, head: unknown, what: string): T {
  const r = schema.safeParse(head);
  if (!r.success) throw new AppError('bad_request', `${what}: ${r.error.issues[0]?.path.join('.') ?? ''} ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data;
}

/** A job frame's head as jobHead gives it (bad_request when it does not parse). */
export const readJobHead = (head: unknown) => simpleJobHead(head) ?? parsed(jobHead, head, 'online job');
/** A reply frame's head as replyHead gives it. */
export const readReplyHead = (head: unknown) => simpleAnswerHead(head) ?? parsed(replyHead, head, 'online reply');

export function encodeJob(job: WireJob): Buffer {
  const blobs: Uint8Array[] = [];
  const requests = job.requests.map((r) => ({ ...r, inputs: headsOf(r.inputs, blobs) }));
  return frame({ id: job.id, reply: job.reply, model: job.model, batching: job.batching, requests }, blobs);
}

/** The job in `buf`; its tensors' bytes are views into `buf`. Throws bad_request (with the job's id and reply when the head names them). */
export function decodeJob(buf: Buffer): WireJob {
  const { head, blobs } = unframe(buf);
  const h = readJobHead(head);
  const b = blobs(h.sizes);
  return {
    id: h.id,
    reply: h.reply,
    model: h.model,
    batching: h.batching,
    requests: h.requests.map((r) => ({ ...r, inputs: tensorsOf(r.inputs, b) })),
  };
}

/** Where to answer a frame that did not decode as a job, when its head says so. */
export function replyOf(buf: Buffer): { id: string; reply: string } | null {
  try {
    const { head } = unframe(buf);
    const h = head as { id?: unknown; reply?: unknown };
    return typeof h.id === 'string' && typeof h.reply === 'string' ? { id: h.id, reply: h.reply } : null;
  } catch {
    return null;
  }
}

export function encodeReply(r: WireReply): Buffer {
  if (r.kind !== 'answer') return frame(r, []);
  const blobs: Uint8Array[] = [];
  const responses = r.responses.map((x) => (x.ok ? { ok: true, outputs: headsOf(x.outputs, blobs) } : x));
  return frame({ id: r.id, kind: r.kind, responses }, blobs);
}

export function decodeReply(buf: Buffer): WireReply {
  const { head, blobs } = unframe(buf);
  const h = readReplyHead(head);
  if (h.kind !== 'answer') return h;
  const b = blobs(h.sizes);
  return { id: h.id, kind: 'answer', responses: h.responses.map((x) => (x.ok ? { ok: true, outputs: tensorsOf(x.outputs, b) } : x)) };
}
