// Static int8 quantization in QDQ form: activations get QuantizeLinear -> DequantizeLinear pairs
// with scales from calibration ranges, weights are stored int8 behind a DequantizeLinear, biases
// int32. onnxruntime fuses DQ -> Conv/MatMul/Gemm/Add/pooling -> Q into its integer kernels
// (QLinearConv, ...), so convolutional networks get faster, not only smaller.
// Calibration is two steps because only the engine runs models: calibrationModel() exposes the
// activations as outputs, the caller runs it and hands the observed ranges to quantizeStatic().
import { attr, finishRewrite, GraphEditError, graphOf, type Graph, type Node, tensor } from '../graph.ts';
import { convertOpset } from '../opset/index.ts';
import { decodeModel, DT, encodeModel, onnx } from '../proto.ts';
import { inferTypes } from '../types.ts';
import { quantizeGather } from './gather.ts';
import { declareMsDomain, quantizeLstm } from './lstm.ts';
import { addInit, f32Init, floatWeight, label, makeCtx, mk, type QuantCtx, type QuantizeReport, symmetricInt8, weightInit, weightLevels } from './common.ts';

/** Nodes whose float activations are quantized; onnxruntime has QDQ fusions for each. */
const QDQ_OPS = new Set([
  'Conv',
  'MatMul',
  'Gemm',
  'Add',
  'Mul',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'Concat',
  'Resize',
  'Sigmoid',
  'Softmax',
  'LeakyRelu',
]);
/** A weighted node's output read only by one of these is quantized after it instead (Relu folds into Q). */
const FOLDED = new Set(['Relu', 'Clip']);

export interface StaticOptions {
  /** One weight scale per output channel (needs opset 13, the model is moved there). Default true. */
  perChannel?: boolean;
}

// QuantizeLinear/DequantizeLinear exist from opset 10; their per-channel axis from 13.
const targetOpset = (o: StaticOptions) => ((o.perChannel ?? true) ? 13 : 10);

export type Ranges = Record<string, { min: number; max: number }>;

/** The float activations static quantization needs ranges for, in graph order. */
export function activationsToCalibrate(g: Graph): string[] {
  const types = inferTypes(g);
  const consts = new Set(g.initializer.map((t) => t.name));
  for (const n of g.node) if (n.opType === 'Constant') consts.add(n.output[0]!);
  const outputs = new Set(g.output.map((o) => o.name));
  const consumers = new Map<string, Node[]>();
  for (const n of g.node) for (const x of n.input) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  const want = new Set<string>();
  const isAct = (v: string) => !!v && types.get(v) === DT.FLOAT && !consts.has(v) && !outputs.has(v);
  for (const n of g.node) {
    if (!QDQ_OPS.has(n.opType) || (n.domain !== '' && n.domain !== 'ai.onnx')) continue;
    const weighted = n.opType === 'Conv' || n.opType === 'Gemm' || (n.opType === 'MatMul' && consts.has(n.input[1]!));
    const inputs = weighted ? [n.input[0]!] : n.opType === 'Resize' ? [n.input[0]!] : n.input;
    for (const x of inputs) if (isAct(x)) want.add(x);
    for (const y of n.output.slice(0, 1)) {
      const c = consumers.get(y) ?? [];
      const after = c.length === 1 && FOLDED.has(c[0]!.opType) ? c[0]!.output[0]! : y;
      if (isAct(after)) want.add(after);
    }
  }
  return [...want];
}

/** The model with every activation to calibrate added as an output. */
export function calibrationModel(bytes: Uint8Array, opts: StaticOptions = {}): { bytes: Uint8Array; tensors: string[] } {
  const m = decodeModel(bytes);
  convertOpset(m, targetOpset(opts)); // the same graph quantizeStatic will see (Upsample is Resize there)
  const g = graphOf(m);
  const tensors = activationsToCalibrate(g);
  if (!tensors.length) throw new GraphEditError('nothing to quantize statically: no Conv, MatMul, Gemm or pooling over float activations');
  const have = new Set(g.output.map((o) => o.name));
  // Typed, with no shape: the runtime infers it.
  const unshaped = (name: string) =>
    onnx.ValueInfoProto.create({ name, type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: DT.FLOAT }) }) });
  for (const t of tensors) if (!have.has(t)) g.output.push(unshaped(t) as never);
  return { bytes: encodeModel(m), tensors };
}

