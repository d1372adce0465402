// Pruning. Magnitude pruning zeroes the smallest weights of every MatMul/Gemm (the file keeps its
// size; sparse kernels or compression gain from it). Structured pruning removes whole hidden units
// from chains of MatMul/Gemm layers (weight -> optional bias Add -> elementwise activations ->
// next weight), so the model really gets smaller and faster.
import { DT, decodeModel, encodeModel } from './proto.ts';
import { attr, constants, dimsOf, f32, floatData, GraphEditError, graphOf, type Graph, type Node } from './graph.ts';

const ELEMENTWISE = new Set(['Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Elu', 'Selu', 'Gelu', 'HardSigmoid', 'Softplus', 'Identity']);

export interface PruneResult { bytes: Uint8Array; paramsBefore: number; paramsAfter: number; layers: number }

interface Weight { name: string; data: Float32Array; rows: number; cols: number }

function countParams(g: Graph): number {
  return g.initializer.filter((t) => t.dataType === DT.FLOAT).reduce((n, t) => n + dimsOf(t).reduce((a, b) => a * b, 1), 0);
}

function matmulWeights(g: Graph): Map<Node, Weight> {
  const consts = constants(g);
  const out = new Map<Node, Weight>();
  for (const n of g.node) {
    if (n.domain !== '' || (n.opType !== 'MatMul' && n.opType !== 'Gemm')) continue;
    if (n.opType === 'Gemm' && ((attr(n, 'transA') ?? 0) !== 0 || (attr(n, 'transB') ?? 0) !== 0)) continue;
    const c = consts.get(n.input[1]!);
    if (!c || c.node || c.tensor.dataType !== DT.FLOAT || dimsOf(c.tensor).length !== 2) continue;
    const [rows, cols] = dimsOf(c.tensor) as [number, number];
    out.set(n, { name: c.tensor.name, data: floatData(c.tensor), rows, cols });
  }
  return out;
}

export function pruneMagnitude(bytes: Uint8Array, sparsity: number): PruneResult {
  if (!(sparsity > 0 && sparsity < 1)) throw new GraphEditError('sparsity must be between 0 and 1 (exclusive)');
  const m = decodeModel(bytes);
  const g = graphOf(m);
  const weights = matmulWeights(g);
  if (!weights.size) throw new GraphEditError('nothing to prune: no MatMul or Gemm with a constant float32 weight initializer');
  let zeroed = 0;
  for (const w of weights.values()) {
    const sorted = Float32Array.from(w.data, Math.abs).sort();
    const threshold = sorted[Math.floor(sparsity * (sorted.length - 1))]!;
    for (let i = 0; i < w.data.length; i++) if (Math.abs(w.data[i]!) <= threshold) { w.data[i] = 0; zeroed++; }
    replace(g, w.name, [w.rows, w.cols], w.data);
  }
  const before = countParams(g);
  return { bytes: encodeModel(m), paramsBefore: before, paramsAfter: before - zeroed, layers: weights.size };
}

export function pruneStructured(bytes: Uint8Array, keep: number): PruneResult {
  if (!(keep > 0 && keep <= 1)) throw new GraphEditError('keep must be in (0, 1]');
  const m = decodeModel(bytes);
  const g = graphOf(m);
  const paramsBefore = countParams(g);
  const weights = matmulWeights(g);
  const consts = constants(g);
  const consumers = new Map<string, Node[]>();
  for (const n of g.node) for (const x of n.input) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  const graphOutputs = new Set(g.output.map((o) => o.name));
  const only = (value: string) => (graphOutputs.has(value) ? undefined : consumers.get(value)?.length === 1 ? consumers.get(value)![0] : undefined);
  let layers = 0;
  for (const [first, w1] of weights) {
    // Walk the chain from this layer's output to the next weighted layer.
    let biasName = first.opType === 'Gemm' ? first.input[2] : undefined;
    let value = first.output[0]!;
    let next = only(value);
    if (next && next.opType === 'Add' && !biasName) {
      const other = next.input[0] === value ? next.input[1]! : next.input[0]!;
      const b = consts.get(other);
      if (!b || b.node || dimsOf(b.tensor).join() !== String(w1.cols)) continue;
      biasName = other;
      value = next.output[0]!;
      next = only(value);
    }
    while (next && ELEMENTWISE.has(next.opType) && next.input.length === 1) {
      value = next.output[0]!;
      next = only(value);
    }
    if (!next || next.input[0] !== value) continue;
    const w2 = weights.get(next);
    if (!w2 || w2.rows !== w1.cols || w2.name === w1.name) continue;
    const n = w1.cols;
    const k = Math.max(1, Math.round(n * keep));
    if (k >= n) continue;
    // A unit's importance: the norm of its incoming column times the norm of its outgoing row.
    const score = Array.from({ length: n }, (_, j) => {
      let a = 0;
      let b = 0;
      for (let i = 0; i < w1.rows; i++) a += w1.data[i * n + j]! ** 2;
      for (let c = 0; c < w2.cols; c++) b += w2.data[j * w2.cols + c]! ** 2;
      return { j, s: Math.sqrt(a) * Math.sqrt(b) };
    });
    const kept = score.sort((x, y) => y.s - x.s).slice(0, k).map((x) => x.j).sort((x, y) => x - y);
    const c1 = new Float32Array(w1.rows * k);
    for (let i = 0; i < w1.rows; i++) kept.forEach((j, t) => { c1[i * k + t] = w1.data[i * n + j]!; });
    const r2 = new Float32Array(k * w2.cols);
    kept.forEach((j, t) => r2.set(w2.data.subarray(j * w2.cols, (j + 1) * w2.cols), t * w2.cols));
    w1.data = c1; w1.cols = k;
    w2.data = r2; w2.rows = k;
    replace(g, w1.name, [w1.rows, k], c1);
    replace(g, w2.name, [k, w2.cols], r2);
    if (biasName) {
      const b = floatData(consts.get(biasName)!.tensor);
      replace(g, biasName, [k], Float32Array.from(kept, (j) => b[j]!));
    }
    layers++;
  }
  if (!layers) throw new GraphEditError('nothing to prune: no chain of two MatMul/Gemm layers with constant weights (and at most a bias Add and elementwise activations between them)');
  g.valueInfo = []; // hidden sizes changed
  return { bytes: encodeModel(m), paramsBefore, paramsAfter: countParams(g), layers };
}

function replace(g: Graph, name: string, dims: number[], data: Float32Array) {
  const i = g.initializer.findIndex((t) => t.name === name);
  if (i < 0) throw new GraphEditError(`initializer "${name}" not found`);
  g.initializer[i] = f32(name, dims, data);
}
