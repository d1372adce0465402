// The hand codec of ModelInferRequest / ModelInferResponse (producer/grpc/codec.ts) against
// proto-loader's: the same objects from the same bytes, the same bytes from the same answers, and
// every message it does not take (parameters, typed contents, malformed bytes) left to proto-loader.
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { decodeInferRequest, encodeInferResponse, encodeStreamResponse, withFastCodec } from '../../../producer/grpc/codec.ts';
import { loadService, PROTO_OPTIONS, PROTO_PATH } from '../../../producer/grpc/server.ts';

const def = protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS)['inference.GRPCInferenceService'] as protoLoader.ServiceDefinition;
const infer = def.ModelInfer!;
const stream = def.ModelStreamInfer!;
const f32 = (...xs: number[]) => Buffer.from(Float32Array.from(xs).buffer);

/** A varint as protobuf writes it. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const field = (no: number, wt: number) => varint(no * 8 + wt);
const bytesField = (no: number, b: Buffer | number[]) => Buffer.from([...field(no, 2), ...varint(b.length), ...b]);

describe('gRPC hand codec', () => {
  const requests: Record<string, object> = {
    'one raw FP32 row': { model_name: 'm', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [f32(1, 2.5, -3, 4)] },
    'version, id, outputs, two inputs': {
      model_name: 'mlp',
      model_version: '3',
      id: 'req-7 ✓',
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [2, 2] },
        { name: 'b', datatype: 'INT64', shape: [2] },
      ],
      outputs: [{ name: 'probabilities' }, { name: 'label' }],
      raw_input_contents: [f32(1, 2, 3, 4), Buffer.from(BigInt64Array.from([5n, 6n]).buffer)],
    },
    'no shape, empty raw entry, large dimension': {
      model_name: 'x',
      inputs: [
        { name: 's', datatype: 'FP32' },
        { name: 't', datatype: 'FP32', shape: [300000, 0] },
      ],
      raw_input_contents: [Buffer.alloc(0), f32(1)],
    },
    'nothing at all': {},
  };

  for (const [what, msg] of Object.entries(requests)) {
    it(`reads ${what} as proto-loader does`, () => {
      const bytes = infer.requestSerialize(msg);
      const fast = decodeInferRequest(bytes);
      expect(fast).toBeDefined();
      expect(fast).toEqual(infer.requestDeserialize(bytes));
      // Key for key, absent ones absent: the doors test `!== undefined` and `?? []`.
      expect(Object.keys(fast!).sort()).toEqual(Object.keys(infer.requestDeserialize(bytes) as object).sort());
    });
  }

  it('reads unpacked shapes and skips unknown fields of every wire type', () => {
    const input = Buffer.concat([bytesField(1, Buffer.from('in')), bytesField(2, Buffer.from('FP32')), Buffer.from([...field(3, 0), 1, ...field(3, 0), 3])]);
    const bytes = Buffer.concat([
      bytesField(1, Buffer.from('m')),
      Buffer.from([...field(40, 0), ...varint(300)]),
      Buffer.from([...field(41, 1), 1, 2, 3, 4, 5, 6, 7, 8]),
      Buffer.from([...field(42, 5), 1, 2, 3, 4]),
      bytesField(43, Buffer.from('ignored')),
      bytesField(5, input),
      bytesField(7, f32(1, 2, 3)),
    ]);
    const fast = decodeInferRequest(bytes);
    expect(fast).toEqual({ model_name: 'm', inputs: [{ name: 'in', datatype: 'FP32', shape: [1, 3] }], raw_input_contents: [f32(1, 2, 3)] });
    expect(fast).toEqual(infer.requestDeserialize(bytes));
  });

  it('leaves parameters, typed contents, negative shapes and malformed bytes to proto-loader', () => {
    const leave = [
      { model_name: 'm', parameters: { explain: { bool_param: true } }, inputs: [{ name: 'a', datatype: 'FP32', shape: [1] }] },
      { model_name: 'm', inputs: [{ name: 'a', datatype: 'FP32', shape: [1], parameters: { x: { int64_param: 1 } } }] },
      { model_name: 'm', inputs: [{ name: 'a', datatype: 'FP32', shape: [2], contents: { fp32_contents: [1, 2] } }] },
      { model_name: 'm', inputs: [{ name: 'a', datatype: 'FP32', shape: [-1, 2] }] },
      { model_name: 'm', outputs: [{ name: 'o', parameters: { binary_data: { bool_param: true } } }] },
    ];
    for (const msg of leave) expect(decodeInferRequest(infer.requestSerialize(msg))).toBeUndefined();
    const good = infer.requestSerialize(requests['version, id, outputs, two inputs']!);
    // Cut mid-field: left to proto-loader (which refuses it); cut between fields: a shorter message read alike.
    for (const cut of [1, 4, good.length - 3]) expect(decodeInferRequest(good.subarray(0, cut))).toBeUndefined();
    for (let cut = 1; cut < good.length; cut++) {
      const fast = decodeInferRequest(good.subarray(0, cut));
      if (fast) expect(fast).toEqual(infer.requestDeserialize(good.subarray(0, cut)));
    }
    expect(decodeInferRequest(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBeUndefined(); // a 9-byte varint tag
    expect(decodeInferRequest(Buffer.from([...field(1, 0), 5]))).toBeUndefined(); // model_name as a varint
  });

  it('never reads a mutated message other than proto-loader does', () => {
    const good = infer.requestSerialize(requests['version, id, outputs, two inputs']!);
    let seed = 11;
    const rand = (n: number) => (seed = (seed * 16807) % 2147483647) % n;
    let taken = 0;
    for (let k = 0; k < 3000; k++) {
      const b = Buffer.from(good);
      for (let j = 0, n = 1 + rand(3); j < n; j++) b[rand(b.length)] = rand(256);
      const fast = decodeInferRequest(b);
      if (!fast) continue;
      taken++;
      expect(fast).toEqual(infer.requestDeserialize(b));
    }
    expect(taken).toBeGreaterThan(100); // most single-byte changes (in the tensor bytes) still decode
  });

  const responses: Record<string, object> = {
    'one output': {
      model_name: 'm',
      model_version: '1',
      id: '',
      outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 10] }],
      raw_output_contents: [f32(...Array.from({ length: 10 }, (_, i) => i / 3))],
    },
    'two outputs, an id, empty bytes': {
      model_name: 'mlp ✓',
      model_version: '12',
      id: 'abc',
      outputs: [
        { name: 'a', datatype: 'INT64', shape: [3] },
        { name: 'b', datatype: 'BYTES', shape: [] },
      ],
      raw_output_contents: [Buffer.from(BigInt64Array.from([1n, 2n, 3n]).buffer), Buffer.alloc(0)],
    },
  };
  for (const [what, msg] of Object.entries(responses)) {
    it(`writes ${what} byte for byte as proto-loader does`, () => {
      expect(encodeInferResponse(msg as never)).toEqual(infer.responseSerialize(msg));
      const s = { error_message: '', infer_response: msg };
      expect(encodeStreamResponse(s as never)).toEqual(stream.responseSerialize(s));
    });
  }

  it('leaves answers with parameters and stream errors to proto-loader', () => {
    const withParams = { ...responses['one output']!, parameters: { explain_method: { string_param: 'kernel' } } };
    expect(encodeInferResponse(withParams as never)).toBeUndefined();
    expect(encodeStreamResponse({ error_message: 'no', infer_response: responses['one output'] as never })).toBeUndefined();
    // The service's codec still writes them, through proto-loader.
    const svc = withFastCodec(
      loadService() as unknown as Record<string, { responseSerialize: (v: unknown) => Buffer; requestDeserialize: (b: Buffer) => unknown }>,
    );
    expect(svc.ModelInfer!.responseSerialize(withParams)).toEqual(infer.responseSerialize(withParams));
    const p = { model_name: 'm', parameters: { explain: { bool_param: true } } };
    expect(svc.ModelInfer!.requestDeserialize(infer.requestSerialize(p))).toEqual(infer.requestDeserialize(infer.requestSerialize(p)));
  });
});
