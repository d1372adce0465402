// The pure parts of distillation: what a teacher's outputs are, soft targets at a temperature, and
// the noisy copies of rows the teacher labels.
import { describe, expect, it } from 'vitest';
import type { RawTensor, TensorSpec } from '../../../../core/tensors.ts';
import { noisyCopies, planStudent, softTargets } from '../../../../workers/compression/distill.ts';

const f32 = (dims: number[], data: number[]): RawTensor => ({ type: 'float32', dims, data: Float32Array.from(data) });
const i64 = (data: number[]): RawTensor => ({ type: 'int64', dims: [data.length], data: BigInt64Array.from(data, BigInt) });
const spec = (name: string, datatype: TensorSpec['datatype'], shape: number[]): TensorSpec => ({ name, datatype, shape });

describe('planStudent', () => {
  it('tells probabilities from raw scores and keeps the output shapes with a named batch', () => {
    const probs = planStudent([spec('label', 'INT64', [-1]), spec('probabilities', 'FP32', [-1, 2])], {
      label: i64([1, 0]),
      probabilities: f32([2, 2], [0.2, 0.8, 0.6, 0.4]),
    });
    expect(probs).toEqual({
      task: 'classification',
      primary: 'probabilities',
      outputs: 2,
      heads: [
        { kind: 'label', name: 'label', shape: ['N'] },
        { kind: 'probabilities', name: 'probabilities', shape: ['N', 2] },
      ],
    });
    const scores = planStudent([spec('y', 'FP32', [-1, 3])], { y: f32([1, 3], [2, -1, 0.5]) });
    expect(scores.heads).toEqual([{ kind: 'scores', name: 'y', shape: ['N', 3] }]);
    const value = planStudent([spec('price', 'FP32', [-1, 1])], { price: f32([2, 1], [3, 4]) });
    expect(value).toMatchObject({ task: 'regression', primary: 'price', outputs: 1 });
  });

  it('refuses what a student cannot reproduce, naming the output', () => {
    expect(() => planStudent([spec('label', 'INT64', [-1]), spec('p', 'FP32', [-1, 2])], { label: i64([0, 0]), p: f32([2, 2], [0.2, 0.8, 0.6, 0.4]) })).toThrow(
      /label output "label" is not the argmax of "p"/,
    );
    expect(() => planStudent([spec('mask', 'FP32', [-1, 4, 4])], { mask: f32([1, 4, 4], Array(16).fill(0)) })).toThrow(
      /cannot reproduce output "mask" \(FP32 \[-1, 4, 4\]\)/,
    );
    expect(() => planStudent([spec('a', 'FP32', [-1, 2]), spec('b', 'FP32', [-1, 2])], { a: f32([1, 2], [1, 2]), b: f32([1, 2], [1, 2]) })).toThrow(
      /2 class-score outputs/,
    );
  });
});

describe('softTargets', () => {
  it('is the softmax of logits / T, and of log-probabilities / T', () => {
    const t = softTargets(f32([1, 2], [2, 0]), false, 2);
    expect(t[0]).toBeCloseTo(Math.exp(1) / (Math.exp(1) + 1), 6);
    expect(t[0]! + t[1]!).toBeCloseTo(1, 6);
    // T = 1 on probabilities gives them back; a higher T flattens them.
    const p = softTargets(f32([1, 2], [0.9, 0.1]), true, 1);
    expect(Array.from(p)).toEqual([expect.closeTo(0.9, 6), expect.closeTo(0.1, 6)]);
    expect(softTargets(f32([1, 2], [0.9, 0.1]), true, 3)[0]).toBeLessThan(0.9);
  });
});

describe('noisyCopies', () => {
  it('moves each feature by noise x its standard deviation, seeded', () => {
    const x = Float32Array.from({ length: 2000 }, (_, i) => (i % 2 ? (i % 4 === 1 ? 10 : -10) : 0));
    const ids = Int32Array.from({ length: 1000 }, (_, i) => i);
    const a = noisyCopies(x, 2, ids, 2, 0.5, 7);
    expect(a).toHaveLength(4000);
    expect(noisyCopies(x, 2, ids, 2, 0.5, 7)).toEqual(a);
    // Feature 0 is constant (sd 0): unchanged; feature 1 has sd 10: moved by about N(0, 5).
    let sq = 0;
    for (let i = 0; i < 2000; i++) {
      expect(a[2 * i]).toBe(0);
      sq += (a[2 * i + 1]! - x[2 * (i % 1000) + 1]!) ** 2;
    }
    expect(Math.sqrt(sq / 2000)).toBeGreaterThan(4.5);
    expect(Math.sqrt(sq / 2000)).toBeLessThan(5.5);
  });
});
