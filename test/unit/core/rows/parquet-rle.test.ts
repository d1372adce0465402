// The RLE/bit-packed hybrid decoder against a reference encoder written from the format's description.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bitWidth, readHybrid } from '../../../../core/rows/parquet-rle.ts';

function uvarint(n: number, out: number[]) {
  while (n >= 0x80) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

/** Runs (value repeated) and bit-packed groups of 8, least significant bit first. */
function encode(parts: ({ run: number; value: number } | { packed: number[] })[], width: number): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if ('run' in p) {
      uvarint(p.run * 2, out);
      for (let i = 0; i < (width + 7) >> 3; i++) out.push((p.value >>> (8 * i)) & 0xff);
      continue;
    }
    const groups = Math.ceil(p.packed.length / 8);
    uvarint(groups * 2 + 1, out);
    const bits: number[] = [];
    for (let i = 0; i < groups * 8; i++) for (let b = 0; b < width; b++) bits.push(((p.packed[i] ?? 0) >>> b) & 1);
    for (let i = 0; i < bits.length; i += 8) out.push(bits.slice(i, i + 8).reduce((a, bit, k) => a | (bit << k), 0));
  }
  return Uint8Array.from(out);
}

describe('readHybrid', () => {
  it('decodes any mix of runs and bit-packed groups, widths 0 to 24', () => {
    const arb = fc.integer({ min: 0, max: 24 }).chain((width) => {
      const v = fc.integer({ min: 0, max: width ? 2 ** width - 1 : 0 });
      const part = fc.oneof(
        fc.record({ run: fc.integer({ min: 1, max: 300 }), value: v }),
        fc.record({ packed: fc.array(v, { minLength: 1, maxLength: 40 }) }),
      );
      return fc.tuple(fc.constant(width), fc.array(part, { minLength: 1, maxLength: 12 }));
    });
    fc.assert(
      fc.property(arb, ([width, parts]) => {
        // A bit-packed group holds 8 values; only the last one of a stream may be padded.
        const want = parts.flatMap((p, i) =>
          'run' in p
            ? Array<number>(p.run).fill(p.value)
            : i === parts.length - 1
              ? p.packed
              : [...p.packed, ...Array<number>((8 - (p.packed.length % 8)) % 8).fill(0)],
        );
        const bytes = encode(parts, width);
        const got = new Uint32Array(want.length);
        readHybrid(bytes, 0, bytes.length, width, want.length, got);
        expect(Array.from(got)).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses data that ends before its values', () => {
    const bytes = encode([{ run: 3, value: 1 }], 1);
    expect(() => readHybrid(bytes, 0, bytes.length, 1, 5, new Uint8Array(5))).toThrow(/end after 3 of 5/);
  });

  it('bitWidth: bits for levels up to max', () => {
    expect([0, 1, 2, 3, 4, 255, 256].map(bitWidth)).toEqual([0, 1, 2, 2, 3, 8, 9]);
  });
});
