// Sample and calibration inputs for any model, read from its own graph: seeded normal values for
// float inputs (float16 too), token ids within the embedding table each integer input indexes,
// sentences of words from the vocabulary a string input is counted against (a text model's
// TfIdfVectorizer), booleans, and sizes for dynamic dimensions (the batch; spatial sizes that are
// multiples of 32).
import { toHalf } from './half.ts';
import { constants, dimsOf, graphOf, type Graph, type ValueInfo } from './graph.ts';
import { decodeModel, DT, type ModelProto } from './proto.ts';

/** onnx TensorProto.DataType STRING. */
const STRING = 8;

export interface SampleTensor {
  type: string;
  dims: number[];
  /** Strings for a string input. */
  data: ArrayBufferView | string[];
}
export interface SampleInput {
  name: string;
  elemType: number;
  shape: (number | string)[];
  /** How the values were chosen, for reports. */ values: string;
}

/** Default sizes: batch 32; an open sequence 16; open spatial sizes 64 (a multiple of 32, as detectors want). */
export const SAMPLE_DEFAULTS = { batch: 32, sequence: 16, spatial: 64 } as const;

interface TypedInfo {
  type?: { tensorType?: { elemType?: number; shape?: { dim?: { dimValue?: unknown; dimParam?: string }[] } } };
}

function declared(v: ValueInfo): { elemType: number; shape: (number | string)[] } {
  const t = (v as TypedInfo).type?.tensorType;
  const shape = (t?.shape?.dim ?? []).map((d, i) =>
    d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : d.dimParam || `dim${i}`,
  );
  return { elemType: t?.elemType ?? DT.FLOAT, shape };
}

const PASS_THROUGH = new Set(['Cast', 'Unsqueeze', 'Squeeze', 'Reshape', 'Flatten', 'Identity', 'Transpose', 'Slice']);

/** The row count of the first embedding table (a constant Gather data input) an integer input indexes. */
export function embeddingRows(g: Graph, input: string): number | undefined {
  const consts = constants(g);
  let frontier = [input];
  for (let depth = 0; depth < 6 && frontier.length; depth++) {
    const next: string[] = [];
    for (const n of g.node) {
      if (!n.input.some((x) => frontier.includes(x))) continue;
      if (n.opType === 'Gather' && frontier.includes(n.input[1]!) && consts.has(n.input[0]!)) return dimsOf(consts.get(n.input[0]!)!.tensor)[0];
      if (PASS_THROUGH.has(n.opType) && frontier.includes(n.input[0]!)) next.push(n.output[0]!);
    }
    frontier = next;
  }
  return undefined;
}

/**
 * The words a string input is counted against: the unigrams (and the words of longer n-grams) of
 * the graph's TfIdfVectorizer pool, else an empty list. Sentences made of them exercise the model's
 * whole vocabulary, as token ids within the embedding table do for a token model.
 */
export function vocabularyOf(g: Graph): string[] {
  const words = new Set<string>();
  const dec = new TextDecoder();
  for (const n of g.node) {
    if (n.opType !== 'TfIdfVectorizer') continue;
    const pool = n.attribute.find((a) => a.name === 'pool_strings');
    for (const b of pool?.strings ?? []) words.add(dec.decode(b));
  }
  return [...words];
}

/** Seeded sentences of 3 to 12 words from `vocabulary` (random letters when it is empty), a tenth with a word it does not know. */
function sampleSentences(n: number, vocabulary: string[], seed: number): string[] {
  const u = uniformRng(seed);
  const made = () => Array.from({ length: 3 + Math.floor(u() * 6) }, () => String.fromCharCode(97 + Math.floor(u() * 26))).join('');
  const word = () => (vocabulary.length && u() >= 0.1 ? vocabulary[Math.floor(u() * vocabulary.length)]! : made());
  return Array.from({ length: n }, () => Array.from({ length: 3 + Math.floor(u() * 10) }, word).join(' '));
}

