// Each opset adapter on a model built at the old opset: the converted model passes the official
// checker and onnxruntime gives the same answers before and after.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildModel, floatTensor, int64Tensor, node } from '../../../../../workers/onnx/builder.ts';
import { defaultOpset } from '../../../../../workers/onnx/graph.ts';
import { convertOpset } from '../../../../../workers/onnx/opset/index.ts';
import { decodeModel, DT, encodeModel, onnx } from '../../../../../workers/onnx/proto.ts';
import { onnxCheck } from '../../../../helpers/onnx-checker.ts';

const X = Float32Array.from({ length: 2 * 3 * 4 * 4 }, (_, i) => Math.sin(i * 1.7) * 3);
type Out = { name: string; shape: (number | string)[]; elemType?: number };

function model(opset: number, nodes: ReturnType<typeof node>[], outputs: Out[], inits: ReturnType<typeof floatTensor>[] = [], shape = [2, 3, 4, 4]) {
  return buildModel({
    opset,
    nodes,
    initializers: inits,
    inputs: [{ name: 'x', elemType: DT.FLOAT, shape }],
    outputs: outputs.map((o) => ({ elemType: DT.FLOAT, ...o })),
  });
}

async function run(bytes: Uint8Array, shape = [2, 3, 4, 4]) {
  const s = await ort.InferenceSession.create(bytes);
  const out = await s.run({
    x: new ort.Tensor(
      'float32',
      X.slice(
        0,
        shape.reduce((a, b) => a * b, 1),
      ),
      shape,
    ),
  });
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { dims: v.dims, data: Array.from(v.data as Float32Array, Number) }]));
}

async function expectSame(bytes: Uint8Array, to: number, shape?: number[]) {
  const m = decodeModel(bytes);
  const r = convertOpset(m, to);
  expect(r.rewritten).toBeGreaterThan(0);
  expect(defaultOpset(m)).toBe(to);
  const after = encodeModel(m);
  expect(await onnxCheck(after)).toBeNull();
  const [a, b] = [await run(bytes, shape), await run(after, shape)];
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  for (const k of Object.keys(a)) {
    expect(b[k]!.dims).toEqual(a[k]!.dims);
    a[k]!.data.forEach((v, i) => expect(b[k]!.data[i]).toBeCloseTo(v, 5));
  }
  return m;
}

const floatsAttr = (name: string, floats: number[]) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOATS, floats });

