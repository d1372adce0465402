// Words of a text as explanations (occlusion) and drift (word frequencies) count them: the tokens
// of core/text.ts (the platform's text models' own lowercasing and tokenization: runs of letters,
// digits and underscore of at least 2 code points), compared lower-cased as the graph sees them.
import { lowerLikeGraph, MIN_TOKEN_CHARS, TOKEN_PATTERN, textTokens } from './text.ts';

const TOKEN_RE = new RegExp(TOKEN_PATTERN, 'gu');
const long = (t: string) => t.length >= 2 * MIN_TOKEN_CHARS || [...t].length >= MIN_TOKEN_CHARS;

/** Every word of a text, lower-cased, in order (repeats kept). */
export const textWords = (text: string): string[] => textTokens(text);

/** The distinct words of a text, in order of first appearance, as first written (compared lower-cased). */
export function distinctWords(text: string): string[] {
  const seen = new Map<string, string>();
  for (const m of text.matchAll(TOKEN_RE)) {
    if (!long(m[0])) continue;
    const key = lowerLikeGraph(m[0]);
    if (!seen.has(key)) seen.set(key, m[0]);
  }
  return [...seen.values()];
}

/** The text with every occurrence of `word` (compared lower-cased, as a whole token) removed, spaces closed up. */
export function withoutToken(text: string, word: string): string {
  const key = lowerLikeGraph(word);
  return text
    .replace(TOKEN_RE, (w) => (lowerLikeGraph(w) === key ? '' : w))
    .replace(/\s{2,}/g, ' ')
    .trim();
}

/** Model evaluations an occlusion explanation of these texts costs: each row, each of its distinct words, and the empty text once. */
export const occlusionEvaluations = (texts: string[]) => 1 + texts.reduce((n, t) => n + 1 + distinctWords(t).length, 0);

/**
 * Bytes of text an occlusion explanation of these texts feeds the model: each row once, and once more
 * per distinct word (an occluded copy is at most the row's length). The cost that the evaluation count
 * misses: one 3 MB row of 3,000 distinct words is 3,001 evaluations but 9 GB of text.
 */
export const occlusionBytes = (texts: string[]) => texts.reduce((n, t) => n + (2 + distinctWords(t).length) * Buffer.byteLength(t, 'utf8'), 0);
