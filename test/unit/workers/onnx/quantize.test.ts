import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { buildMlp, buildModel, node } from '../../../../workers/onnx/builder.ts';
import { decodeModel, DT } from '../../../../workers/onnx/proto.ts';
import { onnxCheck } from '../../../helpers/onnx-checker.ts';
import { quantizeInt8 } from '../../../../workers/onnx/quantize/dynamic.ts';
import { rows } from '../../../fixtures/models.ts';

async function run(bytes: Uint8Array, x: Float32Array, n: number, f: number) {
  const s = await ort.InferenceSession.create(bytes);
  const out = await s.run({ input: new ort.Tensor('float32', x, [n, f]) });
  return out.output!.data as Float32Array;
}
const argmaxes = (y: Float32Array, c: number) =>
  Array.from({ length: y.length / c }, (_, i) => {
    let b = 0;
    for (let j = 1; j < c; j++) if (y[i * c + j]! > y[i * c + b]!) b = j;
    return b;
  });

describe('quantizeInt8', () => {
  it('shrinks an MLP to under 0.3x and keeps its answers', async () => {
    const f = 256;
    const model = buildMlp({ sizes: [f, 1024, 1024, 10], seed: 3 });
    const { bytes, report } = quantizeInt8(model);
    expect(report.quantized).toHaveLength(3);
    expect(bytes.length / model.length).toBeLessThan(0.3);
    const x = rows(500, f, 7);
    const [a, b] = [await run(model, x, 500, f), await run(bytes, x, 500, f)];
    expect(await onnxCheck(bytes)).toBeNull();
    expect(await onnxCheck(model)).toBeNull();
    const agree = argmaxes(a, 10).filter((v, i) => v === argmaxes(b, 10)[i]).length / 500;
    expect(agree).toBeGreaterThanOrEqual(0.97);
    const perChannel = quantizeInt8(model, { perChannel: true });
    const c = await run(perChannel.bytes, x, 500, f);
    expect(argmaxes(c, 10).filter((v, i) => v === argmaxes(a, 10)[i]).length / 500).toBeGreaterThanOrEqual(0.97);
  });

  // onnxruntime's U8S8 kernels saturate on x86 without VNNI (AVX2, AVX-512 alike): the forms the
  // platform writes must not depend on it, so each is held to the same bar on every CPU.
  it.each(['u8', 's7'] as const)('weights %s: >= 0.97 top-1 agreement on 512 uniform rows of the wide MLP, on any x86 CPU', async (weights) => {
    const f = 256;
    const model = buildMlp({ sizes: [f, 1024, 1024, 10], seed: 3 });
    const { bytes } = quantizeInt8(model, { weights });
    const inits = decodeModel(bytes).graph!.initializer!.filter((t) => t.name!.includes('W_quantized'));
    expect(inits).toHaveLength(3);
    for (const t of inits) {
      expect(t.dataType).toBe(weights === 'u8' ? DT.UINT8 : DT.INT8);
      const raw = t.rawData!;
      const vals = weights === 'u8' ? Array.from(raw, (v) => v - 128) : Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength));
      expect(vals.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBe(weights === 'u8' ? 127 : 63);
    }
    let s = 11;
    const x = Float32Array.from({ length: 512 * f }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1);
    const [a, b] = [await run(model, x, 512, f), await run(bytes, x, 512, f)];
    const agree = argmaxes(a, 10).filter((v, i) => v === argmaxes(b, 10)[i]).length / 512;
    expect(agree).toBeGreaterThanOrEqual(0.97);
  });

  it('refuses a model with nothing to quantize, naming the node and why', () => {
    const noConstWeight = buildModel({
      inputs: [
        { name: 'input', elemType: DT.FLOAT, shape: ['n', 1, 8, 8] },
        { name: 'w', elemType: DT.FLOAT, shape: [2, 1, 3, 3] },
      ],
      outputs: [{ name: 'output', elemType: DT.FLOAT, shape: ['n', 2, 6, 6] }],
      nodes: [node('Conv', ['input', 'w'], ['output'], {}, 'conv_user_weights')],
    });
    expect(() => quantizeInt8(noConstWeight)).toThrow(/nothing to quantize.*conv_user_weights \(Conv\): its weight is not a constant/);
    expect(() => quantizeInt8(noConstWeight, { ops: ['MatMul'] })).toThrow(/nothing to quantize: no MatMul node/);
  });
});
