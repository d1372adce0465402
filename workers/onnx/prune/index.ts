// Pruning: magnitude pruning of every weighted layer (magnitude.ts), and structured pruning that
// really shrinks the model: hidden units of dense chains (dense.ts), output channels of
// convolutions (conv.ts).
import { decodeModel, encodeModel } from '../proto.ts';
import { finishRewrite, GraphEditError, graphOf } from '../graph.ts';
import { pruneConvChannels } from './conv.ts';
import { pruneDenseChains } from './dense.ts';
import { countParams } from './weights.ts';
import type { PruneResult } from './magnitude.ts';

export { pruneMagnitude, type PruneResult } from './magnitude.ts';

export function pruneStructured(bytes: Uint8Array, keep: number): PruneResult {
  if (!(keep > 0 && keep <= 1)) throw new GraphEditError('keep must be in (0, 1]');
  const m = decodeModel(bytes);
  const g = graphOf(m);
  const paramsBefore = countParams(g);
  const dense = pruneDenseChains(g, keep);
  const conv = pruneConvChannels(g, keep);
  if (!dense && !conv) {
    throw new GraphEditError(
      'nothing to prune: no chain of two MatMul/Gemm layers with constant weights (and at most a bias Add and elementwise activations between them), and no Conv whose output channels feed only another Conv (through activations, pooling, BatchNormalization or depthwise convolutions)',
    );
  }
  // Hidden sizes changed; the types of ai.onnx.ml outputs (a column model's one-hot block, before the
  // pruned layers) stay, since the onnx checker cannot infer them.
  const mlOutputs = new Set(g.node.filter((n) => n.domain && n.domain !== 'ai.onnx').flatMap((n) => n.output));
  g.valueInfo = g.valueInfo.filter((v) => mlOutputs.has(v.name));
  finishRewrite(m);
  return { bytes: encodeModel(m), paramsBefore, paramsAfter: countParams(g), layers: dense + conv };
}
