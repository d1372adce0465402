// Float16 conversion in the manner of onnxconverter-common: every float32 tensor of the graph
// (initializers, also those IR 3 lists as inputs; Constant and ConstantOfShape values; Cast targets;
// value_info) becomes float16, nodes on a block list keep computing in float32 behind Casts, inputs
// that must stay float32 (Resize scales and roi) get a Cast back, and the model's own inputs and
// outputs stay float32. onnxruntime's CPU provider casts around ops it has no float16 kernel for.
import { toHalf } from './half.ts';
import { constants, dimsOf, f16, finishRewrite, floatData, GraphEditError, graphOf, type Graph, type Node, uniqueNamer } from './graph.ts';
import { DT, decodeModel, encodeModel, onnx, type TensorProto } from './proto.ts';
import { declaredType, inferTypes } from './types.ts';

/** Ops kept in float32 (onnxconverter-common's list for the standard domain, and TfIdfVectorizer, whose output is float32 only): range-sensitive or without float16 support. */
export const FP16_BLOCK = new Set([
  'TfIdfVectorizer',
  'TopK',
  'NonMaxSuppression',
  'RoiAlign',
  'Range',
  'CumSum',
  'Min',
  'Max',
  'Upsample',
  'RandomUniformLike',
  'Multinomial',
]);
/** Inputs that must stay float32 whatever the data's type: they are sizes, not data. */
const KEEP_FLOAT_INPUTS: Record<string, number[]> = { Resize: [1, 2], Upsample: [1] };

/** Ops that carry a model's weights: what comes before the first of them on an input's path is its front end. */
const WEIGHT_OPS = new Set(['MatMul', 'Gemm', 'Conv', 'ConvTranspose', 'LSTM', 'GRU', 'RNN', 'Einsum']);

/**
 * The front end: nodes that read the model's inputs before any weight op does (imputation,
 * standardization, encodings). Raw values there need not fit float16 (an income of 80,000 is Inf
 * past 65,504), so these nodes keep float32 and their result is cast to float16 for the weights.
 */
function frontEnd(g: Graph): Set<Node> {
  const inits = new Set(g.initializer.map((t) => t.name));
  const fromInput = new Set(g.input.filter((v) => !inits.has(v.name)).map((v) => v.name));
  const pastWeights = new Set<string>();
  const front = new Set<Node>();
  // Without a weight op there is no front end to tell apart: the whole graph is the model.
  if (!g.node.some((n) => WEIGHT_OPS.has(n.opType))) return front;
  for (const n of g.node) {
    const past = WEIGHT_OPS.has(n.opType) || n.input.some((x) => pastWeights.has(x));
    if (past) for (const o of n.output) pastWeights.add(o);
    else if (n.input.some((x) => fromInput.has(x))) {
      front.add(n);
      for (const o of n.output) fromInput.add(o);
    }
  }
  return front;
}

export interface Fp16Options {
  /** Keep the front end (what reads the inputs before the first weight op) in float32. Default false: the
   * compression job's second form turns it on with the range-sensitive ops (workers/compression/rewrite.ts). */
  keepFrontEnd?: boolean;
  /** More op types to keep in float32. Default none. */
  blockOps?: string[];
  /** Keep float32 inputs and outputs at the model's edges. Default true. */
  keepIoTypes?: boolean;
}

export interface Fp16Report {
  converted: number;
  blocked: string[];
  casts: number;
}

function halfTensor(t: TensorProto, name = t.name): TensorProto {
  const data = floatData(t);
  const h = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) h[i] = toHalf(data[i]!);
  return f16(name, dimsOf(t), h);
}

const castNode = (input: string, output: string, to: number, name: string): Node =>
  onnx.NodeProto.create({
    opType: 'Cast',
    input: [input],
    output: [output],
    name,
    attribute: [onnx.AttributeProto.create({ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: to })],
  }) as unknown as Node;

const setElemType = (v: unknown, t: number) => {
  const tt = (v as { type?: { tensorType?: { elemType?: number } } }).type?.tensorType;
  if (tt) tt.elemType = t;
};

interface Plan {
  g: Graph;
  types: Map<string, number>;
  blocked: Set<Node>;
  keepFloat: Set<string>;
  fresh: (b: string) => string;
  /** The border Casts this conversion wrote, so that round trips between them can be dropped. */
  toHalf: Set<Node>;
  toFloat: Set<Node>;
}

