// Shared parts of the int8 rewrites: the rewrite context (constants, fresh names, one
// DynamicQuantizeLinear per activation), symmetric weight quantization, node construction.
import { DT, onnx } from '../proto.ts';
import { constants, dimsOf, f32, floatData, type Graph, i8, type Node, tensor, uniqueNamer } from '../graph.ts';
import type { TensorProto } from '../proto.ts';

export interface QuantizeReport {
  quantized: { node: string; op: string; as: string }[];
  skipped: { node: string; op: string; reason: string }[];
}

export interface QuantCtx {
  g: Graph;
  consts: ReturnType<typeof constants>;
  fresh: (base: string) => string;
  report: QuantizeReport;
  perChannel: boolean;
  /** How integer weights are stored; see WeightForm. */
  weights: WeightForm;
  /** Nodes written before the node being rewritten (activation quantization). */
  out: Node[];
  dynamic: Map<string, [string, string, string]>;
  /** Float weights replaced by int8 copies; dropped at the end when nothing else reads them. */
  replaced: Set<string>;
}

/**
 * How a MatMul's, Gemm's or QDQ weight is stored. onnxruntime's U8S8 kernels on x86 without VNNI (AVX2 and
 * AVX-512 alike) sum pairs of uint8 x int8 products in 16 bits, which saturate at full range:
 * - 'u8': uint8 with zero point 128 (U8U8 kernels widen to 16 bits first, nothing saturates);
 * - 's7': int8 in [-64, 63] (reduce range: a pair of products stays under 2^15);
 * - 's8': int8 in [-127, 127], exact only where VNNI is present.
 */
export type WeightForm = 'u8' | 's7' | 's8';

/** The largest magnitude a symmetric weight of this form takes. */
export const weightLevels = (form: WeightForm) => (form === 's7' ? 63 : 127);

/** Levels of a weight that has to be stored signed (QDQ, DynamicQuantizeLSTM): 's8' only when asked. */
export const signedLevels = (form: WeightForm) => (form === 's8' ? 127 : 63);

export function makeCtx(g: Graph, perChannel: boolean, weights: WeightForm = 'u8'): QuantCtx {
  return {
    g,
    consts: constants(g),
    fresh: uniqueNamer(g),
    report: { quantized: [], skipped: [] },
    perChannel,
    weights,
    out: [],
    dynamic: new Map(),
    replaced: new Set(),
  };
}

export const label = (n: Node) => n.name || n.output[0] || n.opType;

export const mk = (opType: string, input: string[], output: string[], name: string, attrs: Record<string, number> = {}): Node =>
  onnx.NodeProto.create({
    opType,
    input,
    output,
    name,
    attribute: Object.entries(attrs).map(([k, v]) => onnx.AttributeProto.create({ name: k, type: onnx.AttributeProto.AttributeType.INT, i: v })),
  }) as unknown as Node;

export function addInit(ctx: QuantCtx, t: TensorProto): string {
  ctx.g.initializer.push(t);
  return t.name;
}

/** A constant float32 weight by name, or why it is not one. */
export function floatWeight(ctx: QuantCtx, name: string): { data: Float32Array; dims: number[] } | string {
  const c = ctx.consts.get(name);
  if (!c) return 'its weight is not a constant';
  if (c.tensor.dataType !== DT.FLOAT) return `its weight is not float32 (type ${c.tensor.dataType})`;
  return { data: floatData(c.tensor), dims: dimsOf(c.tensor) };
}

/**
 * Symmetric int8 over groups: `groupOf(i)` says which scale element i uses. Scale = max|w| / levels
 * (1 for an all-zero group), zero point 0.
 */
export function symmetricInt8(w: Float32Array, groups: number, groupOf: (i: number) => number, levels = 127): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(groups);
  for (let i = 0; i < w.length; i++) {
    const s = groupOf(i);
    scale[s] = Math.max(scale[s]!, Math.abs(w[i]!));
  }
  for (let s = 0; s < groups; s++) scale[s] = scale[s]! > 0 ? scale[s]! / levels : 1;
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-levels, Math.min(levels, Math.round(w[i]! / scale[groupOf(i)]!)));
  return { q, scale };
}

/** The activation as uint8 through one DynamicQuantizeLinear, shared by every node that reads it. */
export function dynamicInput(ctx: QuantCtx, a: string): [string, string, string] {
  let aq = ctx.dynamic.get(a);
  if (!aq) {
    aq = [ctx.fresh(`${a}_quantized`), ctx.fresh(`${a}_scale`), ctx.fresh(`${a}_zero_point`)];
    ctx.out.push(mk('DynamicQuantizeLinear', [a], [...aq], ctx.fresh(`${a}_QuantizeLinear`)));
    ctx.dynamic.set(a, aq);
  }
  return aq;
}

/** A symmetric integer weight stored in the context's form: [weight, zero point] initializer names. */
export function weightInit(ctx: QuantCtx, base: string, dims: number[], q: Int8Array, zeroPointShape: number[]): [string, string] {
  const n = zeroPointShape.reduce((a, b) => a * b, 1);
  if (ctx.weights === 'u8') {
    const wq = addInit(
      ctx,
      tensor(
        ctx.fresh(`${base}_W_quantized`),
        DT.UINT8,
        dims,
        Uint8Array.from(q, (v) => v + 128),
      ),
    );
    return [wq, addInit(ctx, tensor(ctx.fresh(`${base}_W_zero_point`), DT.UINT8, zeroPointShape, new Uint8Array(n).fill(128)))];
  }
  return [int8Init(ctx, `${base}_W_quantized`, dims, q), int8Init(ctx, `${base}_W_zero_point`, zeroPointShape, new Int8Array(n))];
}

export const int8Init = (ctx: QuantCtx, base: string, dims: number[], q: Int8Array) => addInit(ctx, i8(ctx.fresh(base), dims, q));
export const f32Init = (ctx: QuantCtx, base: string, dims: number[], a: Float32Array) => addInit(ctx, f32(ctx.fresh(base), dims, a));
export const int64Init = (ctx: QuantCtx, base: string, values: number[]) =>
  addInit(ctx, tensor(ctx.fresh(base), DT.INT64, [values.length], new Uint8Array(BigInt64Array.from(values, BigInt).buffer)));

export function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c]!;
  return t;
}
