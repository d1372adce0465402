// Writes a trained MLP (or linear model) as ONNX that takes raw feature values: the standardization
// is part of the graph, so clients send what is in their data. Classification gives `label` (index
// into the sorted class list) and `probabilities`; regression gives `prediction` in target units.
import { buildModel, floatTensor, node, type Dim } from './builder.ts';
import { DT, type NodeProto, type TensorProto } from './proto.ts';

export interface DenseLayer {
  /** Row-major [inputs, outputs]. */
  weights: Float32Array;
  bias: Float32Array;
  inputs: number;
  outputs: number;
}

export interface MlpExport {
  featureNames: string[];
  /** Per-feature mean and scale: the graph computes (x - mean) / scale before the first layer. */
  mean: Float32Array;
  scale: Float32Array;
  /** Relu between layers, none after the last. */
  layers: DenseLayer[];
  task: 'classification' | 'regression';
  /** Classification: the original class values, in the order of the output columns. */
  classes?: (string | number)[];
  /** Regression: the network predicts (y - targetMean) / targetScale. */
  targetMean?: number;
  targetScale?: number;
  target?: string;
  /** Extra metadata_props entries. */
  metadata?: Record<string, string>;
  batch?: Dim;
}

export function exportMlp(m: MlpExport): Uint8Array {
  const F = m.featureNames.length;
  if (m.mean.length !== F || m.scale.length !== F) throw new Error(`mean/scale have ${m.mean.length}/${m.scale.length} entries for ${F} features`);
  if (!m.layers.length || m.layers[0]!.inputs !== F) throw new Error(`the first layer takes ${m.layers[0]?.inputs} inputs, there are ${F} features`);
  const batch = m.batch ?? 'N';
  const nodes: NodeProto[] = [node('Sub', ['features', 'feature_mean'], ['centered']), node('Div', ['centered', 'feature_scale'], ['standardized'])];
  const inits: TensorProto[] = [floatTensor('feature_mean', [F], m.mean), floatTensor('feature_scale', [F], m.scale)];
  let cur = 'standardized';
  m.layers.forEach((l, i) => {
    if (l.weights.length !== l.inputs * l.outputs || l.bias.length !== l.outputs) throw new Error(`layer ${i}: weights/bias sizes do not match ${l.inputs}x${l.outputs}`);
    inits.push(floatTensor(`W${i}`, [l.inputs, l.outputs], l.weights), floatTensor(`B${i}`, [l.outputs], l.bias));
    nodes.push(node('MatMul', [cur, `W${i}`], [`matmul${i}`]), node('Add', [`matmul${i}`, `B${i}`], [`dense${i}`]));
    cur = `dense${i}`;
    if (i < m.layers.length - 1) {
      nodes.push(node('Relu', [cur], [`relu${i}`]));
      cur = `relu${i}`;
    }
  });
  const out = m.layers[m.layers.length - 1]!.outputs;
  const metadata: Record<string, string> = { 'modelq.task': m.task, 'modelq.features': JSON.stringify(m.featureNames), ...(m.target ? { 'modelq.target': m.target } : {}) };
  let outputs;
  if (m.task === 'classification') {
    if (!m.classes || m.classes.length !== out) throw new Error(`${m.classes?.length} classes for ${out} outputs`);
    nodes.push(node('Softmax', [cur], ['probabilities'], { axis: -1 }), node('ArgMax', [cur], ['label'], { axis: 1, keepdims: 0 }));
    metadata['modelq.classes'] = JSON.stringify(m.classes);
    outputs = [{ name: 'label', elemType: DT.INT64, shape: [batch] }, { name: 'probabilities', elemType: DT.FLOAT, shape: [batch, out] }];
  } else {
    if (out !== 1) throw new Error(`regression exports one output, the last layer has ${out}`);
    inits.push(floatTensor('target_scale', [1], Float32Array.of(m.targetScale ?? 1)), floatTensor('target_mean', [1], Float32Array.of(m.targetMean ?? 0)));
    nodes.push(node('Mul', [cur, 'target_scale'], ['scaled']), node('Add', ['scaled', 'target_mean'], ['prediction']));
    outputs = [{ name: 'prediction', elemType: DT.FLOAT, shape: [batch, 1] }];
  }
  return buildModel({
    name: `modelq_${m.task}_mlp`,
    inputs: [{ name: 'features', elemType: DT.FLOAT, shape: [batch, F] }],
    outputs,
    nodes,
    initializers: inits,
    metadata: { ...metadata, ...m.metadata },
  });
}
