// Distillation of a text model: its string front end (StringNormalizer -> Tokenizer ->
// TfIdfVectorizer -> tf-idf weighting, with any category and numeric blocks concatenated) stays
// as it is, and only the head that reads the feature vector is replaced. The teacher graph is cut at
// the float tensor that feeds the first MatMul/Gemm after a TfIdfVectorizer: the front (inputs ->
// feature vector) turns the dataset's strings into numeric rows for the student, the back (feature
// vector -> outputs) labels noisy copies of them, and the student MLP is spliced after the front.
import { valueInfo } from '../onnx/builder.ts';
import { constants, dimsOf, graphOf, GraphEditError, uniqueNamer, type Graph, type Node } from '../onnx/graph.ts';
import { decodeModel, DT, encodeModel, onnx, type ModelProto } from '../onnx/proto.ts';

export interface TextSplit {
  /** The float tensor [N, width] the head reads. */
  feature: string;
  width: number;
  /** Teacher inputs -> the feature tensor. */
  front: Uint8Array;
  /** The feature tensor -> the teacher's outputs; absent when the head also reads a graph input directly. */
  back?: Uint8Array;
}

/** Nodes (in graph order) needed to compute `outputs`, stopping at `stop`; and the tensors they read that nothing kept produces. */
function needed(g: Graph, outputs: string[], stop: Set<string>): { nodes: Node[]; reads: Set<string> } {
  const want = new Set(outputs);
  const keep = new Set<Node>();
  for (let i = g.node.length - 1; i >= 0; i--) {
    const n = g.node[i]!;
    if (!n.output.some((o) => want.has(o) && !stop.has(o))) continue;
    keep.add(n);
    for (const x of n.input) if (x) want.add(x);
  }
  const nodes = g.node.filter((n) => keep.has(n));
  const made = new Set(nodes.flatMap((n) => n.output));
  return { nodes, reads: new Set([...want].filter((x) => !made.has(x))) };
}

/** A copy of the teacher with only `nodes`, the initializers they read, the given inputs and outputs. */
function subModel(m: ModelProto, nodes: Node[], inputs: unknown[], outputs: unknown[]): Uint8Array {
  const copy = decodeModel(encodeModel(m));
  const g = graphOf(copy);
  const used = new Set(nodes.flatMap((n) => n.input));
  g.node = nodes;
  g.initializer = g.initializer.filter((t) => used.has(t.name));
  (copy.graph as unknown as { input: unknown[]; output: unknown[]; valueInfo: unknown[] }).input = inputs;
  (copy.graph as unknown as { output: unknown[] }).output = outputs;
  // Keep the declared types of inner tensors the nodes still make (shape inference cannot tell some, e.g. OneHotEncoder's).
  const made = new Set(nodes.flatMap((n) => n.output));
  g.valueInfo = g.valueInfo.filter((v) => made.has(v.name));
  return encodeModel(copy);
}

/**
 * Cuts a text teacher at the input of its head: the first MatMul/Gemm with constant weights after a
 * TfIdfVectorizer or, with `fromInputs` (a column-input model, whose front end imputes and encodes
 * each column), after any graph input.
 */
export function splitAtHead(bytes: Uint8Array, opts: { fromInputs?: boolean } = {}): TextSplit {
  const m = decodeModel(bytes);
  const g = graphOf(m);
  const consts = constants(g);
  const text = new Set<string>();
  if (opts.fromInputs) for (const i of g.input) if (!consts.has(i.name)) text.add(i.name);
  let head: Node | undefined;
  for (const n of g.node) {
    if (n.opType === 'TfIdfVectorizer' || n.input.some((x) => text.has(x))) {
      if ((n.opType === 'MatMul' || n.opType === 'Gemm') && n.domain === '' && text.has(n.input[0]!) && consts.has(n.input[1]!)) {
        head = n;
        break;
      }
      n.output.forEach((o) => text.add(o));
    }
  }
  if (!head)
    throw new GraphEditError(
      `distill: the model has no MatMul or Gemm with constant weights after its ${opts.fromInputs ? 'column encoding' : 'TfIdfVectorizer'} to replace`,
    );
  const w = dimsOf(consts.get(head.input[1]!)!.tensor);
  const transB = head.opType === 'Gemm' && head.attribute.some((a) => a.name === 'transB' && Number(a.i) === 1);
  const width = w.length === 2 ? (transB ? w[1]! : w[0]!) : NaN;
  if (!(width > 0)) throw new GraphEditError(`distill: node "${head.name || head.opType}" has weights of shape [${w.join(', ')}]; a head reads [N, F]`);
  const feature = head.input[0]!;
  const spec = valueInfo({ name: feature, elemType: DT.FLOAT, shape: ['N', width] });
  const inits = new Set(g.initializer.map((t) => t.name));
  const graphInputs = g.input.filter((i) => !inits.has(i.name));
  const front = subModel(m, needed(g, [feature], new Set()).nodes, graphInputs, [spec]);
  const outs = g.output.map((o) => o.name);
  const b = needed(g, outs, new Set([feature]));
  const direct = graphInputs.some((i) => b.reads.has(i.name));
  const back = direct ? undefined : subModel(m, b.nodes, [spec], g.output);
  return { feature, width, front, ...(back ? { back } : {}) };
}

