// MatMul and Gemm with a constant weight -> DynamicQuantizeLinear -> MatMulInteger (int8 weight,
// per tensor or per column) -> Cast -> Mul by the scales (+ bias): onnxruntime's quantize_dynamic
// pattern, fused into its integer kernel. MatMuls of two activations (attention's Q.K^T and
// weights.V) quantize both sides the same way.
import { attr, type Node } from '../graph.ts';
import { DT } from '../proto.ts';
import { dynamicInput, f32Init, floatWeight, label, mk, type QuantCtx, symmetricInt8, transpose, weightInit, weightLevels } from './common.ts';

/** int32 product -> float, times the product of the scales. */
function rescale(ctx: QuantCtx, base: string, yi: string, scaleA: string, scaleB: string, y: string): Node[] {
  const yf = ctx.fresh(`${base}_float`);
  const s = ctx.fresh(`${base}_scale`);
  return [
    mk('Cast', [yi], [yf], ctx.fresh(`${base}_Cast`), { to: DT.FLOAT }),
    mk('Mul', [scaleA, scaleB], [s], ctx.fresh(`${base}_scales_Mul`)),
    mk('Mul', [yf, s], [y], ctx.fresh(`${base}_Mul`)),
  ];
}

function gemmBias(ctx: QuantCtx, n: Node, base: string, y: string): Node[] {
  if (n.opType !== 'Gemm' || !n.input[2]) return [];
  const beta = attr(n, 'beta') ?? 1;
  let bias = n.input[2];
  const nodes: Node[] = [];
  if (beta !== 1) {
    const b = f32Init(ctx, `${base}_beta`, [], Float32Array.of(beta));
    const scaled = ctx.fresh(`${base}_bias_scaled`);
    nodes.push(mk('Mul', [bias, b], [scaled], ctx.fresh(`${base}_beta_Mul`)));
    bias = scaled;
  }
  nodes.push(mk('Add', [y, bias], [n.output[0]!], ctx.fresh(`${base}_bias_Add`)));
  return nodes;
}

/** A MatMul/Gemm whose second input is a constant 2-D float weight. */
export function quantizeWeightMatMul(n: Node, ctx: QuantCtx): Node[] | string {
  const w = floatWeight(ctx, n.input[1]!);
  if (typeof w === 'string') return w;
  if (w.dims.length !== 2) return `its weight has rank ${w.dims.length}, not 2`;
  if (n.opType === 'Gemm' && (attr(n, 'transA') ?? 0) !== 0) return 'Gemm with transA=1';
  let [k, cols] = w.dims as [number, number];
  let data = w.data;
  if (n.opType === 'Gemm' && (attr(n, 'transB') ?? 0) === 1) {
    data = transpose(data, k, cols);
    [k, cols] = [cols, k];
  }
  const { q, scale } = symmetricInt8(data, ctx.perChannel ? cols : 1, ctx.perChannel ? (i) => i % cols : () => 0, weightLevels(ctx.weights));
  const alpha = n.opType === 'Gemm' ? (attr(n, 'alpha') ?? 1) : 1;
  if (alpha !== 1) for (let i = 0; i < scale.length; i++) scale[i]! *= alpha;
  const base = ctx.fresh(`${label(n)}_q`);
  const shape = ctx.perChannel ? [cols] : [];
  const [wq, wz] = weightInit(ctx, base, [k, cols], q, shape);
  const ws = f32Init(ctx, `${base}_W_scale`, shape, scale);
  const aq = dynamicInput(ctx, n.input[0]!);
  const yi = ctx.fresh(`${base}_int32`);
  const hasBias = n.opType === 'Gemm' && !!n.input[2];
  const y = hasBias ? ctx.fresh(`${base}_matmul`) : n.output[0]!;
  ctx.replaced.add(n.input[1]!);
  return [
    mk('MatMulInteger', [aq[0], wq, aq[2], wz], [yi], ctx.fresh(`${base}_MatMulInteger`)),
    ...rescale(ctx, base, yi, aq[1], ws, y),
    ...gemmBias(ctx, n, base, y),
  ];
}

/** A MatMul of two activations (attention): both quantized dynamically to uint8. */
export function quantizeActivationMatMul(n: Node, ctx: QuantCtx): Node[] {
  const base = ctx.fresh(`${label(n)}_q`);
  const a = dynamicInput(ctx, n.input[0]!);
  const b = dynamicInput(ctx, n.input[1]!);
  const yi = ctx.fresh(`${base}_int32`);
  return [mk('MatMulInteger', [a[0], b[0], a[2], b[2]], [yi], ctx.fresh(`${base}_MatMulInteger`)), ...rescale(ctx, base, yi, a[1], b[1], n.output[0]!)];
}
