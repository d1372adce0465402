// fp16 conversion and pruning: valid models (official checker), answers close to the original.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildMlp } from '../../../../workers/onnx/builder.ts';
import { floatData } from '../../../../workers/onnx/graph.ts';
import { decodeModel } from '../../../../workers/onnx/proto.ts';
import { toFloat16 } from '../../../../workers/onnx/fp16.ts';
import { pruneMagnitude, pruneStructured } from '../../../../workers/onnx/prune/index.ts';
import { rows } from '../../../fixtures/models.ts';
import { onnxCheck } from '../../../helpers/onnx-checker.ts';

const F = 32;
const model = buildMlp({ sizes: [F, 128, 128, 10], seed: 4 });
const x = rows(64, F, 3);
/** The float initializers of a model by name. */
const weights = (bytes: Uint8Array) => new Map(decodeModel(bytes).graph!.initializer!.map((t) => [t.name!, floatData(t as never)]));

async function run(bytes: Uint8Array) {
  const s = await ort.InferenceSession.create(bytes);
  return (await s.run({ input: new ort.Tensor('float32', x, [64, F]) })).output!.data as Float32Array;
}

describe('fp16', () => {
  it('keeps float32 at the edges and answers within 1e-2', async () => {
    const { bytes, converted } = toFloat16(model);
    expect(converted).toBe(6);
    expect(await onnxCheck(bytes)).toBeNull();
    const [a, b] = [await run(model), await run(bytes)];
    a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThan(1e-2));
    expect(bytes.length).toBeLessThan(model.length * 0.55);
  });
});

describe('pruning', () => {
  it('structured: fewer parameters, a working, smaller model', async () => {
    const r = pruneStructured(model, 0.5);
    expect(r.layers).toBe(2);
    expect(r.paramsAfter).toBeLessThan(r.paramsBefore * 0.6);
    expect(await onnxCheck(r.bytes)).toBeNull();
    const [a, out] = [await run(model), await run(r.bytes)];
    expect(out).toHaveLength(64 * 10);
    // Every weight left is one of the original's: units are removed, never altered.
    const before = weights(model);
    for (const [name, w] of weights(r.bytes)) {
      const orig = new Set(before.get(name) ?? []);
      expect(
        w.every((v) => orig.has(v)),
        name,
      ).toBe(true);
    }
    // Hidden units were removed, so the answers move, but within the original's range.
    expect(out.some((v, i) => v !== a[i])).toBe(true);
    const range = Math.max(...a.map(Math.abs));
    expect(Math.max(...out.map(Math.abs))).toBeLessThan(range * 4);
    expect(r.bytes.length).toBeLessThan(model.length * 0.6);
  });

  it('magnitude: zeroes the requested share of weights', async () => {
    const r = pruneMagnitude(model, 0.5);
    expect(r.paramsAfter / r.paramsBefore).toBeLessThan(0.55);
    expect(await onnxCheck(r.bytes)).toBeNull();
    // Each weight is kept as it was or zeroed, and no zeroed weight outweighs a kept one.
    const before = weights(model);
    for (const [name, w] of weights(r.bytes)) {
      const orig = before.get(name)!;
      expect(w).toHaveLength(orig.length);
      let maxZeroed = 0;
      let minKept = Infinity;
      w.forEach((v, i) => {
        const o = orig[i]!;
        if (v === 0) maxZeroed = Math.max(maxZeroed, Math.abs(o));
        else {
          expect(v).toBe(o);
          minKept = Math.min(minKept, Math.abs(o));
        }
      });
      expect(maxZeroed, name).toBeLessThanOrEqual(minKept);
    }
    const [a, b] = [await run(model), await run(r.bytes)];
    expect(b.some((v, i) => v !== a[i])).toBe(true);
  });

  it('names what it cannot do', () => {
    expect(() => pruneStructured(buildMlp({ sizes: [4, 3], seed: 1 }), 0.5)).toThrow(/nothing to prune: no chain/);
    expect(() => pruneMagnitude(model, 1.5)).toThrow(/sparsity/);
  });
});