/** The graph's real inputs (not the initializers IR 3 exporters also list), with their declared types. */
export function modelInputs(m: ModelProto): SampleInput[] {
  const g = graphOf(m);
  const inits = new Set(g.initializer.map((t) => t.name));
  return g.input
    .filter((i) => !inits.has(i.name))
    .map((i) => {
      const d = declared(i);
      const ints = d.elemType === DT.INT64 || d.elemType === DT.INT32;
      const rows = ints ? embeddingRows(g, i.name) : undefined;
      const vocabulary = d.elemType === STRING ? vocabularyOf(g).length : 0;
      const values = ints
        ? rows
          ? `token ids in [0, ${rows}) (embedding table "${i.name}" indexes)`
          : 'integers in [0, 2)'
        : d.elemType === DT.BOOL
          ? 'random booleans'
          : d.elemType === STRING
            ? vocabulary
              ? `sentences of 3 to 12 words from the model's vocabulary (${vocabulary} TfIdfVectorizer words)`
              : 'sentences of 3 to 12 random words'
            : 'seeded normal values (mean 0, sd 1)';
      return { name: i.name, ...d, values };
    });
}

/** Open spatial sizes tried in turn when a graph needs a particular one (multiples of 32, as detectors want). */
export const SPATIAL_CANDIDATES = [64, 224, 32, 128, 256] as const;

/** Concrete sizes for a declared shape: batch first, spatial sizes for rank 4 (and 3 beyond channels), else a sequence. */
export function concreteShape(shape: (number | string)[], batch: number, spatial: number = SAMPLE_DEFAULTS.spatial): number[] {
  const rank = shape.length;
  return shape.map((d, i) => {
    if (typeof d === 'number') return d;
    if (i === 0) return batch;
    if (rank === 4 && i >= 2) {
      const other = shape[i === 2 ? 3 : 2];
      // Text-line models (OCR) fix the height and leave the width open: make it wider than high.
      return typeof other === 'number' && i === 3 ? Math.ceil((other * 4) / 32) * 32 : spatial;
    }
    return rank === 3 && i === 2 ? spatial * 4 : SAMPLE_DEFAULTS.sequence;
  });
}

/** Uniform in (0, 1) from a Lehmer generator: reproducible from the seed. */
export function uniformRng(seed: number): () => number {
  let s = ((seed >>> 0) % 2147483646) + 1;
  return () => (s = (s * 48271) % 2147483647) / 2147483647;
}
/** Standard normal (Box-Muller). */
export function normalRng(seed: number): () => number {
  const u = uniformRng(seed);
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

/** One tensor for an input, `batch` rows, from `seed`. */
export function sampleTensor(m: ModelProto, input: SampleInput, batch: number, seed: number, spatial?: number): SampleTensor {
  const dims = concreteShape(input.shape, batch, spatial);
  const n = dims.reduce((a, b) => a * b, 1);
  const rnd = normalRng(seed);
  switch (input.elemType) {
    case DT.INT64:
    case DT.INT32: {
      const rows = embeddingRows(graphOf(m), input.name) ?? 2;
      // Uniform over the table, so every part of it is exercised.
      const u = uniformRng(seed);
      const ids = Array.from({ length: n }, () => Math.floor(u() * rows));
      return input.elemType === DT.INT64 ? { type: 'int64', dims, data: BigInt64Array.from(ids, BigInt) } : { type: 'int32', dims, data: Int32Array.from(ids) };
    }
    case DT.BOOL:
      return { type: 'bool', dims, data: Uint8Array.from({ length: n }, () => (rnd() > 0 ? 1 : 0)) };
    case STRING:
      return { type: 'string', dims, data: sampleSentences(n, vocabularyOf(graphOf(m)), seed) };
    case DT.FLOAT16:
      return { type: 'float16', dims, data: Uint16Array.from({ length: n }, () => toHalf(rnd())) };
    case DT.DOUBLE:
      return { type: 'float64', dims, data: Float64Array.from({ length: n }, rnd) };
    case DT.FLOAT:
      return { type: 'float32', dims, data: Float32Array.from({ length: n }, rnd) };
    default:
      throw new Error(`input "${input.name}" has element type ${input.elemType}, for which no sample values are made`);
  }
}

/** Feeds for every real input of a model. */
export function sampleFeeds(
  bytes: Uint8Array,
  batch: number = SAMPLE_DEFAULTS.batch,
  seed = 1,
  spatial?: number,
): { feeds: Record<string, SampleTensor>; inputs: SampleInput[] } {
  const m = decodeModel(bytes);
  const inputs = modelInputs(m);
  const feeds = Object.fromEntries(inputs.map((i, k) => [i.name, sampleTensor(m, i, batch, seed * 31 + k, spatial)]));
  return { feeds, inputs };
}