/** Running min/max per activation over calibration runs' outputs (merged into `into`). */
export function observeRanges(into: Ranges, outputs: Record<string, { data: unknown }>, tensors: string[]): Ranges {
  for (const t of tensors) {
    const d = outputs[t]?.data;
    if (!(d instanceof Float32Array)) continue;
    let { min, max } = into[t] ?? { min: Infinity, max: -Infinity };
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    into[t] = { min, max };
  }
  return into;
}

/** uint8 asymmetric parameters for a range (always containing 0, so zero is exact). */
export function uint8Params(r: { min: number; max: number }): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, r.min);
  const hi = Math.max(0, r.max);
  const scale = hi > lo ? (hi - lo) / 255 : 1;
  return { scale, zeroPoint: Math.max(0, Math.min(255, Math.round(-lo / scale))) };
}

// Short generated names: a CNN has a hundred activations, and six long names each cost more bytes than its scales.
function qdqActivation(ctx: QuantCtx, v: string, r: { min: number; max: number }, out: Node[]): string {
  const { scale, zeroPoint } = uint8Params(r);
  const base = ctx.fresh('qa');
  const s = f32Init(ctx, `${base}_s`, [], Float32Array.of(scale));
  const z = addInit(ctx, tensor(ctx.fresh(`${base}_z`), DT.UINT8, [], Uint8Array.of(zeroPoint)));
  const q = ctx.fresh(`${base}_q`);
  const dq = ctx.fresh(`${base}_dq`);
  out.push(mk('QuantizeLinear', [v, s, z], [q], ctx.fresh(`${base}_Q`)), mk('DequantizeLinear', [q, s, z], [dq], ctx.fresh(`${base}_DQ`)));
  return dq;
}

/** A weight as 8-bit integers (uint8 + 128 by default, see WeightForm) + DequantizeLinear; per output channel along `axis` when asked. Returns the DQ output and its scales. */
function qdqWeight(ctx: QuantCtx, name: string, axis: number, out: Node[]): { value: string; scale: Float32Array } | string {
  const w = floatWeight(ctx, name);
  if (typeof w === 'string') return w;
  const channels = ctx.perChannel ? w.dims[axis]! : 1;
  const inner = w.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const { q, scale } = symmetricInt8(w.data, channels, ctx.perChannel ? (i) => Math.floor(i / inner) % channels : () => 0, weightLevels(ctx.weights));
  const base = ctx.fresh('qw');
  const shape = ctx.perChannel ? [channels] : [];
  const [qi, z] = weightInit(ctx, base, w.dims, q, shape);
  const s = f32Init(ctx, `${base}_s`, shape, scale);
  const dq = ctx.fresh(`${base}_dq`);
  const node = mk('DequantizeLinear', [qi, s, z], [dq], ctx.fresh(`${base}_DQ`), ctx.perChannel ? { axis } : {});
  out.push(node);
  ctx.replaced.add(name);
  return { value: dq, scale };
}

/** Bias as int32 at scale (input scale x weight scale), as the integer kernels add it. */
function qdqBias(ctx: QuantCtx, name: string, inputScale: number, wScale: Float32Array, out: Node[]): string {
  const b = floatWeight(ctx, name);
  if (typeof b === 'string') return name;
  const scale = Float32Array.from({ length: b.data.length }, (_, i) => inputScale * wScale[wScale.length === 1 ? 0 : i]!);
  const q = Int32Array.from(b.data, (v, i) => Math.round(v / (scale[i] || 1)));
  const base = ctx.fresh('qb');
  const perChannel = wScale.length > 1;
  const qi = addInit(ctx, tensor(ctx.fresh(`${base}_q`), DT.INT32, [q.length], new Uint8Array(q.buffer)));
  const s = f32Init(ctx, `${base}_s`, perChannel ? [q.length] : [], perChannel ? scale : Float32Array.of(scale[0]!));
  const z = addInit(ctx, tensor(ctx.fresh(`${base}_z`), DT.INT32, perChannel ? [q.length] : [], new Uint8Array(4 * (perChannel ? q.length : 1))));
  const dq = ctx.fresh(`${base}_dq`);
  out.push(mk('DequantizeLinear', [qi, s, z], [dq], ctx.fresh(`${base}_DQ`), perChannel ? { axis: 0 } : {}));
  ctx.replaced.add(name);
  return dq;
}

