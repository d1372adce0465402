// LSTM with constant weights -> onnxruntime's com.microsoft DynamicQuantizeLSTM (what its own
// quantizer writes): W and R stored int8, transposed to [directions, in, 4*hidden], one scale per
// direction. GRU and RNN have no int8 form in onnxruntime and stay float.
import { graphOf, type Node } from '../graph.ts';
import { onnx, type ModelProto } from '../proto.ts';
import { floatWeight, f32Init, int8Init, label, mk, signedLevels, type QuantCtx, symmetricInt8 } from './common.ts';

export const MS_DOMAIN = 'com.microsoft';

/** [dirs, rows, cols] -> [dirs, cols, rows], quantized with one scale per direction (U8S8 kernels: 7 bits unless asked). */
function transposedInt8(data: Float32Array, dims: number[], levels: number) {
  const [dirs, rows, cols] = dims as [number, number, number];
  const t = new Float32Array(data.length);
  for (let d = 0; d < dirs; d++)
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[d * rows * cols + c * rows + r] = data[d * rows * cols + r * cols + c]!;
  return { ...symmetricInt8(t, dirs, (i) => Math.floor(i / (rows * cols)), levels), dims: [dirs, cols, rows] };
}

export function quantizeLstm(n: Node, ctx: QuantCtx): Node[] | string {
  const w = floatWeight(ctx, n.input[1]!);
  const r = floatWeight(ctx, n.input[2]!);
  if (typeof w === 'string') return w;
  if (typeof r === 'string') return `its recurrent weight: ${r.replace('its weight ', '')}`;
  const base = ctx.fresh(`${label(n)}_q`);
  const qw = transposedInt8(w.data, w.dims, signedLevels(ctx.weights));
  const qr = transposedInt8(r.data, r.dims, signedLevels(ctx.weights));
  const dirs = w.dims[0]!;
  const inputs = [
    n.input[0]!,
    int8Init(ctx, `${base}_W`, qw.dims, qw.q),
    int8Init(ctx, `${base}_R`, qr.dims, qr.q),
    ...[3, 4, 5, 6, 7].map((i) => n.input[i] ?? ''),
    f32Init(ctx, `${base}_W_scale`, [dirs], qw.scale),
    int8Init(ctx, `${base}_W_zero_point`, [dirs], new Int8Array(dirs)),
    f32Init(ctx, `${base}_R_scale`, [dirs], qr.scale),
    int8Init(ctx, `${base}_R_zero_point`, [dirs], new Int8Array(dirs)),
  ];
  const q = mk('DynamicQuantizeLSTM', inputs, [...n.output], ctx.fresh(`${base}_DynamicQuantizeLSTM`));
  q.domain = MS_DOMAIN;
  q.attribute = n.attribute;
  ctx.replaced.add(n.input[1]!);
  ctx.replaced.add(n.input[2]!);
  return [q];
}

/** Declares the com.microsoft opset when a node of that domain was written. */
export function declareMsDomain(m: ModelProto): void {
  if (graphOf(m).node.some((n) => n.domain === MS_DOMAIN) && !(m.opsetImport ?? []).some((o) => o.domain === MS_DOMAIN)) {
    m.opsetImport = [...(m.opsetImport ?? []), onnx.OperatorSetIdProto.create({ domain: MS_DOMAIN, version: 1 })];
  }
}