/** Constants read only as float32 (by blocked nodes or size inputs) stay float32. */
function float32Constants(p: Plan): Set<string> {
  const readers = new Map<string, boolean[]>();
  for (const n of p.g.node)
    n.input.forEach((x, i) => {
      const asFloat = p.blocked.has(n) || (KEEP_FLOAT_INPUTS[n.opType] ?? []).includes(i);
      readers.set(x, [...(readers.get(x) ?? []), asFloat]);
    });
  const keep = new Set<string>();
  // Initializers and Constant nodes only: an Identity copy follows its source's type.
  for (const [name, c] of constants(p.g)) {
    if (c.node?.opType === 'Identity') continue;
    const r = readers.get(name);
    if (r && r.every(Boolean)) keep.add(name);
  }
  return keep;
}

function convertConstants(p: Plan): number {
  let converted = 0;
  p.g.initializer = p.g.initializer.map((t) => (t.dataType === DT.FLOAT && !p.keepFloat.has(t.name) ? (converted++, halfTensor(t)) : t));
  for (const n of p.g.node) {
    const value = n.attribute.find((a) => a.name === 'value');
    if (n.opType === 'Constant' && value?.t?.dataType === DT.FLOAT && !p.keepFloat.has(n.output[0]!)) {
      value.t = halfTensor(constants({ ...p.g, node: [n], initializer: [] }).get(n.output[0]!)!.tensor, value.t.name ?? '');
      converted++;
    } else if (n.opType === 'ConstantOfShape' && !p.blocked.has(n)) {
      if (!value)
        n.attribute.push(
          onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: f16('', [1], new Uint16Array(1)) }) as never,
        );
      else if (value.t?.dataType === DT.FLOAT) value.t = halfTensor(value.t as TensorProto, value.t.name ?? '');
    } else if (n.opType === 'Cast' && !p.blocked.has(n)) {
      const to = n.attribute.find((a) => a.name === 'to');
      if (to && Number(to.i) === DT.FLOAT) to.i = DT.FLOAT16;
    } else if (/^Random|^EyeLike$/.test(n.opType) && !p.blocked.has(n)) {
      const dt = n.attribute.find((a) => a.name === 'dtype');
      if (dt && Number(dt.i) === DT.FLOAT) dt.i = DT.FLOAT16;
    }
  }
  return converted;
}

const isFloat = (p: Plan, v: string) => !!v && p.types.get(v) === DT.FLOAT && !p.keepFloat.has(v);

/** Casts around blocked nodes and size inputs: they read float32 and their float outputs go back to float16. */
function castBorders(p: Plan, graphOutputs: Set<string>): { nodes: Node[]; casts: number } {
  const out: Node[] = [];
  let casts = 0;
  for (const n of p.g.node) {
    const keepSlots = p.blocked.has(n) ? n.input.map((_, i) => i) : (KEEP_FLOAT_INPUTS[n.opType] ?? []);
    n.input = n.input.map((x, i) => {
      if (!keepSlots.includes(i) || !isFloat(p, x)) return x;
      const y = p.fresh(`${x}_fp32`);
      const c = castNode(x, y, DT.FLOAT, p.fresh(`${x}_Cast_fp32`));
      p.toFloat.add(c);
      out.push(c);
      casts++;
      return y;
    });
    out.push(n);
    if (!p.blocked.has(n)) continue;
    n.output = n.output.map((y) => {
      if (p.types.get(y) !== DT.FLOAT || graphOutputs.has(y)) return y;
      const tmp = p.fresh(`${y}_fp32`);
      // The float32 value keeps the type the graph declared for it (ai.onnx.ml ops may have no type inference).
      const declared = p.g.valueInfo.find((v) => v.name === y);
      if (declared)
        p.g.valueInfo.push(Object.assign(onnx.ValueInfoProto.decode(onnx.ValueInfoProto.encode(declared as never).finish()), { name: tmp }) as never);
      const c = castNode(tmp, y, DT.FLOAT16, p.fresh(`${y}_Cast_fp16`));
      p.toHalf.add(c);
      out.push(c);
      casts++;
      return tmp;
    });
  }
  return { nodes: out, casts };
}