/** Conv/Gemm/MatMul: int8 weight (and int32 bias) behind DequantizeLinear; the reason when it cannot. */
function quantizeWeights(n: Node, ctx: QuantCtx, inputScale: number | undefined, out: Node[]): string | undefined {
  if (n.opType === 'Gemm' && (attr(n, 'transA') ?? 0) !== 0) return 'Gemm with transA=1';
  const w = floatWeight(ctx, n.input[1]!);
  if (typeof w === 'string') return w;
  // Output channels: Conv [M, C, k...] axis 0; MatMul [K, N] axis 1; Gemm with transB [N, K] axis 0.
  const axis = n.opType === 'Conv' || (n.opType === 'Gemm' && (attr(n, 'transB') ?? 0) === 1) ? 0 : 1;
  if (n.opType !== 'Conv' && w.dims.length !== 2) return `its weight has rank ${w.dims.length}, not 2`;
  const qw = qdqWeight(ctx, n.input[1]!, axis, out);
  if (typeof qw === 'string') return qw;
  n.input[1] = qw.value;
  const biasAt = n.opType === 'MatMul' ? -1 : 2;
  const biasScale = n.opType === 'Gemm' && (attr(n, 'alpha') ?? 1) !== 1 ? undefined : inputScale;
  if (biasAt > 0 && n.input[biasAt] && biasScale !== undefined && (n.opType === 'Conv' || (attr(n, 'beta') ?? 1) === 1))
    n.input[biasAt] = qdqBias(ctx, n.input[biasAt], biasScale, qw.scale, out);
  return undefined;
}

export function quantizeStatic(bytes: Uint8Array, ranges: Ranges, opts: StaticOptions = {}): { bytes: Uint8Array; report: QuantizeReport & { opset: number } } {
  const perChannel = opts.perChannel ?? true;
  const m = decodeModel(bytes);
  const { to } = convertOpset(m, targetOpset(opts));
  const g = graphOf(m);
  const ctx = makeCtx(g, perChannel);
  const want = new Set(activationsToCalibrate(g));
  const missing = [...want].filter((v) => !ranges[v]);
  if (missing.length) throw new GraphEditError(`no calibration range for activation "${missing[0]}" (${missing.length} missing)`);
  const dqOf = new Map<string, string>();
  const out: Node[] = [];
  const emit = (v: string) => {
    if (want.has(v) && !dqOf.has(v)) dqOf.set(v, qdqActivation(ctx, v, ranges[v]!, out));
  };
  for (const v of g.input.map((i) => i.name)) emit(v);
  for (const n of g.node) {
    n.input = n.input.map((x) => dqOf.get(x) ?? x);
    const weighted = n.opType === 'Conv' || n.opType === 'Gemm' || (n.opType === 'MatMul' && ctx.consts.has(n.input[1]!));
    if (n.opType === 'Gather' && ctx.consts.has(n.input[0]!) && !ctx.consts.has(n.input[1]!)) {
      const r = quantizeGather(n, ctx);
      if (Array.isArray(r)) {
        out.push(...r);
        ctx.report.quantized.push({ node: label(n), op: 'Gather', as: 'int8 table' });
        for (const y of n.output) emit(y);
        continue;
      }
    }
    if (n.opType === 'LSTM') {
      // No QDQ form: its weights go int8 the dynamic way.
      const r = quantizeLstm(n, ctx);
      if (Array.isArray(r)) {
        out.push(...r);
        ctx.report.quantized.push({ node: label(n), op: 'LSTM', as: 'DynamicQuantizeLSTM' });
        for (const y of n.output) emit(y);
        continue;
      }
    }
    if (weighted && QDQ_OPS.has(n.opType)) {
      const src = [...dqOf].find(([, dq]) => dq === n.input[0])?.[0];
      const why = quantizeWeights(n, ctx, src ? uint8Params(ranges[src]!).scale : undefined, out);
      if (why) ctx.report.skipped.push({ node: label(n), op: n.opType, reason: why });
      else ctx.report.quantized.push({ node: label(n), op: n.opType, as: 'QDQ' });
    }
    out.push(n);
    for (const y of n.output) emit(y);
  }
  if (!ctx.report.quantized.length)
    throw new GraphEditError(
      `nothing to quantize statically: ${ctx.report.skipped.map((s) => `${s.node} (${s.op}): ${s.reason}`).join('; ') || 'no Conv, MatMul or Gemm with a constant weight'}`,
    );
  g.node = out;
  const read = new Set(g.node.flatMap((n) => n.input));
  const before = new Set(g.initializer.map((t) => t.name));
  g.initializer = g.initializer.filter((t) => read.has(t.name) || g.output.some((o) => o.name === t.name));
  const inits = new Set(g.initializer.map((t) => t.name));
  g.input = g.input.filter((i) => inits.has(i.name) || !before.has(i.name));
  declareMsDomain(m);
  finishRewrite(m);
  return { bytes: encodeModel(m), report: { ...ctx.report, opset: to } };
}
