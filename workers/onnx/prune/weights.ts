// Constant weights as pruning reads and writes them: float32 data by name, whether the name is an
// initializer, a Constant node or an Identity copy of either (resolved to its source).
import { DT, onnx } from '../proto.ts';
import { constants, dimsOf, f32, floatData, GraphEditError, type Graph, type Node } from '../graph.ts';

export interface Weight {
  name: string;
  dims: number[];
  data: Float32Array;
}

export class Weights {
  private consts: ReturnType<typeof constants>;
  readonly uses = new Map<string, number>();
  constructor(private g: Graph) {
    this.consts = constants(g);
    for (const n of g.node) for (const x of n.input) this.uses.set(this.source(x), (this.uses.get(this.source(x)) ?? 0) + 1);
  }

  /** The name holding the data: an Identity copy resolves to what it copies. */
  source(name: string): string {
    let cur = name;
    for (let i = 0; i < 8; i++) {
      const c = this.consts.get(cur);
      if (c?.node?.opType !== 'Identity') return cur;
      cur = c.node.input[0]!;
    }
    return cur;
  }

  has(name: string): boolean {
    return this.consts.has(name);
  }

  /** An int64 constant's values (pads, axes), or undefined. */
  getInts(name: string): BigInt64Array | undefined {
    const c = this.consts.get(this.source(name));
    if (!c || c.tensor.dataType !== DT.INT64) return undefined;
    if (c.tensor.rawData?.length) return new BigInt64Array(new Uint8Array(c.tensor.rawData).buffer);
    return BigInt64Array.from((c.tensor.int64Data ?? []).map((x) => BigInt(String(x))));
  }

  /** A float32 constant, or undefined when the name is not one. */
  get(name: string): Weight | undefined {
    const src = this.source(name);
    const c = this.consts.get(src);
    if (!c || c.tensor.dataType !== DT.FLOAT) return undefined;
    return { name: src, dims: dimsOf(c.tensor), data: floatData(c.tensor) };
  }

  /** Whether more than one node input reads this weight (shared weights are left alone by structured pruning). */
  shared(name: string): boolean {
    return (this.uses.get(this.source(name)) ?? 0) > 1;
  }

  set(w: Weight): void {
    const t = f32(w.name, w.dims, w.data);
    const i = this.g.initializer.findIndex((x) => x.name === w.name);
    const entry = this.consts.get(w.name);
    if (i >= 0) this.g.initializer[i] = t;
    else if (entry?.node?.opType === 'Constant')
      entry.node.attribute = entry.node.attribute.map((a) =>
        a.name === 'value' ? onnx.AttributeProto.create({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: f32('', w.dims, w.data) }) : a,
      ) as Node['attribute'];
    else throw new GraphEditError(`weight "${w.name}" is neither an initializer nor a Constant node`);
    this.consts.set(w.name, { tensor: t, ...(entry?.node ? { node: entry.node } : {}) });
  }
}

export const elements = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/** Float parameters of the graph: elements of its float32 initializers and Constant values. */
export function countParams(g: Graph): number {
  let n = 0;
  const seen = new Set<string>();
  for (const [name, c] of constants(g)) {
    if (c.node?.opType === 'Identity' || seen.has(name) || c.tensor.dataType !== DT.FLOAT) continue;
    seen.add(name);
    n += elements(dimsOf(c.tensor));
  }
  return n;
}
