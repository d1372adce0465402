// Gather from a constant embedding table -> the table stored as int8 (one scale per tensor), rows
// gathered as int8 and dequantized after: a quarter of the bytes, the same lookups.
import { type Node } from '../graph.ts';
import { f32Init, floatWeight, int8Init, label, mk, type QuantCtx, symmetricInt8 } from './common.ts';

/** Tables smaller than this stay float: their Gather is not worth a DequantizeLinear. */
export const MIN_TABLE = 256;

export function quantizeGather(n: Node, ctx: QuantCtx): Node[] | string {
  const w = floatWeight(ctx, n.input[0]!);
  if (typeof w === 'string') return w.replace('weight', 'table');
  if (w.data.length < MIN_TABLE) return `its table has ${w.data.length} values (< ${MIN_TABLE})`;
  const { q, scale } = symmetricInt8(w.data, 1, () => 0);
  const base = ctx.fresh(`${label(n)}_q`);
  const table = int8Init(ctx, `${base}_table_quantized`, w.dims, q);
  const s = f32Init(ctx, `${base}_table_scale`, [], scale);
  const zp = int8Init(ctx, `${base}_table_zero_point`, [], new Int8Array(1));
  const rows = ctx.fresh(`${base}_rows`);
  const gather = mk('Gather', [table, n.input[1]!], [rows], ctx.fresh(`${base}_Gather`));
  gather.attribute = n.attribute;
  ctx.replaced.add(n.input[0]!);
  return [gather, mk('DequantizeLinear', [rows, s, zp], [n.output[0]!], ctx.fresh(`${base}_DequantizeLinear`))];
}
