// The gRPC tensor codec: raw bytes (aligned or not) and typed contents into the protocol's data
// form, BYTES length prefixes both ways, and answers into raw_output_contents.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.ts';
import { decodeBytes, decodeRaw, decodeTyped, encodeBytes, encodeOutput } from '../../../producer/grpc/contents.ts';

describe('gRPC contents', () => {
  it('decodes raw little-endian numbers, also from an unaligned buffer', () => {
    const f = Float32Array.from([1.5, -2, 3.25]);
    const unaligned = Buffer.concat([Buffer.from([0]), Buffer.from(f.buffer)]).subarray(1);
    expect(unaligned.byteOffset % 4).not.toBe(0);
    expect(Array.from(decodeRaw(unaligned, 'FP32', 'x') as Float32Array)).toEqual([1.5, -2, 3.25]);
    expect(decodeRaw(Buffer.from(BigInt64Array.from([-5n, 7n]).buffer), 'INT64', 'x')).toEqual([-5, 7]);
    expect(decodeRaw(Buffer.from([0, 1, 2]), 'BOOL', 'x')).toEqual([false, true, true]);
    expect(decodeRaw(Buffer.from(Uint16Array.from([0x3c00, 0xc000]).buffer), 'FP16', 'x')).toEqual([1, -2]);
  });

  it('names what is wrong with a raw entry', () => {
    expect(() => decodeRaw(Buffer.alloc(6), 'FP32', 'raw_input_contents[0]')).toThrow(
      /raw_input_contents\[0\]: 6 bytes is not a whole number of FP32 elements/,
    );
    expect(() => decodeBytes(Buffer.from([5, 0, 0, 0, 97]), 'in')).toThrow(/BYTES element 0 says 5 bytes, 1 are left/);
    expect(() => decodeBytes(Buffer.from([1, 0]), 'in')).toThrow(AppError);
  });

  it('round-trips BYTES with 4-byte little-endian length prefixes', () => {
    const words = ['', 'a', 'grüße ✓'];
    const b = encodeBytes(words);
    expect(b.readUInt32LE(0)).toBe(0);
    expect(b.readUInt32LE(4)).toBe(1);
    expect(decodeBytes(b, 'x')).toEqual(words);
  });

  it('reads only the typed field of the datatype', () => {
    expect(decodeTyped({ int64_contents: [1, 2], fp32_contents: [9] }, 'INT64', 'x')).toEqual([1, 2]);
    expect(decodeTyped({ bytes_contents: [Buffer.from('hé')] }, 'BYTES', 'x')).toEqual(['hé']);
    expect(decodeTyped(undefined, 'FP32', 'x')).toEqual([]);
    expect(() => decodeTyped({ fp32_contents: [1, 2], bytes_contents: [] }, 'BYTES', 'x')).toThrow(
      /x: datatype BYTES takes bytes_contents, the request has fp32_contents/,
    );
    expect(() => decodeTyped({}, 'FP16', 'inputs[0]')).toThrow(/FP16 has no typed contents field/);
  });

  it('encodes packed and JSON answers as raw bytes', () => {
    const packed = { name: 'y', datatype: 'FP32' as const, shape: [2], b64: Buffer.from(Float32Array.from([1, 2]).buffer).toString('base64') };
    expect(Array.from(new Float32Array(new Uint8Array(encodeOutput(packed)).buffer))).toEqual([1, 2]);
    expect(decodeBytes(encodeOutput({ name: 's', datatype: 'BYTES', shape: [2], data: ['x', 'yz'] }), 's')).toEqual(['x', 'yz']);
    expect(Array.from(new Uint16Array(new Uint8Array(encodeOutput({ name: 'h', datatype: 'FP16', shape: [2], data: [1, -2] })).buffer))).toEqual([
      0x3c00, 0xc000,
    ]);
    expect(Array.from(new BigInt64Array(new Uint8Array(encodeOutput({ name: 'i', datatype: 'INT64', shape: [1], data: [-3] })).buffer))).toEqual([-3n]);
  });
});
