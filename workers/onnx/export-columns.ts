// Writes a trained model as a column-input model (core/model-columns.ts): one graph input per source
// column, named as the column, [N, 1] float for numbers and string for categories and text. The
// packing into the feature vector is inside the graph, as in scikit-learn pipelines converted to ONNX:
//   numbers     Concat -> [N, F] -> Where(IsNaN, fill, x) (imputation fitted on the training split)
//               -> Concat with Cast(IsNaN) of the columns that had gaps (missing indicators)
//               -> (x - mean) / scale
//   category    ai.onnx.ml OneHotEncoder over the training levels ("" is the missing level where the
//               training split had gaps; an unseen value is all zeros) -> [N, levels]
//   text        Squeeze to [N] -> the TF-IDF of export-text.ts (missing text is "", all zeros)
// then Concat (numbers first, then the other columns in feature order) into the dense head, or into
// the trees of a boosted ensemble (export-trees.ts), which take the same encoded vector.
// Inner tensor names that a column happens to share are renamed apart, so any column name works.
import { buildModel, floatTensor, int64Tensor, node, type Dim, type ValueSpec } from './builder.ts';
import { dense, headOutputs, type HeadExport } from './export-mlp.ts';
import { blockWidth, textBlock, type EncodedBlock } from './export-text.ts';
import { treeScores } from './export-trees.ts';
import type { Ensemble } from '../training/child/gbdt.ts';
import { DT, type NodeProto, type TensorProto } from './proto.ts';

export interface ColumnsExport extends HeadExport {
  /** Every input column in input order with its kind (the order of the job's features). */
  inputs: { name: string; kind: 'numeric' | 'category' | 'text' }[];
  /** The numeric block: its columns in order, each gap's fill value, the indices with a missing indicator. */
  numeric: string[];
  fill: Float32Array;
  indicators: number[];
  /** Standardization of [numbers | indicators]: numeric.length + indicators.length entries. */
  mean: Float32Array;
  scale: Float32Array;
  /** Category and text columns, in the order their encodings follow the numbers. */
  blocks: EncodedBlock[];
  /** A boosted ensemble instead of `layers` (then empty): its trees read the encoded vector. */
  trees?: Pick<Ensemble, 'outputs' | 'base' | 'trees'>;
}

/** A graph input's placeholder name while the graph is built; replaced by the column's name at the end. */
const IN = (column: string) => `\u0000in:${column}`;

