// The REST fast path's answer text (jsonAnswerText, protocolTensorJson) against JSON.stringify of the
// protocol objects it replaces: the same text for every datatype, odd numbers (NaN, infinities, -0,
// tiny and huge floats, 64-bit integers), ids, packed and JSON tensors, and explanations.
import { describe, expect, it } from 'vitest';
import { packTensor, protocolTensorJson, toProtocolTensor, type WireTensor } from '../../../core/jobs/infer.ts';
import type { VersionRecord } from '../../../core/registry.ts';
import { jsonAnswer, jsonAnswerText, type Answer } from '../../../producer/inference/service.ts';

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const tensors: Record<string, WireTensor> = {
  'FP32 with NaN, infinities, -0, tiny and huge': {
    name: 'probabilities',
    datatype: 'FP32',
    shape: [2, 4],
    bytes: bytesOf(Float32Array.from([0.1, NaN, Infinity, -Infinity, -0, 1e-40, 3.4e38, 1 / 3])),
  },
  FP64: { name: 'y', datatype: 'FP64', shape: [3], bytes: bytesOf(Float64Array.from([Math.PI, -1e300, 5e-324])) },
  INT64: { name: 'label', datatype: 'INT64', shape: [3], bytes: bytesOf(BigInt64Array.from([0n, -7n, 9007199254740993n])) },
  INT32: { name: 'i', datatype: 'INT32', shape: [2], bytes: bytesOf(Int32Array.from([-2147483648, 2147483647])) },
  UINT8: { name: 'u', datatype: 'UINT8', shape: [2], bytes: Uint8Array.from([0, 255]) },
  BOOL: { name: 'b', datatype: 'BOOL', shape: [3], bytes: Uint8Array.from([0, 1, 2]) },
  'an empty tensor': { name: 'e', datatype: 'FP32', shape: [0, 3], bytes: new Uint8Array(0) },
  'a name that needs escaping': { name: 'out "x"\n', datatype: 'FP32', shape: [1], bytes: bytesOf(Float32Array.from([2])) },
  'JSON data (BYTES)': { name: 's', datatype: 'BYTES', shape: [2], data: ['a', 'é"'] },
  'packed (base64)': packTensor({ name: 'p', datatype: 'FP32', shape: [2], data: [1.5, -2] }),
};

describe('protocol answer text', () => {
  for (const [what, t] of Object.entries(tensors)) {
    it(`writes ${what} as JSON.stringify(toProtocolTensor) does`, () => {
      expect(protocolTensorJson(t)).toBe(JSON.stringify(toProtocolTensor(t)));
      expect(JSON.parse(protocolTensorJson(t))).toEqual(JSON.parse(JSON.stringify(toProtocolTensor(t))));
    });
  }

  const model = { name: 'mlp "7"', version: 3 } as VersionRecord;
  const answers: Record<string, Answer> = {
    'with an id': { model, id: 'req-1 ✓', outputs: Object.values(tensors) },
    'without an id': { model, outputs: [tensors.FP64!] },
    'with an explanation': {
      model,
      outputs: [tensors.FP64!],
      explanation: { explain_base: [0.5], explain_class: [1], explain_output: 'y', explain_method: 'shap' } as unknown as NonNullable<Answer['explanation']>,
    },
  };
  for (const [what, a] of Object.entries(answers)) {
    it(`writes an answer ${what} as JSON.stringify(jsonAnswer) does`, () => {
      expect(jsonAnswerText(a)).toBe(JSON.stringify(jsonAnswer(a)));
    });
  }

  it('refuses bytes that do not match the shape, as toProtocolTensor does', () => {
    const bad: WireTensor = { name: 'x', datatype: 'FP32', shape: [3], bytes: new Uint8Array(8) };
    expect(() => protocolTensorJson(bad)).toThrow(/do not match shape/);
  });
});
