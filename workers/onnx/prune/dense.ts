// Structured pruning of dense layers: whole hidden units leave chains of MatMul/Gemm layers
// (weight -> optional bias Add -> elementwise activations -> next weight), scored by the norm of a
// unit's incoming column times that of its outgoing row.
import { attr, type Graph, type Node } from '../graph.ts';
import { type Weight, Weights } from './weights.ts';

const ELEMENTWISE = new Set(['Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Elu', 'Selu', 'Gelu', 'HardSigmoid', 'Softplus', 'Identity']);

/** MatMul/Gemm nodes with a [in, out] constant weight (Gemm without transposes). */
function denseLayers(g: Graph, w: Weights): Map<Node, Weight> {
  const out = new Map<Node, Weight>();
  for (const n of g.node) {
    if (n.domain !== '' || (n.opType !== 'MatMul' && n.opType !== 'Gemm')) continue;
    if (n.opType === 'Gemm' && ((attr(n, 'transA') ?? 0) !== 0 || (attr(n, 'transB') ?? 0) !== 0)) continue;
    const weight = w.get(n.input[1]!);
    if (weight && weight.dims.length === 2 && !w.shared(n.input[1]!)) out.set(n, weight);
  }
  return out;
}

export interface ChainWalk {
  next: (value: string) => Node | undefined;
}

export function walker(g: Graph): ChainWalk {
  const consumers = new Map<string, Node[]>();
  for (const n of g.node) for (const x of n.input) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  const outputs = new Set(g.output.map((o) => o.name));
  return { next: (v) => (outputs.has(v) ? undefined : consumers.get(v)?.length === 1 ? consumers.get(v)![0] : undefined) };
}

export function pruneDenseChains(g: Graph, keep: number): number {
  const w = new Weights(g);
  const layers = denseLayers(g, w);
  const walk = walker(g);
  let pruned = 0;
  for (const [first, w1] of layers) {
    let biasName = first.opType === 'Gemm' ? first.input[2] : undefined;
    let value = first.output[0]!;
    let next = walk.next(value);
    if (next && next.opType === 'Add' && !biasName) {
      const other = next.input[0] === value ? next.input[1]! : next.input[0]!;
      const b = w.get(other);
      if (!b || b.dims.join() !== String(w1.dims[1]) || w.shared(other)) continue;
      biasName = other;
      value = next.output[0]!;
      next = walk.next(value);
    }
    while (next && ELEMENTWISE.has(next.opType) && next.input.length === 1) {
      value = next.output[0]!;
      next = walk.next(value);
    }
    if (!next || next.input[0] !== value) continue;
    const w2 = layers.get(next);
    if (!w2 || w2.dims[0] !== w1.dims[1] || w2.name === w1.name) continue;
    const [rows, n] = w1.dims as [number, number];
    const cols = w2.dims[1]!;
    const k = Math.max(1, Math.round(n * keep));
    if (k >= n) continue;
    const score = Array.from({ length: n }, (_, j) => {
      let a = 0,
        b = 0;
      for (let i = 0; i < rows; i++) a += w1.data[i * n + j]! ** 2;
      for (let c = 0; c < cols; c++) b += w2.data[j * cols + c]! ** 2;
      return { j, s: Math.sqrt(a) * Math.sqrt(b) };
    });
    const kept = score
      .sort((x, y) => y.s - x.s)
      .slice(0, k)
      .map((x) => x.j)
      .sort((x, y) => x - y);
    const c1 = new Float32Array(rows * k);
    for (let i = 0; i < rows; i++)
      kept.forEach((j, t) => {
        c1[i * k + t] = w1.data[i * n + j]!;
      });
    const r2 = new Float32Array(k * cols);
    kept.forEach((j, t) => r2.set(w2.data.subarray(j * cols, (j + 1) * cols), t * cols));
    Object.assign(w1, { data: c1, dims: [rows, k] });
    Object.assign(w2, { data: r2, dims: [k, cols] });
    w.set(w1);
    w.set(w2);
    if (biasName) {
      const b = w.get(biasName)!;
      w.set({ name: b.name, dims: [k], data: Float32Array.from(kept, (j) => b.data[j]!) });
    }
    pruned++;
  }
  return pruned;
}
