import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { exportColumns } from '../../../../workers/onnx/export-columns.ts';
import { toFloat16 } from '../../../../workers/onnx/fp16.ts';
import { onnxCheck } from '../../../helpers/onnx-checker.ts';

/** Head = the encoded row [age / 10, age missing, color "" | blue | red] and a constant 0 score, so scores minus the last are the encoding. */
function model(columns = { age: 'age', color: 'color' }) {
  const W = 5;
  const weights = new Float32Array(W * (W + 1));
  for (let i = 0; i < W; i++) weights[i * (W + 1) + i] = 1;
  return exportColumns({
    inputs: [
      { name: columns.age, kind: 'numeric' },
      { name: columns.color, kind: 'category' },
    ],
    numeric: [columns.age],
    fill: Float32Array.of(40),
    indicators: [0],
    mean: Float32Array.of(0, 0),
    scale: Float32Array.of(10, 1),
    blocks: [{ kind: 'category', column: columns.color, values: ['', 'blue', 'red'] }],
    layers: [{ weights, bias: new Float32Array(W + 1), inputs: W, outputs: W + 1 }],
    task: 'classification',
    classes: ['a', 'b', 'c', 'd', 'e', 'f'],
  });
}

describe('column-input export', () => {
  it('passes the checker; imputes NaN with the fill and flags it; "" is the missing level; an unseen category is all zeros', async () => {
    const bytes = model();
    expect(await onnxCheck(bytes)).toBeNull();
    const s = await ort.InferenceSession.create(bytes);
    expect(s.inputNames).toEqual(['age', 'color']);
    // log p_i - log p_last = score_i - 0: the encoded row.
    const run = async (age: number, color: string) => {
      const out = await s.run({ age: new ort.Tensor('float32', Float32Array.of(age), [1, 1]), color: new ort.Tensor('string', [color], [1, 1]) });
      const p = Array.from(out.probabilities!.data as Float32Array, Math.log);
      return p.slice(0, 5).map((v) => Math.round((v - p[5]!) * 1e4) / 1e4 + 0);
    };
    expect(await run(20, 'red')).toEqual([2, 0, 0, 0, 1]);
    expect(await run(NaN, 'blue')).toEqual([4, 1, 0, 1, 0]);
    expect(await run(0, '')).toEqual([0, 0, 1, 0, 0]);
    expect(await run(10, 'purple')).toEqual([1, 0, 0, 0, 0]);
  });

  it('takes any column name, inner tensor names included', async () => {
    const bytes = model({ age: 'W0', color: 'numbers_raw' });
    expect(await onnxCheck(bytes)).toBeNull();
    const s = await ort.InferenceSession.create(bytes);
    expect(s.inputNames).toEqual(['W0', 'numbers_raw']);
    const out = await s.run({ W0: new ort.Tensor('float32', Float32Array.of(NaN), [1, 1]), numbers_raw: new ort.Tensor('string', ['red'], [1, 1]) });
    expect(out.label!.data).toEqual(['a']);
  });
});

describe('float16 of a column-input model', () => {
  it('keeps the front end float32 and casts the category block (ai.onnx.ml OneHotEncoder, float output): runs, same probabilities', async () => {
    const half = toFloat16(model(), { keepFrontEnd: true }).bytes;
    expect(await onnxCheck(half)).toBeNull();
    const [a, b] = [await ort.InferenceSession.create(model()), await ort.InferenceSession.create(half)];
    expect(b.inputNames).toEqual(['age', 'color']);
    const feeds = {
      // 70,000 is past float16's range: the front end (imputation, standardization) must stay float32.
      age: new ort.Tensor('float32', Float32Array.of(20, NaN, 0, 70_000), [4, 1]),
      color: new ort.Tensor('string', ['red', 'blue', '', 'purple'], [4, 1]),
    };
    const [pa, pb] = [(await a.run(feeds)).probabilities!.data as Float32Array, (await b.run(feeds)).probabilities!.data as Float32Array];
    expect(pb).toHaveLength(pa.length);
    pa.forEach((v, i) => expect(Math.abs(v - pb[i]!)).toBeLessThan(2e-3));
  });
});
