// Writes a trained model over text, category and numeric columns as ONNX in the packed layout the
// platform trained before column-input models (workers/onnx/export-columns.ts): numbers packed in one
// `features` input, one [N] string input per other column. Kept for the models of that time and
// the tests that stand in for them; the TF-IDF block (textBlock) is shared with the column exporter.
//   text column     [N] string -> StringNormalizer (LOWER, C.UTF-8) -> com.microsoft Tokenizer
//                   ([\p{L}\p{N}_]+, at least 2 characters) -> TfIdfVectorizer (TF counts of the
//                   vocabulary's word uni- and bigrams) -> 1 + ln(tf) where tf > 0 (as Log(Max(tf, 1))
//                   + Min(tf, 1)) -> x idf -> / max(L2 norm, 1): a row with no known n-gram stays 0,
//                   any other has norm >= 1 (tf and idf are >= 1), so the Max changes nothing there
//   category column [N] string -> Unsqueeze to [N, 1] -> TfIdfVectorizer over the categories (one-hot;
//                   an unknown or empty value is all zeros)
//   numeric columns `features` [N, F] float -> (x - mean) / scale
// The blocks are concatenated (numeric first, then the other columns in feature order) into the
// head: MatMul + Add layers with Relu between, then Softmax and the class label (or the regression
// value). core/text.ts and workers/training/child/encoder.ts compute the same features in the trainer.
import { TEXT_LOCALE, TOKEN_PATTERN, MIN_TOKEN_CHARS } from '../../core/text.ts';
import { buildModel, floatTensor, int64Tensor, node, type Dim, type ValueSpec } from './builder.ts';
import { dense, headOutputs, standardize, type HeadExport } from './export-mlp.ts';
import { DT, type NodeProto, type TensorProto } from './proto.ts';

export type EncodedBlock =
  | { kind: 'category'; column: string; values: string[] }
  /** `vocabulary`: n-grams, tokens joined by one space, in output column order; `idf` per entry. */
  | { kind: 'text'; column: string; vocabulary: string[]; idf: Float32Array };

export interface EncodedExport extends HeadExport {
  /** Numeric feature columns (the `features` input), with their standardization. */
  numeric: string[];
  mean: Float32Array;
  scale: Float32Array;
  blocks: EncodedBlock[];
}

/** Width of a block in the concatenated feature vector. */
export const blockWidth = (b: EncodedBlock) => (b.kind === 'category' ? b.values.length : b.vocabulary.length);

/**
 * TfIdfVectorizer attributes (TF mode); output column i is vocabulary[i]. With `bigrams`, an entry
 * with a space is the bigram of its two tokens; without, every entry is one whole value (categories).
 */
export function vectorizer(vocabulary: string[], bigrams: boolean): Record<string, string | number | number[] | { strings: string[] }> {
  const uni: number[] = [];
  const bi: number[] = [];
  vocabulary.forEach((t, i) => (bigrams && t.includes(' ') ? bi : uni).push(i));
  const pool = [...uni.map((i) => vocabulary[i]!), ...bi.flatMap((i) => vocabulary[i]!.split(' '))];
  return {
    mode: 'TF',
    min_gram_length: 1,
    max_gram_length: bi.length ? 2 : 1,
    max_skip_count: 0,
    ngram_counts: bi.length ? [0, uni.length] : [0],
    ngram_indexes: [...uni, ...bi],
    pool_strings: { strings: pool },
  };
}

/**
 * The TF-IDF of a [N] string tensor `input` as float [N, vocabulary] (tensor names start with `p`;
 * needs the initializer `one`); returns the output's name.
 */