export function exportColumns(m: ColumnsExport): Uint8Array {
  const batch: Dim = 'N';
  const F = m.numeric.length;
  const W = F + m.indicators.length;
  if (m.fill.length !== F || m.mean.length !== W || m.scale.length !== W)
    throw new Error(`fill/mean/scale have ${m.fill.length}/${m.mean.length}/${m.scale.length} entries for ${F} numbers and ${m.indicators.length} indicators`);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const parts: string[] = [];
  const typed: ValueSpec[] = [];
  const axis1 = () => inits.some((t) => t.name === 'axis_1') || inits.push(int64Tensor('axis_1', [1], [1]));
  if (F) {
    nodes.push(node('Concat', m.numeric.map(IN), ['numbers_raw'], { axis: 1 }), node('IsNaN', ['numbers_raw'], ['numbers_missing']));
    inits.push(floatTensor('numbers_fill', [F], m.fill));
    nodes.push(node('Where', ['numbers_missing', 'numbers_fill', 'numbers_raw'], ['numbers_filled']));
    let numbers = 'numbers_filled';
    if (m.indicators.length) {
      inits.push(int64Tensor('indicator_columns', [m.indicators.length], m.indicators));
      nodes.push(
        node('Gather', ['numbers_missing', 'indicator_columns'], ['indicators_bool'], { axis: 1 }),
        node('Cast', ['indicators_bool'], ['indicators'], { to: DT.FLOAT }),
        node('Concat', ['numbers_filled', 'indicators'], ['numbers_all'], { axis: 1 }),
      );
      numbers = 'numbers_all';
    }
    inits.push(floatTensor('numbers_mean', [W], m.mean), floatTensor('numbers_scale', [W], m.scale));
    nodes.push(node('Sub', [numbers, 'numbers_mean'], ['numbers_centered']), node('Div', ['numbers_centered', 'numbers_scale'], ['numbers_standardized']));
    parts.push('numbers_standardized');
  }
  if (m.blocks.some((b) => b.kind === 'text')) inits.push(floatTensor('one', [1], Float32Array.of(1)));
  m.blocks.forEach((b, i) => {
    if (!blockWidth(b)) throw new Error(`column "${b.column}" has an empty ${b.kind === 'text' ? 'vocabulary' : 'category list'}`);
    const p = `b${i}_`;
    axis1();
    if (b.kind === 'category') {
      // zeros=1: a value outside the levels (unseen at training) encodes as all zeros instead of failing.
      nodes.push(
        node('OneHotEncoder', [IN(b.column)], [`${p}onehot3`], { cats_strings: { strings: b.values }, zeros: 1 }, undefined, 'ai.onnx.ml'),
        node('Squeeze', [`${p}onehot3`, 'axis_1'], [`${p}onehot`]),
      );
      typed.push({ name: `${p}onehot3`, elemType: DT.FLOAT, shape: [batch, 1, b.values.length] });
      parts.push(`${p}onehot`);
      return;
    }
    nodes.push(node('Squeeze', [IN(b.column), 'axis_1'], [`${p}text`]));
    parts.push(textBlock(`${p}text`, b, p, nodes, inits));
  });
  let encoded = parts[0]!;
  if (parts.length > 1) {
    nodes.push(node('Concat', parts, ['encoded'], { axis: 1 }));
    encoded = 'encoded';
  }
  const head = m.trees
    ? treeScores(encoded, m.trees, m.classes?.length ?? 0, nodes)
    : { output: dense(encoded, m.layers, nodes, inits), width: m.layers[m.layers.length - 1]!.outputs };
  // ai.onnx.ml operators' outputs are not shape-inferred by the checker: say what the trees give.
  if (m.trees) typed.push({ name: head.output, elemType: DT.FLOAT, shape: [batch, head.width] });
  const metadata: Record<string, string> = {
    'modelq.task': m.task,
    'modelq.features': JSON.stringify(m.inputs.map((c) => c.name)),
    ...(m.target ? { 'modelq.target': m.target } : {}),
  };
  const outputs = headOutputs(m, head.output, head.width, batch, nodes, inits, metadata);
  const inputs: ValueSpec[] = m.inputs.map((c) => ({ name: c.name, elemType: c.kind === 'numeric' ? DT.FLOAT : DT.STRING, shape: [batch, 1] }));
  placeInputs(
    m.inputs.map((c) => c.name),
    outputs.map((o) => o.name),
    nodes,
    inits,
  );
  const domains = [
    ...(m.trees || m.blocks.some((b) => b.kind === 'category') ? [{ domain: 'ai.onnx.ml', version: 1 }] : []),
    ...(m.blocks.some((b) => b.kind === 'text') ? [{ domain: 'com.microsoft', version: 1 }] : []),
  ];
  return buildModel({
    name: `modelq_${m.task}_columns`,
    inputs,
    outputs,
    nodes,
    initializers: inits,
    valueInfo: typed,
    metadata: { ...metadata, ...m.metadata },
    domains,
  });
}

/**
 * Gives the graph inputs their columns' names: an inner tensor that has a column's name is renamed
 * apart first (outputs keep theirs: a feature may not be named as an output), then each placeholder
 * becomes the column's name.
 */
function placeInputs(columns: string[], outputs: string[], nodes: NodeProto[], inits: TensorProto[]): void {
  const taken = new Set([...columns, ...outputs, ...nodes.flatMap((n) => n.output), ...inits.map((t) => t.name)]);
  const rename = new Map<string, string>(columns.map((c) => [IN(c), c]));
  const clash = new Set(columns);
  const fresh = (name: string) => {
    let k = 1;
    while (taken.has(`${name}_${k}`)) k++;
    taken.add(`${name}_${k}`);
    return `${name}_${k}`;
  };
  for (const name of [...nodes.flatMap((n) => n.output), ...inits.map((t) => t.name)])
    if (clash.has(name) && !outputs.includes(name) && !rename.has(name)) rename.set(name, fresh(name));
  const map = (x: string) => rename.get(x) ?? x;
  for (const n of nodes) {
    n.input = n.input.map(map);
    n.output = n.output.map(map);
  }
  for (const t of inits) t.name = map(t.name);
}