/** float32 at the model's edges: Casts after the inputs and before the outputs. */
function castEdges(p: Plan, producers: Map<string, Node>): { head: Node[]; tail: Node[] } {
  const head: Node[] = [];
  const tail: Node[] = [];
  const inits = new Set(p.g.initializer.map((t) => t.name));
  for (const input of p.g.input) {
    if (inits.has(input.name) || declaredType(input) !== DT.FLOAT) continue;
    const half = p.fresh(`${input.name}_fp16`);
    const c = castNode(input.name, half, DT.FLOAT16, p.fresh(`${input.name}_Cast_fp16`));
    p.toHalf.add(c);
    head.push(c);
    for (const n of p.g.node) n.input = n.input.map((x) => (x === input.name ? half : x));
  }
  for (const output of p.g.output) {
    const producer = producers.get(output.name);
    if (declaredType(output) !== DT.FLOAT || !producer || p.blocked.has(producer)) continue;
    const half = p.fresh(`${output.name}_fp16`);
    for (const n of p.g.node) {
      n.output = n.output.map((x) => (x === output.name ? half : x));
      n.input = n.input.map((x) => (x === output.name ? half : x));
    }
    tail.push(castNode(half, output.name, DT.FLOAT, p.fresh(`${output.name}_Cast_fp32`)));
  }
  return { head, tail };
}

/** float32 -> float16 -> float32 round trips left by adjacent borders: read the float32 value directly. */
function dropCastPairs(p: Plan, nodes: Node[]): Node[] {
  const toHalfOf = new Map<string, string>();
  for (const n of p.toHalf) toHalfOf.set(n.output[0]!, n.input[0]!);
  const alias = new Map<string, string>();
  const kept = nodes.filter((n) => {
    const src = p.toFloat.has(n) ? toHalfOf.get(n.input[0]!) : undefined;
    if (src === undefined) return true;
    alias.set(n.output[0]!, src);
    return false;
  });
  for (const n of kept) n.input = n.input.map((x) => alias.get(x) ?? x);
  return kept;
}

export function toFloat16(bytes: Uint8Array, opts: Fp16Options = {}): { bytes: Uint8Array; converted: number; report: Fp16Report } {
  const m = decodeModel(bytes);
  const g = graphOf(m);
  const block = new Set([...FP16_BLOCK, ...(opts.blockOps ?? [])]);
  const sub = g.node.find((n) => n.attribute.some((a) => a.g || (a.graphs ?? []).length));
  if (sub) throw new GraphEditError(`node "${sub.name || sub.output[0]}" (${sub.opType}) has a subgraph; float16 conversion of subgraphs is not supported`);
  const p: Plan = {
    g,
    types: inferTypes(g),
    blocked: new Set([...g.node.filter((n) => block.has(n.opType) || (n.domain !== '' && n.domain !== 'ai.onnx')), ...(opts.keepFrontEnd ? frontEnd(g) : [])]),
    keepFloat: new Set(),
    fresh: uniqueNamer(g),
    toHalf: new Set(),
    toFloat: new Set(),
  };
  p.keepFloat = float32Constants(p);
  const converted = convertConstants(p);
  if (!converted) throw new GraphEditError('nothing to convert: the model has no float32 weights');
  const graphOutputs = new Set(g.output.map((o) => o.name));
  const producers = new Map<string, Node>();
  for (const n of g.node) for (const o of n.output) producers.set(o, n);
  const borders = castBorders(p, graphOutputs);
  g.node = borders.nodes;
  const { head, tail } = (opts.keepIoTypes ?? true) ? castEdges(p, producers) : { head: [], tail: [] };
  g.node = dropCastPairs(p, [...head, ...g.node, ...tail]);
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  for (const v of g.input) {
    const t = inits.get(v.name);
    if (t) setElemType(v, t.dataType ?? DT.FLOAT);
  }
  for (const v of g.valueInfo) if (isFloat(p, v.name)) setElemType(v, DT.FLOAT16);
  if (!(opts.keepIoTypes ?? true))
    for (const v of [...g.input, ...g.output]) if (!inits.has(v.name) && declaredType(v) === DT.FLOAT) setElemType(v, DT.FLOAT16);
  finishRewrite(m);
  return {
    bytes: encodeModel(m),
    converted,
    report: { converted, blocked: [...p.blocked].map((n) => `${n.name || n.output[0]} (${n.opType})`), casts: borders.casts + head.length + tail.length },
  };
}
