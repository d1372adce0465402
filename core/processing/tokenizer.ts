// A version's tokenizer.json (HuggingFace format), read with @huggingface/tokenizers: checked when the
// file is uploaded (the producer) and built once per content on the workers, which encode the texts.
import { Tokenizer } from '@huggingface/tokenizers';

/** A tokenizer.json's bytes as a tokenizer; throws an Error saying why it cannot be one. */
export function parseTokenizer(bytes: Buffer): Tokenizer {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error('the tokenizer file is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('the tokenizer file is not a JSON object');
  try {
    return new Tokenizer(json, {});
  } catch (e) {
    throw new Error(`the tokenizer file is not a tokenizer.json this reader takes: ${(e as Error).message}`);
  }
}

/** The padding id a text step uses without its own padId. */
export function defaultPadId(tok: Tokenizer, json?: { padding?: { pad_id?: unknown } | null }): number {
  const declared = json?.padding?.pad_id;
  if (typeof declared === 'number' && Number.isInteger(declared) && declared >= 0) return declared;
  for (const t of ['[PAD]', '<pad>', '<|endoftext|>']) {
    const id = tok.token_to_id(t);
    if (id !== undefined) return id;
  }
  return 0;
}

export type { Tokenizer };
