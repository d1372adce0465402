// Texts -> a transformer model's token inputs with the version's tokenizer.json: input ids, attention
// mask and token type ids, INT64 (or INT32) [n, tokens]. Texts longer than maxLength are cut keeping
// their trailing special tokens (a [SEP] or </s>) unless truncation is off (then the text is refused);
// rows are padded with the pad id (mask and types 0) to maxLength or to the longest row.
import type { TextStep } from '../../core/processing/spec.ts';
import { processingFileKey } from '../../core/processing/spec.ts';
import { defaultPadId, parseTokenizer, type Tokenizer } from '../../core/processing/tokenizer.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { RawTensor } from '../../core/tensors.ts';
import { FileError } from './image.ts';

interface Loaded {
  tok: Tokenizer;
  padId: number;
  special: Set<number>;
}

/** Tokenizers built, by content; the last used kept first. */
const cache = new Map<string, Promise<Loaded>>();
const CACHED = 16;

/** The tokenizer of a step, built once per content from the store. */
export function stepTokenizer(step: TextStep, store: ArtifactStore | undefined): Promise<Loaded> {
  const sha = step.sha256;
  if (!sha || !store) return Promise.reject(new FileError(`the tokenizer "${step.tokenizer}" is not stored with the version: upload it again`));
  let p = cache.get(sha);
  if (p) {
    cache.delete(sha);
    cache.set(sha, p);
    return p;
  }
  p = store.get(processingFileKey(sha)).then(
    (bytes) => {
      const tok = parseTokenizer(bytes);
      const json = JSON.parse(bytes.toString('utf8')) as { padding?: { pad_id?: unknown } | null };
      const special = new Set([...tok.get_added_tokens_decoder().entries()].filter(([, t]) => t.special).map(([id]) => id));
      return { tok, padId: defaultPadId(tok, json), special };
    },
    (e: unknown) => {
      throw new FileError(`the tokenizer "${step.tokenizer}" cannot be read: ${(e as Error).message}`);
    },
  );
  p.catch(() => cache.delete(sha));
  cache.set(sha, p);
  while (cache.size > CACHED) cache.delete(cache.keys().next().value!);
  return p;
}

/** One text's tokens, cut to the step's maxLength, not padded. */
export interface Encoded {
  ids: number[];
  mask: number[];
  types: number[];
}

export function encodeText(t: Loaded, text: string, step: TextStep): Encoded {
  const e = t.tok.encode(text, { add_special_tokens: step.addSpecialTokens, return_token_type_ids: true });
  let ids = e.ids;
  let mask = e.attention_mask;
  let types = e.token_type_ids ?? ids.map(() => 0);
  if (ids.length > step.maxLength) {
    if (!step.truncation) throw new FileError(`the text is ${ids.length} tokens, over maxLength ${step.maxLength} (truncation is off)`);
    // The trailing special tokens (at most half the room) stay at the end, as HuggingFace's truncation leaves them.
    let tail = 0;
    while (tail < ids.length && tail < step.maxLength / 2 && t.special.has(ids[ids.length - 1 - tail]!)) tail++;
    const cut = (xs: number[]) => [...xs.slice(0, step.maxLength - tail), ...xs.slice(xs.length - tail)];
    [ids, mask, types] = [cut(ids), cut(mask), cut(types)];
  }
  return { ids, mask, types };
}

/** Encoded rows as the step's tensors, padded to maxLength or the longest row. */
export function textTensors(rows: Encoded[], step: TextStep, padId: number): Record<string, RawTensor> {
  const width = step.padding === 'max_length' ? step.maxLength : Math.max(1, ...rows.map((r) => r.ids.length));
  const make = (pick: (r: Encoded) => number[], pad: number): RawTensor => {
    const n = rows.length * width;
    const data = step.dtype === 'int32' ? new Int32Array(n) : new BigInt64Array(n);
    rows.forEach((r, i) => {
      const xs = pick(r);
      for (let j = 0; j < width; j++) {
        const v = j < xs.length ? xs[j]! : pad;
        if (data instanceof Int32Array) data[i * width + j] = v;
        else data[i * width + j] = BigInt(v);
      }
    });
    return { type: step.dtype, dims: [rows.length, width], data };
  };
  const out: Record<string, RawTensor> = { [step.inputIds]: make((r) => r.ids, padId) };
  if (step.attentionMask) out[step.attentionMask] = make((r) => r.mask, 0);
  if (step.tokenTypeIds) out[step.tokenTypeIds] = make((r) => r.types, 0);
  return out;
}

/** A request's texts as the step's tensors; a text that fails is reported with its index. */
export async function textFeeds(texts: string[], step: TextStep, store: ArtifactStore | undefined): Promise<Record<string, RawTensor>> {
  const t = await stepTokenizer(step, store);
  const rows = texts.map((s, i) => {
    try {
      return encodeText(t, s, step);
    } catch (e) {
      throw new FileError(texts.length > 1 ? `text ${i}: ${(e as Error).message}` : (e as Error).message);
    }
  });
  return textTensors(rows, step, step.padId ?? t.padId);
}
