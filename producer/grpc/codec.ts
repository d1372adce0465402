// ModelInferRequest and ModelInferResponse read and written by hand for the common case, beside
// proto-loader's codec: protobufjs decodes into a message object and then converts it to a plain one
// (keepCase, longs as numbers, oneofs), several allocations per field, which was a large share of a
// gRPC call's CPU in the producer. The hand decoder takes messages whose fields are names, ids,
// datatypes, shapes and raw_input_contents (as Triton's clients send them); a message with
// parameters, typed contents or output parameters is left to proto-loader (the decoder returns
// undefined), and so is anything it does not read exactly as protobufjs would (a malformed varint,
// a length past the end). The encoder writes answers without parameters; others go to proto-loader.
// Both give exactly the objects and bytes proto-loader gives (test/unit/producer/grpc-codec.test.ts).
import type { ModelInferRequest, ModelInferResponse } from './infer.ts';

type Input = NonNullable<ModelInferRequest['inputs']>[number];

/** Reads one message; returns undefined where proto-loader must decide. */
class Reader {
  at = 0;
  bad = false;
  constructor(
    readonly buf: Buffer,
    public end: number,
  ) {}

  /** A varint of at most 7 bytes (values below 2^49, exact as numbers); longer or unterminated ones are left to protobufjs. */
  varint(): number {
    const { buf } = this;
    let v = 0;
    let mul = 1;
    for (let k = 0; k < 7; k++) {
      if (this.at >= this.end) break;
      const b = buf[this.at++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
    this.bad = true;
    return 0;
  }

  /** The [start, end) of a length-delimited field's bytes. */
  span(): [number, number] {
    const n = this.varint();
    const start = this.at;
    if (this.bad || n > this.end - start) {
      this.bad = true;
      return [start, start];
    }
    this.at = start + n;
    return [start, this.at];
  }

  string(): string {
    const [s, e] = this.span();
    return this.buf.toString('utf8', s, e);
  }

  /** Skips a field of wire type `wt` this decoder does not keep (proto3 readers ignore unknown fields). */
  skip(wt: number) {
    if (wt === 0) this.varint();
    else if (wt === 1) this.at += 8;
    else if (wt === 2) this.span();
    else if (wt === 5) this.at += 4;
    else this.bad = true; // groups: protobufjs's business
    if (this.at > this.end) this.bad = true;
  }
}

function readShape(r: Reader, wt: number, shape: number[]) {
  if (wt === 0) {
    shape.push(r.varint());
    return;
  }
  if (wt !== 2) return void (r.bad = true);
  const [s, e] = r.span();
  const inner = new Reader(r.buf, e);
  inner.at = s;
  while (!inner.bad && inner.at < e) shape.push(inner.varint());
  if (inner.bad) r.bad = true;
}

/** One InferInputTensor in r's bytes [r.at, end); only the fields present are set, as proto-loader sets them. */
function readInput(r: Reader, end: number): Input | undefined {
  const input: Partial<Input> = {};
  const saved = r.end;
  r.end = end;
  while (!r.bad && r.at < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === 2) input.name = r.string();
    else if (field === 2 && wt === 2) input.datatype = r.string();
    else if (field === 3 && (wt === 0 || wt === 2)) readShape(r, wt, (input.shape ??= []));
    else if (field === 4 || field === 5 || field === 0 || field <= 3)
      r.bad = true; // parameters, typed contents, odd wire types: proto-loader
    else r.skip(wt);
  }
  r.end = saved;
  return r.bad || r.at !== end ? undefined : (input as Input);
}

/** One InferRequestedOutputTensor in [r.at, end). */
function readOutput(r: Reader, end: number): { name: string } | undefined {
  const out: Partial<{ name: string }> = {};
  const saved = r.end;
  r.end = end;
  while (!r.bad && r.at < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === 2) out.name = r.string();
    else if (field <= 2)
      r.bad = true; // parameters, odd wire types: proto-loader
    else r.skip(wt);
  }
  r.end = saved;
  return r.bad || r.at !== end ? undefined : (out as { name: string });
}

/**
 * A ModelInferRequest as proto-loader gives it (keepCase, longs as numbers, defaults off: absent
 * strings absent, repeated fields []), or undefined when the message needs proto-loader.
 * raw_input_contents are views into `buf`, as protobufjs gives them.
 */
export function decodeInferRequest(buf: Buffer): ModelInferRequest | undefined {
  const r = new Reader(buf, buf.length);
  const m: Partial<ModelInferRequest> = {};
  while (!r.bad && r.at < buf.length) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field >= 1 && field <= 3 && wt === 2) {
      const s = r.string();
      if (field === 1) m.model_name = s;
      else if (field === 2) m.model_version = s;
      else m.id = s;
    } else if ((field === 5 || field === 6) && wt === 2) {
      const [s, e] = r.span();
      if (r.bad) return undefined;
      r.at = s;
      if (field === 5) {
        const input = readInput(r, e);
        if (!input) return undefined;
        (m.inputs ??= []).push(input);
      } else {
        const out = readOutput(r, e);
        if (!out) return undefined;
        (m.outputs ??= []).push(out);
      }
    } else if (field === 7 && wt === 2) {
      const [s, e] = r.span();
      (m.raw_input_contents ??= []).push(buf.subarray(s, e));
    } else if (field <= 7)
      return undefined; // request parameters, odd wire types, field 0: proto-loader
    else r.skip(wt);
  }
  return r.bad || r.at !== buf.length ? undefined : (m as ModelInferRequest);
}

