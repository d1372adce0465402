// Conv with a constant weight -> DynamicQuantizeLinear -> ConvInteger (uint8 activation, uint8 weight
// with zero point 128, which every onnxruntime CPU build has a kernel for) -> Cast -> Mul by the
// scales (per output channel when asked) -> Add the bias, broadcast over the spatial axes.
import { type Node } from '../graph.ts';
import { DT, onnx } from '../proto.ts';
import { addInit, dynamicInput, f32Init, floatWeight, label, mk, type QuantCtx, symmetricInt8 } from './common.ts';
import { tensor } from '../graph.ts';

export function quantizeConv(n: Node, ctx: QuantCtx): Node[] | string {
  const w = floatWeight(ctx, n.input[1]!);
  if (typeof w === 'string') return w;
  const [m] = w.dims as [number];
  const per = w.data.length / m;
  const { q, scale } = symmetricInt8(w.data, ctx.perChannel ? m : 1, ctx.perChannel ? (i) => Math.floor(i / per) : () => 0);
  const base = ctx.fresh(`${label(n)}_q`);
  const spatial = w.dims.length - 2;
  const u8 = Uint8Array.from(q, (v) => v + 128);
  const wq = addInit(ctx, tensor(ctx.fresh(`${base}_W_quantized`), DT.UINT8, w.dims, u8));
  const wz = addInit(ctx, tensor(ctx.fresh(`${base}_W_zero_point`), DT.UINT8, ctx.perChannel ? [m] : [], new Uint8Array(ctx.perChannel ? m : 1).fill(128)));
  // Scales and bias as [M, 1, ...]: they broadcast over [N, M, spatial...].
  const ws = f32Init(ctx, `${base}_W_scale`, ctx.perChannel ? [m, ...Array(spatial).fill(1)] : [], scale);
  const aq = dynamicInput(ctx, n.input[0]!);
  const yi = ctx.fresh(`${base}_int32`);
  const yf = ctx.fresh(`${base}_float`);
  const s = ctx.fresh(`${base}_scale`);
  const bias = n.input[2] ? floatWeight(ctx, n.input[2]) : undefined;
  if (typeof bias === 'string') return `its bias: ${bias}`;
  const y = bias ? ctx.fresh(`${base}_scaled`) : n.output[0]!;
  const conv = mk('ConvInteger', [aq[0], wq, aq[2], wz], [yi], ctx.fresh(`${base}_ConvInteger`));
  conv.attribute = n.attribute.map((a) => onnx.AttributeProto.create(a) as never);
  const nodes = [
    conv,
    mk('Cast', [yi], [yf], ctx.fresh(`${base}_Cast`), { to: DT.FLOAT }),
    mk('Mul', [aq[1], ws], [s], ctx.fresh(`${base}_scales_Mul`)),
    mk('Mul', [yf, s], [y], ctx.fresh(`${base}_Mul`)),
  ];
  if (bias) {
    const b = f32Init(ctx, `${base}_bias`, [m, ...Array(spatial).fill(1)], bias.data);
    nodes.push(mk('Add', [y, b], [n.output[0]!], ctx.fresh(`${base}_bias_Add`)));
    ctx.replaced.add(n.input[2]!);
  }
  ctx.replaced.add(n.input[1]!);
  return nodes;
}
