// The trees of a boosted ensemble (workers/training/child/gbdt.ts) as one ai.onnx.ml TreeEnsembleRegressor
// node that writes the raw scores [N, C] after the column front end. Scores, not probabilities, so
// the head after it is the one every trained model has (headOutputs: Softmax + class label, or the
// prediction): a gbdt model answers with the same outputs, types and shapes as an MLP one. Two
// classes are one log-odds score in the trainer; here they are two, the first fixed at 0, so
// Softmax([0, f]) is the sigmoid of f.
import type { Ensemble } from '../training/child/gbdt.ts';
import { node } from './builder.ts';
import type { NodeProto } from './proto.ts';

/** Appends the ensemble node reading `input` ([N, width] float); returns its output name and width. */
export function treeScores(
  input: string,
  e: Pick<Ensemble, 'outputs' | 'base' | 'trees'>,
  classes: number,
  nodes: NodeProto[],
): { output: string; width: number } {
  const pair = classes === 2 && e.outputs === 1;
  const width = pair ? 2 : e.outputs;
  const shift = pair ? 1 : 0;
  const a = {
    treeids: [] as number[],
    nodeids: [] as number[],
    featureids: [] as number[],
    modes: [] as string[],
    values: [] as number[],
    trueids: [] as number[],
    falseids: [] as number[],
  };
  const t = { treeids: [] as number[], nodeids: [] as number[], ids: [] as number[], weights: [] as number[] };
  e.trees.forEach((tree, ti) => {
    tree.feature.forEach((f, n) => {
      a.treeids.push(ti);
      a.nodeids.push(n);
      a.featureids.push(Math.max(f, 0));
      a.modes.push(f >= 0 ? 'BRANCH_LEQ' : 'LEAF');
      a.values.push(f >= 0 ? tree.threshold[n]! : 0);
      a.trueids.push(f >= 0 ? tree.left[n]! : 0);
      a.falseids.push(f >= 0 ? tree.right[n]! : 0);
      if (f < 0) {
        t.treeids.push(ti);
        t.nodeids.push(n);
        t.ids.push(tree.target + shift);
        t.weights.push(tree.value[n]!);
      }
    });
  });
  const base = pair ? [0, e.base[0]!] : Array.from(e.base);
  nodes.push(
    node(
      'TreeEnsembleRegressor',
      [input],
      ['tree_scores'],
      {
        n_targets: width,
        aggregate_function: 'SUM',
        post_transform: 'NONE',
        base_values: { floats: base },
        nodes_treeids: a.treeids,
        nodes_nodeids: a.nodeids,
        nodes_featureids: a.featureids,
        nodes_modes: { strings: a.modes },
        nodes_values: { floats: a.values },
        nodes_truenodeids: a.trueids,
        nodes_falsenodeids: a.falseids,
        target_treeids: t.treeids,
        target_nodeids: t.nodeids,
        target_ids: t.ids,
        target_weights: { floats: t.weights },
      },
      undefined,
      'ai.onnx.ml',
    ),
  );
  return { output: 'tree_scores', width };
}