// --- encoding -------------------------------------------------------------------------------------

function varintLength(n: number): number {
  let len = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

class Writer {
  at = 0;
  constructor(readonly buf: Buffer) {}
  varint(n: number) {
    while (n >= 128) {
      this.buf[this.at++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.at++] = n;
  }
  bytes(field: number, b: Uint8Array) {
    this.varint((field << 3) | 2);
    this.varint(b.byteLength);
    this.buf.set(b, this.at);
    this.at += b.byteLength;
  }
  string(field: number, s: string) {
    const len = Buffer.byteLength(s);
    this.varint((field << 3) | 2);
    this.varint(len);
    this.at += this.buf.write(s, this.at, len, 'utf8');
  }
}

const fieldLength = (field: number, len: number) => varintLength(field << 3) + varintLength(len) + len;
/** A string field as protobufjs writes it: present unless null or undefined (an empty one too). */
const strLength = (field: number, s: string | undefined) => (s == null ? 0 : fieldLength(field, Buffer.byteLength(s)));

/**
 * A ModelInferResponse without parameters, byte for byte as proto-loader writes it (fields by
 * number; strings unless null, an empty one too; shapes packed; empty repeated fields left out);
 * undefined for one with parameters, typed contents or a shape entry that is not a whole number in
 * [0, 2^49): proto-loader writes those. `headroom` bytes are left free at the start (the lean server
 * writes gRPC's 5-byte message prefix there, so the message leaves in one buffer).
 */
export function encodeInferResponse(m: ModelInferResponse, headroom = 0): Buffer | undefined {
  if (m.parameters != null) return undefined;
  let size = strLength(1, m.model_name) + strLength(2, m.model_version) + strLength(3, m.id);
  const outs = m.outputs ?? [];
  const lens: number[] = [];
  for (const o of outs) {
    if ((o as { parameters?: unknown }).parameters != null || (o as { contents?: unknown }).contents != null) return undefined;
    let shape = 0;
    for (const x of o.shape ?? []) {
      if (!Number.isInteger(x) || x < 0 || x >= 2 ** 49) return undefined;
      shape += varintLength(x);
    }
    const len = strLength(1, o.name) + strLength(2, o.datatype) + (shape ? fieldLength(3, shape) : 0);
    lens.push(len, shape);
    size += fieldLength(5, len);
  }
  for (const b of m.raw_output_contents ?? []) size += fieldLength(6, b.byteLength);
  const w = new Writer(Buffer.allocUnsafe(headroom + size));
  w.at = headroom;
  if (m.model_name != null) w.string(1, m.model_name);
  if (m.model_version != null) w.string(2, m.model_version);
  if (m.id != null) w.string(3, m.id);
  outs.forEach((o, k) => {
    w.varint((5 << 3) | 2);
    w.varint(lens[2 * k]!);
    if (o.name != null) w.string(1, o.name);
    if (o.datatype != null) w.string(2, o.datatype);
    const shape = lens[2 * k + 1]!;
    if (shape) {
      w.varint((3 << 3) | 2);
      w.varint(shape);
      for (const x of o.shape) w.varint(x);
    }
  });
  for (const b of m.raw_output_contents ?? []) w.bytes(6, b);
  return w.at === headroom + size ? w.buf : undefined;
}

/** A ModelStreamInferResponse carrying an answer (no error), as proto-loader writes it; undefined where proto-loader must. */
export function encodeStreamResponse(m: { error_message?: string; infer_response?: ModelInferResponse }): Buffer | undefined {
  if (m.error_message == null || m.error_message !== '' || !m.infer_response) return undefined;
  const inner = encodeInferResponse(m.infer_response);
  if (!inner) return undefined;
  const out = Buffer.allocUnsafe(2 + 1 + varintLength(inner.length) + inner.length);
  const w = new Writer(out);
  w.string(1, '');
  w.bytes(2, inner);
  return w.at === out.length ? out : undefined;
}

/** Method definitions as grpc-js takes them (the parts replaced here). */
interface MethodCodec {
  requestDeserialize: (b: Buffer) => unknown;
  responseSerialize: (v: unknown) => Buffer;
}

/**
 * ModelInfer and ModelStreamInfer of a loaded service definition with the hand codec in front of
 * proto-loader's: what the hand codec does not take, proto-loader reads and writes as before.
 */
export function withFastCodec<T extends Record<string, unknown>>(service: T): T {
  const wrap = (name: string, encode: (v: never) => Buffer | undefined) => {
    const def = service[name] as MethodCodec | undefined;
    if (!def) return;
    const { requestDeserialize: read, responseSerialize: write } = def;
    (service as Record<string, unknown>)[name] = {
      ...def,
      requestDeserialize: (b: Buffer) => decodeInferRequest(b) ?? read(b),
      responseSerialize: (v: unknown) => encode(v as never) ?? write(v),
    };
  };
  wrap('ModelInfer', encodeInferResponse);
  wrap('ModelStreamInfer', encodeStreamResponse);
  return service;
}
