// Magnitude pruning: the smallest weights of every weighted layer real exporters write (MatMul,
// Gemm in either orientation, Conv, ConvTranspose, LSTM/GRU/RNN input and recurrent weights, Gather
// embedding tables) become
// zero, layer by layer. The file keeps its size; sparse kernels and general compression gain.
import { decodeModel, encodeModel } from '../proto.ts';
import { finishRewrite, GraphEditError, graphOf, type Graph } from '../graph.ts';
import { countParams, Weights } from './weights.ts';

/** The weight inputs of each op: MatMul/Gemm/Conv weight, recurrent W and R. */
const WEIGHT_INPUTS: Record<string, number[]> = { MatMul: [1], Gemm: [1], Conv: [1], ConvTranspose: [1], LSTM: [1, 2], GRU: [1, 2], RNN: [1, 2] };

export interface PruneResult {
  bytes: Uint8Array;
  paramsBefore: number;
  paramsAfter: number;
  layers: number;
  pruned?: string[];
}

/** Names of the constant float weights to prune, each once (shared and Identity-copied weights included). */
export function prunableWeights(g: Graph, w: Weights): string[] {
  const names = new Set<string>();
  for (const n of g.node) {
    if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
    for (const i of WEIGHT_INPUTS[n.opType] ?? []) {
      const x = n.input[i];
      if (x && w.get(x) && (n.opType !== 'MatMul' || w.get(x)!.dims.length === 2)) names.add(w.source(x));
    }
    // Embedding tables: a constant table indexed by the input.
    const table = n.opType === 'Gather' && !w.has(n.input[1]!) ? w.get(n.input[0]!) : undefined;
    if (table && table.dims.length === 2 && table.data.length >= 256) names.add(table.name);
  }
  return [...names];
}

export function pruneMagnitude(bytes: Uint8Array, sparsity: number): PruneResult {
  if (!(sparsity > 0 && sparsity < 1)) throw new GraphEditError('sparsity must be between 0 and 1 (exclusive)');
  const m = decodeModel(bytes);
  const g = graphOf(m);
  const weights = new Weights(g);
  const names = prunableWeights(g, weights);
  if (!names.length) throw new GraphEditError('nothing to prune: no MatMul, Gemm, Conv or recurrent layer with a constant float32 weight');
  const paramsBefore = countParams(g);
  let zeroed = 0;
  for (const name of names) {
    const w = weights.get(name)!;
    const sorted = Float32Array.from(w.data, Math.abs).sort();
    const threshold = sorted[Math.floor(sparsity * (sorted.length - 1))]!;
    for (let i = 0; i < w.data.length; i++)
      if (w.data[i] !== 0 && Math.abs(w.data[i]!) <= threshold) {
        w.data[i] = 0;
        zeroed++;
      }
    weights.set(w);
  }
  finishRewrite(m);
  return { bytes: encodeModel(m), paramsBefore, paramsAfter: paramsBefore - zeroed, layers: names.length, pruned: names };
}
