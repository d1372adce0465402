import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { buildMlp, buildModel, floatTensor, node } from '../../../../workers/onnx/builder.ts';
import { DT } from '../../../../workers/onnx/proto.ts';
import { onnxCheck } from '../../../helpers/onnx-checker.ts';
import { quantizeInt8 } from '../../../../workers/onnx/quantize/dynamic.ts';
import { rows } from '../../../fixtures/models.ts';

async function run(bytes: Uint8Array, x: Float32Array, n: number, f: number) {
  const s = await ort.InferenceSession.create(bytes);
  const out = await s.run({ input: new ort.Tensor('float32', x, [n, f]) });
  return out.output!.data as Float32Array;
}
const argmaxes = (y: Float32Array, c: number) => Array.from({ length: y.length / c }, (_, i) => { let b = 0; for (let j = 1; j < c; j++) if (y[i * c + j]! > y[i * c + b]!) b = j; return b; });

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

  it('refuses a model with nothing to quantize, naming why', () => {
    const noMatMul = buildModel({
      inputs: [{ name: 'input', elemType: DT.FLOAT, shape: ['n', 4] }, { name: 'w', elemType: DT.FLOAT, shape: [4, 2] }],
      outputs: [{ name: 'output', elemType: DT.FLOAT, shape: ['n', 2] }],
      nodes: [node('MatMul', ['input', 'w'], ['mm']), node('Add', ['mm', 'b'], ['output'])],
      initializers: [floatTensor('b', [2], new Float32Array(2))],
    });
    expect(() => quantizeInt8(noMatMul)).toThrow(/nothing to quantize.*MatMul_mm \(MatMul\): its weight is not a constant/);
  });
});
