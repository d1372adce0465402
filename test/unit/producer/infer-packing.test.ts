// Tensors in `infer` jobs travel packed (raw bytes in base64): the producer packs validated inputs,
// the worker unpacks them for the engine and packs outputs, the producer turns them back into JSON.
import { describe, expect, it } from 'vitest';
import { inferJobSchema, packRaw, packTensor, toProtocolTensor, unpackRaw, type PackedTensor } from '../../../core/jobs/infer.ts';
import type { Tensor } from '../../../core/tensors.ts';

const t = (datatype: Tensor['datatype'], data: Tensor['data'], shape = [1, data.length]): Tensor => ({ name: 'x', datatype, shape, data });

describe('packed job tensors', () => {
  it.each([
    t('FP32', [0.5, -1.25, 3]),
    t('FP64', [Math.PI, -0]),
    t('INT8', [-128, 127]),
    t('UINT8', [0, 255]),
    t('INT16', [-32768, 2]),
    t('UINT16', [65535]),
    t('INT32', [-(2 ** 31), 7]),
    t('UINT32', [2 ** 32 - 1]),
    t('INT64', [-(2 ** 53) + 1, 5]),
    t('UINT64', [2 ** 53 - 1]),
    t('BOOL', [true, false, true]),
  ])('round-trips $datatype through bytes, and the JSON form matches', (tensor) => {
    const packed = packTensor(tensor) as PackedTensor;
    expect(packed.b64).toEqual(expect.any(String));
    expect('data' in packed).toBe(false);
    const raw = unpackRaw(packed)!;
    expect(raw.dims).toEqual(tensor.shape);
    expect((raw.data as ArrayBufferView).byteOffset).toBe(0); // its own buffer: transferable to an engine thread
    expect(toProtocolTensor(packRaw('x', raw)!)).toEqual(tensor);
  });

  it('rounds FP32 the way onnxruntime would see it', () => {
    expect(toProtocolTensor(packTensor(t('FP32', [0.1]))).data).toEqual([Math.fround(0.1)]);
  });

  it('keeps BYTES (and FP16, which onnxruntime gets as FP32 JSON) as JSON data', () => {
    const s = t('BYTES', ['a', 'b']);
    expect(packTensor(s)).toBe(s);
    expect(toProtocolTensor(s)).toBe(s);
  });

  it('refuses bytes that do not match the shape', () => {
    const packed = packTensor(t('FP32', [1, 2, 3])) as PackedTensor;
    expect(unpackRaw({ ...packed, shape: [1, 4] })).toBeNull();
    expect(unpackRaw({ ...packed, b64: `${packed.b64}AAAA` })).toBeNull();
    expect(() => toProtocolTensor({ ...packed, shape: [2, 3] })).toThrow(/do not match/);
  });

  it('accepts jobs with packed tensors and jobs from older producers with JSON data', () => {
    const model = { name: 'm', version: 1, sha256: 'a'.repeat(64) };
    const old = { model, requests: [{ inputs: [t('FP32', [1, 2])] }] };
    const packed = { model, packed: true, requests: [{ inputs: [packTensor(t('FP32', [1, 2]))] }] };
    expect(inferJobSchema.parse(old).requests[0]!.inputs[0]).toMatchObject({ data: [1, 2] });
    expect(inferJobSchema.parse(packed).requests[0]!.inputs[0]).toMatchObject({ b64: expect.any(String) });
    expect(inferJobSchema.safeParse({ model, requests: [{ inputs: [{ name: 'x', datatype: 'FP32', shape: [1] }] }] }).success).toBe(false);
  });
});
