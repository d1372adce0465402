// Writes a trained MLP (or linear model) as ONNX that takes raw feature values: the standardization
// is part of the graph, so clients send what is in their data. Classification gives `label` (the
// class itself: a string for string targets, the integer for integer ones) and `probabilities`
// (columns in the order of the sorted class list); regression gives `prediction` in target units.
import { buildModel, floatTensor, int64Tensor, node, stringTensor, type Dim, type ValueSpec } from './builder.ts';
import { DT, type NodeProto, type TensorProto } from './proto.ts';

export interface DenseLayer {
  /** Row-major [inputs, outputs]. */
  weights: Float32Array;
  bias: Float32Array;
  inputs: number;
  outputs: number;
}

/** The trained head every exporter writes after its front end: layers, task, classes or target scaling, metadata. */
export interface HeadExport {
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
}

export interface MlpExport extends HeadExport {
  featureNames: string[];
  /** Per-feature mean and scale: the graph computes (x - mean) / scale before the first layer. */
  mean: Float32Array;
  scale: Float32Array;
  batch?: Dim;
}

/** Standardization (x - mean) / scale of `input`; returns the output name. */
export function standardize(input: string, mean: Float32Array, scale: Float32Array, nodes: NodeProto[], inits: TensorProto[]): string {
  const F = mean.length;
  nodes.push(node('Sub', [input, 'feature_mean'], ['centered']), node('Div', ['centered', 'feature_scale'], ['standardized']));
  inits.push(floatTensor('feature_mean', [F], mean), floatTensor('feature_scale', [F], scale));
  return 'standardized';
}

/** Standardization, then MatMul + Add per layer with Relu between; returns the last layer's output name. */
function denseStack(input: string, mean: Float32Array, scale: Float32Array, layers: DenseLayer[], nodes: NodeProto[], inits: TensorProto[]): string {
  return dense(standardize(input, mean, scale, nodes, inits), layers, nodes, inits);
}

/** MatMul + Add per layer with Relu between; returns the last layer's output name. */
export function dense(input: string, layers: DenseLayer[], nodes: NodeProto[], inits: TensorProto[]): string {
  let cur = input;
  layers.forEach((l, i) => {
    if (l.weights.length !== l.inputs * l.outputs || l.bias.length !== l.outputs)
      throw new Error(`layer ${i}: weights/bias sizes do not match ${l.inputs}x${l.outputs}`);
    inits.push(floatTensor(`W${i}`, [l.inputs, l.outputs], l.weights), floatTensor(`B${i}`, [l.outputs], l.bias));
    nodes.push(node('MatMul', [cur, `W${i}`], [`matmul${i}`]), node('Add', [`matmul${i}`, `B${i}`], [`dense${i}`]));
    cur = `dense${i}`;
    if (i < layers.length - 1) {
      nodes.push(node('Relu', [cur], [`relu${i}`]));
      cur = `relu${i}`;
    }
  });
  return cur;
}

export function exportMlp(m: MlpExport): Uint8Array {
  const F = m.featureNames.length;
  if (m.mean.length !== F || m.scale.length !== F) throw new Error(`mean/scale have ${m.mean.length}/${m.scale.length} entries for ${F} features`);
  if (!m.layers.length || m.layers[0]!.inputs !== F) throw new Error(`the first layer takes ${m.layers[0]?.inputs} inputs, there are ${F} features`);
  const batch = m.batch ?? 'N';
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const cur = denseStack('features', m.mean, m.scale, m.layers, nodes, inits);
  const out = m.layers[m.layers.length - 1]!.outputs;
  const metadata: Record<string, string> = {
    'modelq.task': m.task,
    'modelq.features': JSON.stringify(m.featureNames),
    ...(m.target ? { 'modelq.target': m.target } : {}),
  };
  const outputs = headOutputs(m, cur, out, batch, nodes, inits, metadata);
  return buildModel({
    name: `modelq_${m.task}_mlp`,
    inputs: [{ name: 'features', elemType: DT.FLOAT, shape: [batch, F] }],
    outputs,
    nodes,
    initializers: inits,
    metadata: { ...metadata, ...m.metadata },
  });
}

/** Whether a classifier's `label` is a string tensor (some class is a string) or int64 (integer classes). */
export const labelIsString = (classes: (string | number)[]) => classes.some((c) => typeof c === 'string');

/**
 * `label`: the class itself, gathered from the class list by the argmax of the last layer (a string
 * tensor when the classes are strings, int64 when they are integers); returns its ValueSpec.
 */
export function classLabel(logits: string, classes: (string | number)[], name: string, shape: Dim[], nodes: NodeProto[], inits: TensorProto[]): ValueSpec {
  const str = labelIsString(classes);
  inits.push(str ? stringTensor('class_values', [classes.length], classes.map(String)) : int64Tensor('class_values', [classes.length], classes as number[]));
  nodes.push(
    node('ArgMax', [logits], ['class_index'], { axis: 1, keepdims: shape.length === 1 ? 0 : 1 }),
    node('Gather', ['class_values', 'class_index'], [name], { axis: 0 }),
  );
  return { name, elemType: str ? DT.STRING : DT.INT64, shape };
}