/**
 * The teacher's front end followed by the student head: the student (an MLP over `studentInput`)
 * reads the front's feature tensor, its inner names are renamed apart from the front's, and the
 * result keeps the teacher's inputs, opsets and metadata, with the student's outputs.
 */
export function spliceStudent(teacher: Uint8Array, split: TextSplit, student: Uint8Array, studentInput: string): Uint8Array {
  const m = decodeModel(teacher);
  const opset = (m.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  if (opset && Number(opset.version) < 13)
    throw new GraphEditError(`distill: the text model imports opset ${Number(opset.version)}; the student head needs 13 or later`);
  const front = graphOf(decodeModel(split.front));
  const s = decodeModel(student);
  const sg = graphOf(s);
  const outputs = new Set(sg.output.map((o) => o.name));
  const fresh = uniqueNamer(front);
  const names = new Map<string, string>([[studentInput, split.feature]]);
  const rename = (x: string) => {
    if (!x || outputs.has(x)) return x;
    if (!names.has(x)) names.set(x, fresh(`student_${x}`));
    return names.get(x)!;
  };
  for (const n of sg.node) {
    n.input = n.input.map(rename);
    n.output = n.output.map(rename);
    if (n.name) n.name = rename(n.name);
  }
  for (const t of sg.initializer) t.name = rename(t.name);
  const g = graphOf(m);
  const inits = new Set(g.initializer.map((t) => t.name));
  const inputs = g.input.filter((i) => !inits.has(i.name));
  g.node = [...front.node, ...sg.node];
  g.initializer = [...front.initializer, ...sg.initializer];
  g.input = inputs;
  g.output = sg.output;
  g.valueInfo = front.valueInfo;
  m.irVersion = Math.max(Number(m.irVersion ?? 3), Number(s.irVersion ?? 8));
  const props = (m.metadataProps ?? []).filter((p) => !(s.metadataProps ?? []).some((q) => q.key === p.key));
  m.metadataProps = [...props, ...(s.metadataProps ?? []).map((p) => onnx.StringStringEntryProto.create({ key: p.key, value: p.value }))];
  return encodeModel(m);
}

/** The classes a label output gathers by index (a Gather over a constant string or int64 list), if it does. */
export function graphClasses(bytes: Uint8Array, label: string): (string | number)[] | undefined {
  const g = graphOf(decodeModel(bytes));
  const consts = constants(g);
  let name = label;
  for (let hops = 0; hops < 4; hops++) {
    const n = g.node.find((x) => x.output.includes(name));
    if (!n) return undefined;
    if (n.opType === 'Identity' || n.opType === 'Squeeze' || n.opType === 'Reshape') {
      name = n.input[0]!;
      continue;
    }
    if (n.opType !== 'Gather') return undefined;
    const t = consts.get(n.input[0]!)?.tensor;
    if (!t || dimsOf(t).length !== 1) return undefined;
    if (t.dataType === DT.STRING) return (t.stringData ?? []).map((b) => new TextDecoder().decode(b));
    if (t.dataType === DT.INT64) {
      if (t.rawData?.length) {
        const c = new Uint8Array(t.rawData);
        return Array.from(new BigInt64Array(c.buffer, 0, c.length / 8), Number);
      }
      return (t.int64Data ?? []).map(Number);
    }
    return undefined;
  }
  return undefined;
}
