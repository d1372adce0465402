// Float16 conversion: weights and computation in float16, with Casts at the graph's edges so
// callers still send and receive float32. Meant for GPU serving (CPU kernels for float16 are few).
import { DT, decodeModel, encodeModel, onnx, type TensorProto } from './proto.ts';
import { constants, dimsOf, f16, floatData, GraphEditError, graphOf, type Node, uniqueNamer } from './graph.ts';

/** IEEE 754 half precision, round to nearest even. */
export function toHalf(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> 0
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return half;
}

const cast = (input: string, output: string, to: number, name: string): Node =>
  onnx.NodeProto.create({ opType: 'Cast', input: [input], output: [output], name, attribute: [onnx.AttributeProto.create({ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: to })] }) as unknown as Node;

function halfTensor(t: TensorProto, name = t.name): TensorProto {
  const data = floatData(t);
  const h = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) h[i] = toHalf(data[i]!);
  return f16(name, dimsOf(t), h);
}

export function toFloat16(bytes: Uint8Array): { bytes: Uint8Array; converted: number } {
  const m = decodeModel(bytes);
  const g = graphOf(m);
  const fresh = uniqueNamer(g);
  let converted = 0;
  g.initializer = g.initializer.map((t) => (t.dataType === DT.FLOAT ? (converted++, halfTensor(t)) : t));
  for (const { node, tensor } of constants(g).values()) {
    if (!node || tensor.dataType !== DT.FLOAT) continue;
    const a = node.attribute.find((x) => x.name === 'value')!;
    a.t = halfTensor(tensor, a.t?.name ?? '');
    converted++;
  }
  if (!converted) throw new GraphEditError('nothing to convert: the model has no float32 weights');
  for (const n of g.node) {
    const to = n.opType === 'Cast' ? n.attribute.find((a) => a.name === 'to') : undefined;
    if (to && Number(to.i) === DT.FLOAT) to.i = DT.FLOAT16; // computation stays in float16
  }
  const elemType = (v: unknown) => (v as { type?: { tensorType?: { elemType?: number } } }).type?.tensorType?.elemType;
  const initNames = new Set(g.initializer.map((t) => t.name));
  const head: Node[] = [];
  for (const input of g.input) {
    if (initNames.has(input.name) || elemType(input) !== DT.FLOAT) continue;
    const half = fresh(`${input.name}_fp16`);
    head.push(cast(input.name, half, DT.FLOAT16, fresh(`${input.name}_Cast_fp16`)));
    for (const n of g.node) n.input = n.input.map((x) => (x === input.name ? half : x));
  }
  const tail: Node[] = [];
  for (const output of g.output) {
    if (elemType(output) !== DT.FLOAT) continue;
    const half = fresh(`${output.name}_fp16`);
    for (const n of g.node) n.output = n.output.map((x) => (x === output.name ? half : x));
    tail.push(cast(half, output.name, DT.FLOAT, fresh(`${output.name}_Cast_fp32`)));
  }
  g.node = [...head, ...g.node, ...tail];
  g.valueInfo = []; // intermediate types changed; shape inference recomputes them
  return { bytes: encodeModel(m), converted };
}
