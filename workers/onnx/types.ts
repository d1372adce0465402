// Element types of every value of a graph, inferred forward from the inputs, initializers and
// each operator's typing rule (most ops give their first input's type). Enough for the rewrites to
// know which values are float tensors; shapes are not inferred.
import { DT } from './proto.ts';
import { type Graph, type Node } from './graph.ts';

/** onnx TensorProto.DataType STRING. */
const STRING = 8;
const BOOL_OUT = new Set(['RegexFullMatch', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);
const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);
const SECOND_INT64 = new Set(['TopK', 'MaxPool', 'Unique']);

interface Typed {
  type?: { tensorType?: { elemType?: number } };
}
export const declaredType = (v: unknown): number | undefined => (v as Typed).type?.tensorType?.elemType ?? undefined;

const attrOf = (n: Node, name: string) => n.attribute.find((a) => a.name === name);

function constantType(n: Node): number {
  const v = attrOf(n, 'value');
  if (v?.t) return v.t.dataType ?? DT.FLOAT;
  if (attrOf(n, 'value_float') || attrOf(n, 'value_floats')) return DT.FLOAT;
  if (attrOf(n, 'value_int') || attrOf(n, 'value_ints')) return DT.INT64;
  return DT.FLOAT;
}

/** The element types a node's outputs get, given its inputs' types. */
export function outputTypes(n: Node, typeOf: (v: string) => number | undefined): (number | undefined)[] {
  const first = n.input.map((x) => (x ? typeOf(x) : undefined)).find((t) => t !== undefined);
  const all = (t: number | undefined) => n.output.map(() => t);
  const dtype = attrOf(n, 'dtype') ?? attrOf(n, 'to');
  switch (true) {
    case n.opType === 'Constant':
      return all(constantType(n));
    case n.opType === 'ConstantOfShape':
      return all(attrOf(n, 'value')?.t?.dataType ?? DT.FLOAT);
    case n.opType === 'Cast':
      return all(Number(dtype?.i));
    case n.opType === 'CastLike':
      return all(typeOf(n.input[1]!));
    case BOOL_OUT.has(n.opType):
      return all(DT.BOOL);
    case INT64_OUT.has(n.opType):
      return all(DT.INT64);
    case SECOND_INT64.has(n.opType):
      return n.output.map((_, i) => (i === 0 ? first : DT.INT64));
    // Text front ends: string n-grams are counted into floats; StringSplit also gives the token counts.
    case n.opType === 'TfIdfVectorizer':
      return all(DT.FLOAT);
    // ai.onnx.ml's OneHotEncoder gives float whatever it reads (a column-input model's category block).
    case n.opType === 'OneHotEncoder' && n.domain === 'ai.onnx.ml':
      return all(DT.FLOAT);
    case n.opType === 'StringSplit':
      return [STRING, DT.INT64];
    case n.opType === 'Dropout':
      return n.output.map((_, i) => (i === 0 ? first : DT.BOOL));
    case n.opType === 'Where':
      return all(typeOf(n.input[1]!));
    case n.opType === 'OneHot':
      return all(typeOf(n.input[2]!));
    case n.opType === 'DynamicQuantizeLinear':
      return [DT.UINT8, DT.FLOAT, DT.UINT8];
    case n.opType === 'QuantizeLinear':
      return all(n.input[2] ? typeOf(n.input[2]) : DT.UINT8);
    case n.opType === 'DequantizeLinear':
      return all(DT.FLOAT);
    case n.opType === 'MatMulInteger' || n.opType === 'ConvInteger':
      return all(DT.INT32);
    case /^Random(Normal|Uniform)(Like)?$/.test(n.opType) || n.opType === 'EyeLike':
      return all(dtype ? Number(dtype.i) : n.opType.endsWith('Like') || n.opType === 'EyeLike' ? first : DT.FLOAT);
    default:
      return all(first);
  }
}

/** Value name -> element type, for every value whose type can be told. */
export function inferTypes(g: Graph): Map<string, number> {
  const types = new Map<string, number>();
  for (const v of [...g.input, ...g.valueInfo]) {
    const t = declaredType(v);
    if (t) types.set(v.name, t);
  }
  for (const t of g.initializer) types.set(t.name, t.dataType ?? DT.FLOAT);
  for (const n of g.node) {
    outputTypes(n, (v) => types.get(v)).forEach((t, i) => {
      if (t && n.output[i]) types.set(n.output[i]!, t);
    });
  }
  for (const v of g.output)
    if (!types.has(v.name)) {
      const t = declaredType(v);
      if (t) types.set(v.name, t);
    }
  return types;
}
