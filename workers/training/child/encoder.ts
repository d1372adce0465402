// Feature encoding for jobs with category or text features: the vocabulary and IDF weights of each
// text column and the categories of each category column are chosen on the training rows, then every
// row becomes a sparse vector [standardized numbers | one-hot categories | TF-IDF of each text column],
// computed as the exported graph computes it (workers/onnx/export-text.ts), in float32.
//
// TF-IDF as scikit-learn's TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) with min_df and
// max_features: word uni- and bigrams of the lowercased tokens (core/text.ts); the vocabulary keeps
// n-grams found in at least `minDf` training rows, the `maxFeatures` most frequent of them (total
// count, ties by the n-gram), in sorted order; idf = ln((1 + n) / (1 + df)) + 1 (smooth idf);
// tf' = 1 + ln(tf); each row L2-normalized (a row without known n-grams stays zero).
import type { Hyperparameters } from '../../../core/jobs/train.ts';
import { AppError } from '../../../core/errors.ts';
import { ngrams, textTokens } from '../../../core/text.ts';
import type { EncodedBlock } from '../../onnx/export-text.ts';
import { blockWidth } from '../../onnx/export-text.ts';
import type { Loaded } from './data.ts';

/** Compressed sparse rows: row r's entries are indices/values[indptr[r] .. indptr[r + 1]). */
export interface Csr {
  rows: number;
  width: number;
  indptr: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

export interface Encoder {
  numeric: number;
  mean: Float32Array;
  scale: Float32Array;
  blocks: EncodedBlock[];
  width: number;
}

const f32 = Math.fround;

/** Chooses categories and vocabularies on the training rows. */
export function fitEncoder(data: Loaded, trainRows: Int32Array, hp: Hyperparameters, std: { mean: Float32Array; scale: Float32Array }): Encoder {
  const blocks: EncodedBlock[] = [];
  const types = hp.featureTypes ?? {};
  for (const column of hp.features) {
    const kind = types[column] ?? 'numeric';
    if (kind === 'numeric') continue;
    const values = data.strings![column]!;
    if (kind === 'category') {
      // A gap in the training rows makes "" a level of its own (the missing level); without one, "" encodes as zeros like any unseen value.
      const seen = new Set<string>();
      for (const r of trainRows) seen.add(values[r] ?? '');
      if (!seen.size || (seen.size === 1 && seen.has(''))) throw new AppError('bad_request', `feature "${column}": no training row has a value`);
      blocks.push({ kind: 'category', column, values: [...seen].sort() });
      continue;
    }
    const { maxFeatures, minDf } = hp.text!;
    const df = new Map<string, number>();
    const count = new Map<string, number>();
    for (const r of trainRows) {
      const grams = ngrams(textTokens(values[r]), 1, 2);
      for (const g of grams) count.set(g, (count.get(g) ?? 0) + 1);
      for (const g of new Set(grams)) df.set(g, (df.get(g) ?? 0) + 1);
    }
    let kept = [...df].filter(([, d]) => d >= minDf).map(([g]) => g);
    if (!kept.length)
      throw new AppError(
        'bad_request',
        `text feature "${column}": no word (2+ letters or digits) occurs in ${minDf} training rows; lower minDf or check the column`,
      );
    if (kept.length > maxFeatures) {
      kept.sort((a, b) => count.get(b)! - count.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
      kept = kept.slice(0, maxFeatures);
    }
    kept.sort();
    const n = trainRows.length;
    const idf = Float32Array.from(kept, (g) => Math.log((1 + n) / (1 + df.get(g)!)) + 1);
    blocks.push({ kind: 'text', column, vocabulary: kept, idf });
  }
  const numeric = data.features;
  return { numeric, mean: std.mean, scale: std.scale, blocks, width: numeric + blocks.reduce((a, b) => a + blockWidth(b), 0) };
}

/** The encoded rows, in the order given. */
export function encodeRows(enc: Encoder, data: Loaded, rows: ArrayLike<number>): Csr {
  const lookups = enc.blocks.map((b) => new Map((b.kind === 'category' ? b.values : b.vocabulary).map((t, i) => [t, i])));
  const indptr = new Int32Array(rows.length + 1);
  const indices: number[] = [];
  const values: number[] = [];
  const F = enc.numeric;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    for (let f = 0; f < F; f++) {
      indices.push(f);
      values.push(f32(f32(data.x[r * F + f]! - enc.mean[f]!) / enc.scale[f]!));
    }
    let offset = F;
    enc.blocks.forEach((b, bi) => {
      const raw = data.strings![b.column]![r] ?? null;
      const lookup = lookups[bi]!;
      if (b.kind === 'category') {
        const k = lookup.get(raw ?? '');
        if (k !== undefined) {
          indices.push(offset + k);
          values.push(1);
        }
      } else {
        const tf = new Map<number, number>();
        for (const g of ngrams(textTokens(raw), 1, 2)) {
          const k = lookup.get(g);
          if (k !== undefined) tf.set(k, (tf.get(k) ?? 0) + 1);
        }
        const ks = [...tf.keys()].sort((a, b) => a - b);
        const w = ks.map((k) => f32(f32(f32(Math.log(tf.get(k)!)) + 1) * b.idf[k]!));
        let sq = 0;
        for (const v of w) sq = f32(sq + f32(v * v));
        const norm = Math.max(f32(Math.sqrt(sq)), 1);
        ks.forEach((k, j) => {
          indices.push(offset + k);
          values.push(f32(w[j]! / norm));
        });
      }
      offset += blockWidth(b);
    });
    indptr[i + 1] = indices.length;
  }
  return { rows: rows.length, width: enc.width, indptr, indices: Int32Array.from(indices), values: Float32Array.from(values) };
}

/** Rows `from` (local indices into the Csr) as a dense row-major [rows.length, width] matrix. */
export function densify(m: Csr, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * m.width);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    for (let j = m.indptr[r]!; j < m.indptr[r + 1]!; j++) out[i * m.width + m.indices[j]!] = m.values[j]!;
  }
  return out;
}

/** The raw values of the first `k` of `rows` for each input of the exported graph (strings; missing as ""). */
export function rawInputs(enc: Encoder, data: Loaded, rows: Int32Array, k: number): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const b of enc.blocks) out[b.column] = Array.from(rows.subarray(0, k), (r) => data.strings![b.column]![r] ?? '');
  return out;
}