export function textBlock(input: string, b: Extract<EncodedBlock, { kind: 'text' }>, p: string, nodes: NodeProto[], inits: TensorProto[]): string {
  inits.push(floatTensor(`${p}idf`, [b.vocabulary.length], b.idf));
  nodes.push(
    node('StringNormalizer', [input], [`${p}lower`], { case_change_action: 'LOWER', is_case_sensitive: 1, locale: TEXT_LOCALE }),
    node(
      'Tokenizer',
      [`${p}lower`],
      [`${p}tokens`],
      { mark: 0, mincharnum: MIN_TOKEN_CHARS, pad_value: '#', tokenexp: TOKEN_PATTERN },
      undefined,
      'com.microsoft',
    ),
    node('TfIdfVectorizer', [`${p}tokens`], [`${p}tf`], vectorizer(b.vocabulary, true)),
    // Sublinear tf: 1 + ln(tf) where tf > 0, 0 where it is 0.
    node('Max', [`${p}tf`, 'one'], [`${p}tf_atleast1`]),
    node('Log', [`${p}tf_atleast1`], [`${p}logtf`]),
    node('Min', [`${p}tf`, 'one'], [`${p}present`]),
    node('Add', [`${p}logtf`, `${p}present`], [`${p}subtf`]),
    node('Mul', [`${p}subtf`, `${p}idf`], [`${p}tfidf`]),
    node('ReduceSumSquare', [`${p}tfidf`], [`${p}sumsq`], { axes: [1], keepdims: 1 }),
    node('Sqrt', [`${p}sumsq`], [`${p}norm`]),
    node('Max', [`${p}norm`, 'one'], [`${p}norm_safe`]),
    node('Div', [`${p}tfidf`, `${p}norm_safe`], [`${p}normalized`]),
  );
  return `${p}normalized`;
}

export function exportEncoded(m: EncodedExport): Uint8Array {
  const batch: Dim = 'N';
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const inputs: ValueSpec[] = [];
  const parts: string[] = [];
  if (m.blocks.some((b) => b.kind === 'text')) inits.push(floatTensor('one', [1], Float32Array.of(1)));
  if (m.blocks.some((b) => b.kind === 'category')) inits.push(int64Tensor('axis_1', [1], [1]));
  if (m.numeric.length) {
    inputs.push({ name: 'features', elemType: DT.FLOAT, shape: [batch, m.numeric.length] });
    parts.push(standardize('features', m.mean, m.scale, nodes, inits));
  }
  m.blocks.forEach((b, i) => {
    if (!blockWidth(b)) throw new Error(`column "${b.column}" has an empty ${b.kind === 'text' ? 'vocabulary' : 'category list'}`);
    inputs.push({ name: b.column, elemType: DT.STRING, shape: [batch] });
    const p = `b${i}_`;
    if (b.kind === 'category') {
      nodes.push(node('Unsqueeze', [b.column, 'axis_1'], [`${p}column`]), node('TfIdfVectorizer', [`${p}column`], [`${p}onehot`], vectorizer(b.values, false)));
      parts.push(`${p}onehot`);
      return;
    }
    parts.push(textBlock(b.column, b, p, nodes, inits));
  });
  let encoded = parts[0]!;
  if (parts.length > 1) {
    nodes.push(node('Concat', parts, ['encoded'], { axis: 1 }));
    encoded = 'encoded';
  }
  const last = dense(encoded, m.layers, nodes, inits);
  const metadata: Record<string, string> = {
    'modelq.task': m.task,
    'modelq.features': JSON.stringify([...m.numeric, ...m.blocks.map((b) => b.column)]),
    'modelq.feature_types': JSON.stringify(Object.fromEntries([...m.numeric.map((n) => [n, 'numeric']), ...m.blocks.map((b) => [b.column, b.kind])])),
    ...(m.target ? { 'modelq.target': m.target } : {}),
  };
  const outputs = headOutputs(m, last, m.layers[m.layers.length - 1]!.outputs, batch, nodes, inits, metadata);
  return buildModel({
    name: `modelq_${m.task}_text`,
    inputs,
    outputs,
    nodes,
    initializers: inits,
    metadata: { ...metadata, ...m.metadata },
    domains: [{ domain: 'com.microsoft', version: 1 }],
  });
}
