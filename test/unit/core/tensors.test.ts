import { describe, expect, it } from 'vitest';
import { flattenData, fromRaw, toRaw } from '../../../core/tensors.ts';

describe('flattenData', () => {
  it('accepts flat and nested data', () => {
    expect(flattenData([1, 2, 3, 4], [2, 2], 'FP32', 'x')).toEqual({ data: [1, 2, 3, 4] });
    expect(
      flattenData(
        [
          [1, 2],
          [3, 4],
        ],
        [2, 2],
        'FP32',
        'x',
      ),
    ).toEqual({ data: [1, 2, 3, 4] });
  });
  it('names what is wrong', () => {
    expect(flattenData([1, 2, 3], [2, 2], 'FP32', 'x')).toEqual({ error: 'x has 3 elements but shape [2,2] needs 4' });
    expect(flattenData([[1, 2], [3]], [2, 2], 'FP32', 'x')).toEqual({ error: 'x.data[1] has 1 elements, shape [2,2] says 2' });
    expect(flattenData([1, 'a', 3, 4], [2, 2], 'FP32', 'x')).toMatchObject({ error: expect.stringMatching(/x.data\[1\] must be a finite number/) });
    expect(flattenData([1.5], [1], 'INT32', 'x')).toMatchObject({ error: expect.stringMatching(/must be an integer/) });
    expect(flattenData([300], [1], 'UINT8', 'x')).toMatchObject({ error: expect.stringMatching(/\[0, 255\]/) });
    expect(flattenData(['a'], [1], 'BYTES', 'x')).toEqual({ data: ['a'] });
    expect(flattenData([true], [1], 'BOOL', 'x')).toEqual({ data: [true] });
    expect(flattenData('nope', [1], 'FP32', 'x')).toEqual({ error: 'x.data must be an array' });
  });
});

describe('toRaw / fromRaw', () => {
  it('round-trips typed data', () => {
    const raw = toRaw({ name: 'a', datatype: 'INT64', shape: [3], data: [1, -2, 3] });
    expect(raw.type).toBe('int64');
    expect(raw.data).toBeInstanceOf(BigInt64Array);
    expect(fromRaw('a', raw)).toEqual({ name: 'a', datatype: 'INT64', shape: [3], data: [1, -2, 3] });
    const b = toRaw({ name: 'b', datatype: 'BOOL', shape: [2], data: [true, false] });
    expect(fromRaw('b', b).data).toEqual([true, false]);
    const f = toRaw({ name: 'f', datatype: 'FP32', shape: [2], data: [0.5, 1.5] });
    expect(f.data).toBeInstanceOf(Float32Array);
  });
});
