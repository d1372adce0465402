// What an opset adapter works with: the graph, fresh names, and helpers to move attributes into
// constant inputs (the direction almost every signature change between opsets 7 and 17 took).
import { DT, onnx, type TensorProto } from '../proto.ts';
import { f32, GraphEditError, type Attribute, type Graph, type Node, tensor, uniqueNamer } from '../graph.ts';

export interface AdaptContext {
  g: Graph;
  /** The opset the model is at before this step, and the one it moves to. */
  from: number;
  to: number;
  fresh: (base: string) => string;
  /** Adds a constant initializer and returns its name. */
  constant: (base: string, t: TensorProto) => string;
  /** Whether a value is read by any node or is a graph output. */
  used: (value: string) => boolean;
}

/** One adapter per operator: it runs when the upgrade crosses `since`, and returns the node's replacement. */
export interface Adapter {
  ops: string[];
  since: number;
  adapt: (n: Node, ctx: AdaptContext) => Node[];
}

export function makeContext(g: Graph, from: number, to: number): AdaptContext {
  const fresh = uniqueNamer(g);
  const used = new Set<string>([...g.output.map((o) => o.name)]);
  for (const n of g.node) for (const x of n.input) used.add(x);
  return {
    g,
    from,
    to,
    fresh,
    constant: (base, t) => {
      const name = fresh(base);
      g.initializer.push(onnx.TensorProto.create({ ...t, name }));
      return name;
    },
    used: (v) => used.has(v),
  };
}

export const label = (n: Node) => n.name || n.output[0] || n.opType;

export function fail(n: Node, reason: string): never {
  throw new GraphEditError(`node "${label(n)}" (${n.opType}): ${reason}`);
}

const INT64_MAX = 2n ** 63n - 1n;
/** int64 attribute values exactly: protobufjs hands them over as Long objects (INT64_MAX survives as text). */
export function bigInts(a: Attribute | undefined): bigint[] {
  if (!a) return [];
  return (a.ints ?? []).map((x) => {
    const v = BigInt(String(x));
    return v > INT64_MAX ? INT64_MAX : v;
  });
}

export const findAttr = (n: Node, name: string) => n.attribute.find((a) => a.name === name);
export const dropAttrs = (n: Node, ...names: string[]) => {
  n.attribute = n.attribute.filter((a) => !names.includes(a.name));
};

export const int64s = (values: bigint[], dims = [values.length]) => tensor('', DT.INT64, dims, new Uint8Array(BigInt64Array.from(values).buffer));
export const float32s = (values: number[], dims = [values.length]) => f32('', dims, Float32Array.from(values));

/** Moves an INTS attribute into a 1-D int64 constant input; '' when the attribute is absent. */
export function intsToInput(n: Node, ctx: AdaptContext, name: string): string {
  const a = findAttr(n, name);
  dropAttrs(n, name);
  if (!a) return '';
  return ctx.constant(`${label(n)}_${name}`, int64s(bigInts(a)));
}

/** Trailing empty optional inputs are dropped, as the spec prefers. */
export function setInputs(n: Node, inputs: string[]): void {
  const i = [...inputs];
  while (i.length && i[i.length - 1] === '') i.pop();
  n.input = i;
}

export function newNode(opType: string, input: string[], output: string[], name: string, attribute: Attribute[] = []): Node {
  return onnx.NodeProto.create({ opType, input, output, name, attribute }) as unknown as Node;
}

export const intAttr = (name: string, i: number) => onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.INT, i }) as Attribute;
export const strAttr = (name: string, s: string) =>
  onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(s) }) as Attribute;
export const attrString = (a: Attribute | undefined) => (a?.s ? new TextDecoder().decode(a.s) : undefined);