/** The outputs of a trained model from its last layer: label + probabilities, or prediction in target units. */
export function headOutputs(
  m: Pick<MlpExport, 'task' | 'classes' | 'targetMean' | 'targetScale'>,
  cur: string,
  out: number,
  batch: Dim,
  nodes: NodeProto[],
  inits: TensorProto[],
  metadata: Record<string, string>,
): ValueSpec[] {
  if (m.task === 'classification') {
    if (!m.classes || m.classes.length !== out) throw new Error(`${m.classes?.length} classes for ${out} outputs`);
    nodes.push(node('Softmax', [cur], ['probabilities'], { axis: -1 }));
    metadata['modelq.classes'] = JSON.stringify(m.classes);
    return [classLabel(cur, m.classes, 'label', [batch], nodes, inits), { name: 'probabilities', elemType: DT.FLOAT, shape: [batch, out] }];
  }
  if (out !== 1) throw new Error(`regression exports one output, the last layer has ${out}`);
  inits.push(floatTensor('target_scale', [1], Float32Array.of(m.targetScale ?? 1)), floatTensor('target_mean', [1], Float32Array.of(m.targetMean ?? 0)));
  nodes.push(node('Mul', [cur, 'target_scale'], ['scaled']), node('Add', ['scaled', 'target_mean'], ['prediction']));
  return [{ name: 'prediction', elemType: DT.FLOAT, shape: [batch, 1] }];
}

/** How a distilled student reproduces one of its teacher's outputs from its last layer. */
export type StudentHead =
  /** The last layer itself (the teacher's raw scores or logits), [batch, C]. */
  | { kind: 'scores'; name: string; shape: Dim[] }
  /** Softmax of the last layer, [batch, C]. */
  | { kind: 'probabilities'; name: string; shape: Dim[] }
  /** Index of the largest score, int64 [batch] (or [batch, 1]); with `classes`, the class at that index (string or int64). */
  | { kind: 'label'; name: string; shape: Dim[]; classes?: (string | number)[] }
  /** A regression value, last layer * valueScale + valueMean, [batch] or [batch, 1]. */
  | { kind: 'value'; name: string; shape: Dim[] };

export interface StudentExport {
  /** The teacher's input: its name and shape; inputs of rank > 2 are flattened per row. */
  input: { name: string; shape: Dim[] };
  mean: Float32Array;
  scale: Float32Array;
  layers: DenseLayer[];
  heads: StudentHead[];
  valueMean?: number;
  valueScale?: number;
  metadata?: Record<string, string>;
}

const INTERNAL_NAME =
  /^(centered|standardized|feature_(mean|scale)|[WB]\d+|(matmul|dense|relu)\d+|flat|squeeze_axes|value_(scale|mean|scaled|out)|class_(values|index))$/;

/** A distilled MLP student with its teacher's signature: same input, same output names, types and shapes. */
export function exportStudent(s: StudentExport): Uint8Array {
  const F = s.mean.length;
  if (s.scale.length !== F || !s.layers.length || s.layers[0]!.inputs !== F)
    throw new Error(`the first layer takes ${s.layers[0]?.inputs} inputs, the input has ${F} values per row`);
  const clash = [s.input.name, ...s.heads.map((h) => h.name)].find((n) => INTERNAL_NAME.test(n));
  if (clash) throw new Error(`the teacher's tensor name "${clash}" clashes with a name the student graph uses inside`);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let input = s.input.name;
  if (s.input.shape.length !== 2) {
    nodes.push(node('Flatten', [input], ['flat'], { axis: 1 }));
    input = 'flat';
  }
  const last = denseStack(input, s.mean, s.scale, s.layers, nodes, inits);
  const C = s.layers[s.layers.length - 1]!.outputs;
  const outputs: ValueSpec[] = [];
  const squeeze = (from: string, to: string, shape: Dim[]) => {
    if (shape.length === 1) {
      if (!inits.some((t) => t.name === 'squeeze_axes')) inits.push(int64Tensor('squeeze_axes', [1], [1]));
      nodes.push(node('Squeeze', [from, 'squeeze_axes'], [to]));
    } else nodes.push(node('Identity', [from], [to]));
  };
  for (const h of s.heads) {
    if (h.kind === 'scores') {
      nodes.push(node('Identity', [last], [h.name]));
      outputs.push({ name: h.name, elemType: DT.FLOAT, shape: h.shape });
    } else if (h.kind === 'probabilities') {
      nodes.push(node('Softmax', [last], [h.name], { axis: -1 }));
      outputs.push({ name: h.name, elemType: DT.FLOAT, shape: h.shape });
    } else if (h.kind === 'label' && h.classes) {
      outputs.push(classLabel(last, h.classes, h.name, h.shape, nodes, inits));
    } else if (h.kind === 'label') {
      nodes.push(node('ArgMax', [last], [h.name], { axis: 1, keepdims: h.shape.length === 1 ? 0 : 1 }));
      outputs.push({ name: h.name, elemType: DT.INT64, shape: h.shape });
    } else {
      if (C !== 1) throw new Error(`a value head needs one output unit, the last layer has ${C}`);
      if (!inits.some((t) => t.name === 'value_scale')) {
        inits.push(floatTensor('value_scale', [1], Float32Array.of(s.valueScale ?? 1)), floatTensor('value_mean', [1], Float32Array.of(s.valueMean ?? 0)));
        nodes.push(node('Mul', [last, 'value_scale'], ['value_scaled']), node('Add', ['value_scaled', 'value_mean'], ['value_out']));
      }
      squeeze('value_out', h.name, h.shape);
      outputs.push({ name: h.name, elemType: DT.FLOAT, shape: h.shape });
    }
  }
  return buildModel({
    name: 'modelq_distilled_mlp',
    inputs: [{ name: s.input.name, elemType: DT.FLOAT, shape: s.input.shape }],
    outputs,
    nodes,
    initializers: inits,
    metadata: s.metadata,
  });
}
