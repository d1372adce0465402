// Dynamic int8 quantization, in the pattern onnxruntime's own quantize_dynamic writes: every MatMul
// (and Gemm, rewritten to MatMul + Add) with a constant float weight becomes
// DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul by the scales, weights int8 symmetric per
// tensor (or per output channel). onnxruntime fuses it into its fast integer kernel. Other nodes
// (Conv, attention, ...) stay float and the model still works.
import { DT, decodeModel, encodeModel, onnx } from './proto.ts';
import { convertOpset } from './opset/index.ts';
import { attr, constants, dimsOf, f32, floatData, GraphEditError, graphOf, i8, type Node, uniqueNamer } from './graph.ts';

export interface QuantizeOptions {
  /** One scale per output column instead of one per weight tensor. Default false. */
  perChannel?: boolean;
}

export interface QuantizeReport {
  quantized: string[];
  skipped: { node: string; op: string; reason: string }[];
}

const node = (opType: string, input: string[], output: string[], name: string, attrs: Record<string, number> = {}): Node =>
  onnx.NodeProto.create({
    opType, input, output, name,
    attribute: Object.entries(attrs).map(([k, v]) => onnx.AttributeProto.create({ name: k, type: onnx.AttributeProto.AttributeType.INT, i: v })),
  }) as unknown as Node;

function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = w[r * cols + c]!;
  return t;
}

/** Symmetric int8: scale = max|w| / 127 over the tensor, or over each column. */
function quantizeWeight(w: Float32Array, k: number, n: number, perChannel: boolean): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(perChannel ? n : 1);
  for (let i = 0; i < w.length; i++) {
    const s = perChannel ? i % n : 0;
    scale[s] = Math.max(scale[s]!, Math.abs(w[i]!));
  }
  for (let s = 0; s < scale.length; s++) scale[s] = scale[s]! > 0 ? scale[s]! / 127 : 1;
  const q = new Int8Array(k * n);
  for (let i = 0; i < w.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(w[i]! / scale[perChannel ? i % n : 0]!)));
  return { q, scale };
}

export function quantizeInt8(bytes: Uint8Array, opts: QuantizeOptions = {}): { bytes: Uint8Array; report: QuantizeReport } {
  const m = decodeModel(bytes);
  const g = graphOf(m);
  const consts = constants(g);
  const fresh = uniqueNamer(g);
  const report: QuantizeReport = { quantized: [], skipped: [] };
  const quantizedInputs = new Map<string, [string, string, string]>(); // input -> [q, scale, zp]
  const out: Node[] = [];
  const used = new Map<string, number>();
  for (const n of g.node) for (const x of n.input) used.set(x, (used.get(x) ?? 0) + 1);
  const dropped = new Set<string>();

  for (const n of g.node) {
    const label = n.name || n.output[0] || n.opType;
    if (n.domain !== '' || (n.opType !== 'MatMul' && n.opType !== 'Gemm')) {
      if (['Conv', 'ConvTranspose', 'Attention', 'LSTM', 'GRU', 'RNN'].includes(n.opType)) report.skipped.push({ node: label, op: n.opType, reason: 'stays float (only MatMul and Gemm are quantized)' });
      out.push(n);
      continue;
    }
    const wName = n.input[1]!;
    const c = consts.get(wName);
    const skip = (reason: string) => { report.skipped.push({ node: label, op: n.opType, reason }); out.push(n); };
    if (!c) { skip('its weight is not a constant'); continue; }
    if (c.tensor.dataType !== DT.FLOAT) { skip('its weight is not float32'); continue; }
    const dims = dimsOf(c.tensor);
    if (dims.length !== 2) { skip(`its weight has rank ${dims.length}, not 2`); continue; }
    if (n.opType === 'Gemm' && (attr(n, 'transA') ?? 0) !== 0) { skip('Gemm with transA=1'); continue; }

    let [k, cols] = dims as [number, number];
    let w = floatData(c.tensor);
    if (n.opType === 'Gemm' && (attr(n, 'transB') ?? 0) === 1) {
      w = transpose(w, k, cols);
      [k, cols] = [cols, k];
    }
    const alpha = n.opType === 'Gemm' ? attr(n, 'alpha') ?? 1 : 1;
    const { q, scale } = quantizeWeight(w, k, cols, !!opts.perChannel);
    if (alpha !== 1) for (let i = 0; i < scale.length; i++) scale[i]! *= alpha;
    const base = fresh(`${label}_q`);
    const wq = `${base}_W_quantized`;
    const ws = `${base}_W_scale`;
    const wz = `${base}_W_zero_point`;
    const shape = opts.perChannel ? [cols] : [];
    g.initializer.push(i8(wq, [k, cols], q), f32(ws, shape, scale), i8(wz, shape, new Int8Array(shape.length ? cols : 1)));

    const a = n.input[0]!;
    let aq = quantizedInputs.get(a);
    if (!aq) {
      aq = [fresh(`${a}_quantized`), fresh(`${a}_scale`), fresh(`${a}_zero_point`)];
      out.push(node('DynamicQuantizeLinear', [a], [...aq], fresh(`${a}_QuantizeLinear`)));
      quantizedInputs.set(a, aq);
    }
    const yi = fresh(`${base}_int32`);
    const yf = fresh(`${base}_float`);
    const s = fresh(`${base}_scale`);
    const hasBias = n.opType === 'Gemm' && n.input[2];
    const y = hasBias ? fresh(`${base}_matmul`) : n.output[0]!;
    out.push(
      node('MatMulInteger', [aq[0], wq, aq[2], wz], [yi], fresh(`${base}_MatMulInteger`)),
      node('Cast', [yi], [yf], fresh(`${base}_Cast`), { to: DT.FLOAT }),
      node('Mul', [aq[1], ws], [s], fresh(`${base}_scales_Mul`)),
      node('Mul', [yf, s], [y], fresh(`${base}_Mul`)),
    );
    if (hasBias) {
      const beta = attr(n, 'beta') ?? 1;
      let bias = n.input[2]!;
      if (beta !== 1) {
        const b = fresh(`${base}_beta`);
        g.initializer.push(f32(b, [], Float32Array.of(beta)));
        const scaled = fresh(`${base}_bias_scaled`);
        out.push(node('Mul', [bias, b], [scaled], fresh(`${base}_beta_Mul`)));
        bias = scaled;
      }
      out.push(node('Add', [y, bias], [n.output[0]!], fresh(`${base}_bias_Add`)));
    }
    report.quantized.push(label);
    if ((used.get(wName) ?? 0) <= 1) dropped.add(wName);
  }

  if (!report.quantized.length) {
    const why = report.skipped.map((s) => `${s.node} (${s.op}): ${s.reason}`).join('; ');
    throw new GraphEditError(`nothing to quantize: no MatMul or Gemm with a constant float32 2-D weight${why ? ` (${why})` : ''}`);
  }
  // The float weights that were replaced are no longer needed.
  g.initializer = g.initializer.filter((t) => !dropped.has(t.name));
  g.node = out.filter((n) => !(n.opType === 'Constant' && dropped.has(n.output[0]!)));
  g.input = g.input.filter((i) => !dropped.has(i.name));
  convertOpset(m, 11); // DynamicQuantizeLinear exists from opset 11
  return { bytes: encodeModel(m), report };
}
