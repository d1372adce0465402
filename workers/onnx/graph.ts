// Reading and editing decoded ONNX graphs: constant weights (initializers or Constant nodes) as
// Float32Arrays, new tensors of the element types the rewrites need, opset bookkeeping.
import { decodeModel, DT, onnx, type AttributeProto, type ModelProto, type TensorProto } from './proto.ts';

export class GraphEditError extends Error {}

// Decoded protobuf messages always carry their repeated fields ([]) and strings (''); these types
// say so, where the generated interfaces leave every field optional and nullable.
export type Attribute = AttributeProto;
export interface Node {
  opType: string;
  input: string[];
  output: string[];
  name: string;
  domain: string;
  attribute: Attribute[];
}
export interface ValueInfo {
  name: string;
}
export interface Graph {
  node: Node[];
  initializer: TensorProto[];
  input: ValueInfo[];
  output: ValueInfo[];
  valueInfo: ValueInfo[];
}

export function graphOf(m: ModelProto): Graph {
  if (!m.graph) throw new GraphEditError('the model has no graph');
  return m.graph as unknown as Graph;
}

/** Float data of a FLOAT tensor, whichever way it is stored. */
export function floatData(t: TensorProto): Float32Array {
  if (t.dataType !== DT.FLOAT) throw new GraphEditError(`tensor "${t.name}" is not float32 (type ${t.dataType})`);
  if (t.rawData && t.rawData.length) {
    const copy = new Uint8Array(t.rawData); // aligned copy
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

export const dimsOf = (t: TensorProto): number[] => (t.dims ?? []).map(Number);

export function tensor(name: string, dataType: number, dims: number[], bytes: Uint8Array): TensorProto {
  return onnx.TensorProto.create({ name, dims, dataType, rawData: bytes });
}
export const f32 = (name: string, dims: number[], a: Float32Array) => tensor(name, DT.FLOAT, dims, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
export const i8 = (name: string, dims: number[], a: Int8Array) => tensor(name, DT.INT8, dims, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
export const f16 = (name: string, dims: number[], a: Uint16Array) => tensor(name, DT.FLOAT16, dims, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

/** Constant tensors by name: initializers, the outputs of Constant nodes with a `value` tensor, and Identity copies of either. */
export function constants(g: Graph): Map<string, { tensor: TensorProto; node?: Node }> {
  const out = new Map<string, { tensor: TensorProto; node?: Node }>();
  for (const t of g.initializer) out.set(t.name, { tensor: t });
  for (const n of g.node) {
    if (n.opType !== 'Constant' || n.domain !== '') continue;
    const v = n.attribute.find((a) => a.name === 'value' && a.t);
    if (v?.t && n.output[0]) out.set(n.output[0], { tensor: onnx.TensorProto.create({ ...(v.t as TensorProto), name: n.output[0] }), node: n });
  }
  // Exporters share equal weights through Identity nodes (torch's parameter deduplication).
  for (const n of g.node) {
    const src = n.opType === 'Identity' && n.domain === '' ? out.get(n.input[0]!) : undefined;
    if (src && n.output[0]) out.set(n.output[0], { tensor: onnx.TensorProto.create({ ...src.tensor, name: n.output[0] }), node: n });
  }
  return out;
}

export function attr(n: Node, name: string): number | undefined {
  const a = n.attribute.find((x) => x.name === name);
  if (!a) return undefined;
  return a.type === onnx.AttributeProto.AttributeType.FLOAT ? a.f : Number(a.i);
}

export function defaultOpset(m: ModelProto): number {
  const o = (m.opsetImport ?? []).find((x) => !x.domain || x.domain === '' || x.domain === 'ai.onnx');
  return o ? Number(o.version) : 1;
}

/** A name not used by any value of the graph. */
export function uniqueNamer(g: Graph): (base: string) => string {
  const used = new Set<string>();
  for (const t of g.initializer) used.add(t.name);
  for (const v of [...g.input, ...g.output, ...g.valueInfo]) used.add(v.name);
  for (const n of g.node) {
    for (const x of [...n.input, ...n.output]) used.add(x);
    if (n.name) used.add(n.name);
  }
  return (base) => {
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    return name;
  };
}

/** Weights of a model: the elements of its floating-point constants (initializers and Constant nodes). */
export function parameterCount(bytes: Uint8Array): number {
  const floating = new Set<number>([DT.FLOAT, DT.FLOAT16, DT.DOUBLE, DT.INT8, DT.UINT8]);
  let n = 0;
  for (const { tensor: t } of constants(graphOf(decodeModel(bytes))).values()) {
    if (floating.has(t.dataType ?? 0)) n += dimsOf(t).reduce((a, b) => a * b, 1);
  }
  return n;
}

/**
 * What every rewrite does last: initializers leave the graph's inputs (IR 3 exporters list them
 * there, and onnxruntime then treats weights as overridable, skipping constant folding and weight
 * prepacking), which needs IR version 4 or later.
 */
export function finishRewrite(m: ModelProto): void {
  const g = graphOf(m);
  const inits = new Set(g.initializer.map((t) => t.name));
  g.input = g.input.filter((i) => !inits.has(i.name));
  m.irVersion = Math.max(Number(m.irVersion ?? 3), 4);
}
