// Dynamic int8 quantization of what onnxruntime's own quantizer quantizes: MatMul/Gemm with constant
// weights, the MatMuls of attention, Conv (ConvInteger), Gather on embedding tables and LSTM
// (com.microsoft DynamicQuantizeLSTM). The ops to
// touch are a choice, because ConvInteger is often slower than float Conv on CPU: the compression
// job measures the forms and keeps the fastest.
import { convertOpset } from '../opset/index.ts';
import { decodeModel, encodeModel } from '../proto.ts';
import { finishRewrite, GraphEditError, graphOf, type Node } from '../graph.ts';
import { label, makeCtx, type QuantCtx, type QuantizeReport, type WeightForm } from './common.ts';
import { quantizeConv } from './conv.ts';
import { declareMsDomain, quantizeLstm } from './lstm.ts';
import { quantizeGather } from './gather.ts';
import { quantizeActivationMatMul, quantizeWeightMatMul } from './matmul.ts';

export type { QuantizeReport, WeightForm } from './common.ts';

export const DYNAMIC_OPS = ['MatMul', 'Gemm', 'Attention', 'Conv', 'Gather', 'LSTM'] as const;
export type DynamicOp = (typeof DYNAMIC_OPS)[number];

export interface QuantizeOptions {
  /** One scale per output channel instead of one per weight tensor. Default false. */
  perChannel?: boolean;
  /** Which kinds of node to quantize ("Attention": MatMuls of two activations). Default all of DYNAMIC_OPS. */
  ops?: readonly DynamicOp[];
  /** How MatMul/Gemm weights are stored (see WeightForm). Default 'u8': exact on every x86 CPU. */
  weights?: WeightForm;
}

const FLOAT_OPS = new Set(['GRU', 'RNN', 'ConvTranspose']);

/** The rewrite for one node: replacement nodes, a reason it stays float, or null when it is not a candidate. */
function rewrite(n: Node, ctx: QuantCtx, ops: Set<string>): Node[] | string | null {
  if (n.domain !== '' && n.domain !== 'ai.onnx') return null;
  const weightIsConst = ctx.consts.has(n.input[1] ?? '');
  switch (n.opType) {
    case 'MatMul':
      return weightIsConst ? (ops.has('MatMul') ? quantizeWeightMatMul(n, ctx) : null) : ops.has('Attention') ? quantizeActivationMatMul(n, ctx) : null;
    case 'Gemm':
      return ops.has('Gemm') ? quantizeWeightMatMul(n, ctx) : null;
    case 'Conv':
      return ops.has('Conv') ? quantizeConv(n, ctx) : null;
    case 'LSTM':
      return ops.has('LSTM') ? quantizeLstm(n, ctx) : null;
    case 'Gather':
      return ops.has('Gather') && ctx.consts.has(n.input[0]!) && !ctx.consts.has(n.input[1]!) ? quantizeGather(n, ctx) : null;
    default:
      return FLOAT_OPS.has(n.opType) ? 'stays float (no int8 form here)' : null;
  }
}

/** Drops the float weights nothing reads any more, with their Identity copies and IR 3 input declarations. */
function dropReplaced(ctx: QuantCtx): void {
  const g = ctx.g;
  const readers = () => new Set<string>([...g.output.map((o) => o.name), ...g.node.flatMap((n) => n.input)]);
  let read = readers();
  g.node = g.node.filter((n) => !((n.opType === 'Constant' || n.opType === 'Identity') && ctx.replaced.has(n.output[0]!) && !read.has(n.output[0]!)));
  read = readers();
  const before = new Set(g.initializer.map((t) => t.name));
  g.initializer = g.initializer.filter((t) => read.has(t.name));
  const inits = new Set(g.initializer.map((t) => t.name));
  g.input = g.input.filter((i) => inits.has(i.name) || !before.has(i.name));
}

export function quantizeInt8(bytes: Uint8Array, opts: QuantizeOptions = {}): { bytes: Uint8Array; report: QuantizeReport } {
  const m = decodeModel(bytes);
  // DynamicQuantizeLinear exists from opset 11: the model moves there first (a no-op when newer).
  convertOpset(m, 11);
  const g = graphOf(m);
  const ctx = makeCtx(g, !!opts.perChannel, opts.weights);
  const ops = new Set<string>(opts.ops ?? DYNAMIC_OPS);
  for (const n of g.node) {
    const r = rewrite(n, ctx, ops);
    if (Array.isArray(r)) {
      ctx.out.push(...r);
      ctx.report.quantized.push({ node: label(n), op: n.opType, as: r.map((x) => x.opType).find((t) => /Integer|Gather/.test(t)) ?? '' });
      continue;
    }
    if (typeof r === 'string') ctx.report.skipped.push({ node: label(n), op: n.opType, reason: r });
    ctx.out.push(n);
  }
  if (!ctx.report.quantized.length) {
    const why = ctx.report.skipped.map((s) => `${s.node} (${s.op}): ${s.reason}`).join('; ');
    throw new GraphEditError(`nothing to quantize: no ${[...ops].join('/')} node with a constant float32 weight${why ? ` (${why})` : ''}`);
  }
  g.node = ctx.out;
  dropReplaced(ctx);
  declareMsDomain(m);
  finishRewrite(m);
  return { bytes: encodeModel(m), report: ctx.report };
}
