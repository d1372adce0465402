// Writes ONNX graphs from scratch: opset 17, IR version 8, so every recent runtime and checker reads them.
import { DT, encodeModel, onnx, type NodeProto, type TensorProto } from './proto.ts';

export const OPSET = 17;
export const IR_VERSION = 8;

/** A dimension: a fixed size, or a name for a dynamic one ("batch"). */
export type Dim = number | string;

export interface ValueSpec {
  name: string;
  elemType: number;
  shape: Dim[];
}

export function valueInfo(v: ValueSpec) {
  return onnx.ValueInfoProto.create({
    name: v.name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: v.elemType,
        shape: onnx.TensorShapeProto.create({
          dim: v.shape.map((d) => onnx.TensorShapeProto.Dimension.create(typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        }),
      }),
    }),
  });
}

export function floatTensor(name: string, dims: number[], data: Float32Array): TensorProto {
  return onnx.TensorProto.create({ name, dims, dataType: DT.FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
}

export function int64Tensor(name: string, dims: number[], data: number[]): TensorProto {
  const arr = BigInt64Array.from(data, (x) => BigInt(x));
  return onnx.TensorProto.create({ name, dims, dataType: DT.INT64, rawData: new Uint8Array(arr.buffer) });
}

/** A string tensor (UTF-8 elements), e.g. the class names a classifier's label is gathered from. */
export function stringTensor(name: string, dims: number[], data: string[]): TensorProto {
  const enc = new TextEncoder();
  return onnx.TensorProto.create({ name, dims, dataType: DT.STRING, stringData: data.map((s) => enc.encode(s)) });
}

/** Attribute values: an int or float, a string, ints, floats (`{ floats: [...] }`), strings (`{ strings: [...] }`, so an empty list still has its type), a tensor. */
type AttrValue = number | string | number[] | { strings: string[] } | { floats: number[] } | TensorProto;
export function node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, AttrValue> = {}, name?: string, domain?: string): NodeProto {
  const enc = new TextEncoder();
  const attribute = Object.entries(attrs).map(([k, v]) => {
    const A = onnx.AttributeProto.AttributeType;
    if (typeof v === 'number')
      return Number.isInteger(v) ? onnx.AttributeProto.create({ name: k, type: A.INT, i: v }) : onnx.AttributeProto.create({ name: k, type: A.FLOAT, f: v });
    if (typeof v === 'string') return onnx.AttributeProto.create({ name: k, type: A.STRING, s: enc.encode(v) });
    if (Array.isArray(v)) return onnx.AttributeProto.create({ name: k, type: A.INTS, ints: v });
    if ('floats' in v && Array.isArray(v.floats)) return onnx.AttributeProto.create({ name: k, type: A.FLOATS, floats: v.floats });
    if ('strings' in v && Array.isArray(v.strings))
      return onnx.AttributeProto.create({ name: k, type: A.STRINGS, strings: v.strings.map((s) => enc.encode(s)) });
    return onnx.AttributeProto.create({ name: k, type: A.TENSOR, t: v as TensorProto });
  });
  return onnx.NodeProto.create({ opType, input: inputs, output: outputs, attribute, name: name ?? `${opType}_${outputs[0]}`, ...(domain ? { domain } : {}) });
}

export interface GraphSpec {
  name?: string;
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  nodes: NodeProto[];
  initializers?: TensorProto[];
  metadata?: Record<string, string>;
  opset?: number;
  /** Types of inner tensors that shape inference cannot tell (e.g. ai.onnx.ml OneHotEncoder's output). */
  valueInfo?: ValueSpec[];
  /** Operator sets of other domains the graph uses, e.g. { domain: 'com.microsoft', version: 1 }. */
  domains?: { domain: string; version: number }[];
}

export function buildModel(g: GraphSpec): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'modelq',
    producerVersion: '0.1',
    opsetImport: [{ domain: '', version: g.opset ?? OPSET }, ...(g.domains ?? [])].map((o) => onnx.OperatorSetIdProto.create(o)),
    metadataProps: Object.entries(g.metadata ?? {}).map(([key, value]) => onnx.StringStringEntryProto.create({ key, value })),
    graph: onnx.GraphProto.create({
      name: g.name ?? 'modelq',
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
      node: g.nodes,
      initializer: g.initializers ?? [],
      valueInfo: (g.valueInfo ?? []).map(valueInfo),
    }),
  });
  return encodeModel(model);
}

/** Deterministic PRNG (mulberry32) so generated models are reproducible from a seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface MlpOptions {
  /** Layer widths, input first: [256, 1024, 1024, 10]. */
  sizes: number[];
  seed?: number;
  /** Name of the dynamic batch dimension, or a fixed batch size. Default "batch". */
  batch?: Dim;
  inputName?: string;
  outputName?: string;
  /** Append a Softmax to the last layer. Default false (raw logits). */
  softmax?: boolean;
}

/** An MLP: MatMul + Add (+ Relu between layers), He-scaled seeded weights. */
export function buildMlp(o: MlpOptions): Uint8Array {
  const rand = rng(o.seed ?? 1);
  const batch = o.batch ?? 'batch';
  const inputName = o.inputName ?? 'input';
  const outputName = o.outputName ?? 'output';
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let cur = inputName;
  const layers = o.sizes.length - 1;
  for (let l = 0; l < layers; l++) {
    const fanIn = o.sizes[l]!;
    const fanOut = o.sizes[l + 1]!;
    const w = new Float32Array(fanIn * fanOut);
    const scale = Math.sqrt(6 / fanIn);
    for (let i = 0; i < w.length; i++) w[i] = (rand() * 2 - 1) * scale;
    const b = new Float32Array(fanOut);
    for (let i = 0; i < b.length; i++) b[i] = (rand() * 2 - 1) * 0.1;
    inits.push(floatTensor(`W${l}`, [fanIn, fanOut], w), floatTensor(`B${l}`, [fanOut], b));
    const last = l === layers - 1;
    nodes.push(node('MatMul', [cur, `W${l}`], [`mm${l}`]));
    const addOut = last && !o.softmax ? outputName : `add${l}`;
    nodes.push(node('Add', [`mm${l}`, `B${l}`], [addOut]));
    if (!last) {
      nodes.push(node('Relu', [addOut], [`relu${l}`]));
      cur = `relu${l}`;
    } else if (o.softmax) {
      nodes.push(node('Softmax', [addOut], [outputName], { axis: -1 }));
    }
  }
  return buildModel({
    name: `mlp_${o.sizes.join('_')}`,
    inputs: [{ name: inputName, elemType: DT.FLOAT, shape: [batch, o.sizes[0]!] }],
    outputs: [{ name: outputName, elemType: DT.FLOAT, shape: [batch, o.sizes[o.sizes.length - 1]!] }],
    nodes,
    initializers: inits,
  });
}