describe('opset adapters', () => {
  it('Slice 9 -> 10: attributes become inputs, INT64_MAX ends included', async () => {
    const n = node('Slice', ['x'], ['y'], { starts: [1, 1], ends: [Number.MAX_SAFE_INTEGER, 3], axes: [2, 3] });
    const m = await expectSame(model(9, [n], [{ name: 'y', shape: [2, 3, 3, 2] }]), 10);
    expect(m.graph!.node![0]!.input).toHaveLength(4);
  });

  it('Pad 7 -> 11: pads and value become inputs', async () => {
    const n = node('Pad', ['x'], ['y'], { pads: [0, 0, 1, 2, 0, 0, 1, 0], value: 0.5, mode: 'constant' });
    await expectSame(model(7, [n], [{ name: 'y', shape: [2, 3, 6, 6] }]), 11);
  });

  it('Upsample 7 (scales attribute) -> Resize 13', async () => {
    const n = node('Upsample', ['x'], ['y'], { mode: 'nearest' });
    n.attribute!.push(floatsAttr('scales', [1, 1, 2, 2]));
    const m = await expectSame(model(7, [n], [{ name: 'y', shape: [2, 3, 8, 8] }]), 13);
    expect(m.graph!.node![0]!.opType).toBe('Resize');
  });

  it('Upsample 9 (scales input, linear) -> Resize 11 with a roi', async () => {
    const n = node('Upsample', ['x', 'scales'], ['y'], { mode: 'linear' });
    await expectSame(model(9, [n], [{ name: 'y', shape: [2, 3, 8, 8] }], [floatTensor('scales', [4], Float32Array.of(1, 1, 2, 2))]), 11);
  });

  it('Resize 10 -> 11: asymmetric coordinates, nearest rounding down', async () => {
    const n = node('Resize', ['x', 'scales'], ['y'], { mode: 'nearest' });
    await expectSame(model(10, [n], [{ name: 'y', shape: [2, 3, 6, 6] }], [floatTensor('scales', [4], Float32Array.of(1, 1, 1.5, 1.5))]), 11);
  });

  it('TopK 9 -> 10: k becomes an input', async () => {
    const n = node('TopK', ['x'], ['v', 'i'], { k: 2, axis: 3 });
    const m = model(
      9,
      [n],
      [
        { name: 'v', shape: [2, 3, 4, 2] },
        { name: 'i', shape: [2, 3, 4, 2], elemType: DT.INT64 },
      ],
    );
    const s = await ort.InferenceSession.create(m);
    expect(s.outputNames).toEqual(['v', 'i']);
    const dm = decodeModel(m);
    convertOpset(dm, 10);
    const after = encodeModel(dm);
    expect(await onnxCheck(after)).toBeNull();
    const xs = new ort.Tensor('float32', X, [2, 3, 4, 4]);
    const [a, b] = [await s.run({ x: xs }), await (await ort.InferenceSession.create(after)).run({ x: xs })];
    expect(Array.from(b.v!.data as Float32Array)).toEqual(Array.from(a.v!.data as Float32Array));
    expect(Array.from(b.i!.data as BigInt64Array)).toEqual(Array.from(a.i!.data as BigInt64Array));
  });

  it('Clip 7 -> 11: min and max become inputs', async () => {
    await expectSame(model(7, [node('Clip', ['x'], ['y'], { min: -1.25, max: 1.5 })], [{ name: 'y', shape: [2, 3, 4, 4] }]), 11);
  });

  it('Split 11 -> 13: sizes become an input', async () => {
    const n = node('Split', ['x'], ['a', 'b'], { axis: 3, split: [1, 3] });
    await expectSame(
      model(
        11,
        [n],
        [
          { name: 'a', shape: [2, 3, 4, 1] },
          { name: 'b', shape: [2, 3, 4, 3] },
        ],
      ),
      13,
    );
  });

  it('Squeeze and Unsqueeze 11 -> 13: axes become inputs', async () => {
    const nodes = [node('Unsqueeze', ['x'], ['u'], { axes: [0] }), node('Squeeze', ['u'], ['y'], { axes: [0] })];
    await expectSame(model(11, nodes, [{ name: 'y', shape: [2, 3, 4, 4] }]), 13);
  });

  it('ReduceSum 11 -> 13 (axes input); ReduceMean keeps its form', async () => {
    const nodes = [node('ReduceSum', ['x'], ['s'], { axes: [2, 3], keepdims: 0 }), node('ReduceMean', ['x'], ['m'], { axes: [1] })];
    const m = await expectSame(
      model(11, nodes, [
        { name: 's', shape: [2, 3] },
        { name: 'm', shape: [2, 1, 4, 4] },
      ]),
      13,
    );
    expect(m.graph!.node![1]!.input).toHaveLength(1);
  });

  it('BatchNormalization 7 -> 14: spatial dropped, unused training outputs removed', async () => {
    const c = (v: number) => floatTensor(`c${v}`, [3], Float32Array.of(v, v + 0.5, v + 1));
    const n = node('BatchNormalization', ['x', 'c1', 'c0', 'c2', 'c3'], ['y'], { spatial: 1, epsilon: 1e-5 });
    await expectSame(model(7, [n], [{ name: 'y', shape: [2, 3, 4, 4] }], [c(0), c(1), c(2), c(3)]), 14);
  });

  it('Dropout 7 -> 12: becomes Identity', async () => {
    const nodes = [node('Dropout', ['x'], ['d'], { ratio: 0.3 }), node('Relu', ['d'], ['y'])];
    const m = await expectSame(model(7, nodes, [{ name: 'y', shape: [2, 3, 4, 4] }]), 12);
    expect(m.graph!.node![0]!.opType).toBe('Identity');
  });

  it('Softmax 11 -> 13: the old flatten-at-axis meaning is kept', async () => {
    const nodes = [node('Softmax', ['x'], ['s'], { axis: 1 }), node('LogSoftmax', ['x'], ['l'], { axis: 2 })];
    await expectSame(
      model(11, nodes, [
        { name: 's', shape: [2, 3, 4, 4] },
        { name: 'l', shape: [2, 3, 4, 4] },
      ]),
      13,
    );
  });

  it('names the node it cannot carry over', () => {
    const n = node('BatchNormalization', ['x', 'c', 'c', 'c', 'c'], ['y'], { spatial: 0 }, 'bn_odd');
    const m = decodeModel(model(7, [n], [{ name: 'y', shape: [2, 3, 4, 4] }], [floatTensor('c', [3], Float32Array.of(1, 1, 1))]));
    expect(() => convertOpset(m, 11)).toThrow(/node "bn_odd" \(BatchNormalization\): spatial=0/);
    void int64Tensor;
  });
});
