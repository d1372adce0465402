// Words of a text as explanations (occlusion) take them out: the tokens of core/text.ts (the
// platform's text models' own lowercasing and tokenization, `textTokens`, which drift counts too),
// kept as first written and compared lower-cased as the graph sees them.
import { isToken, lowerLikeGraph, TOKEN_PATTERN } from './text.ts';

const TOKEN_RE = new RegExp(TOKEN_PATTERN, 'gu');

/** The distinct words of a text, in order of first appearance, as first written (compared lower-cased). */
export function distinctWords(text: string): string[] {
  const seen = new Map<string, string>();
  for (const m of text.matchAll(TOKEN_RE)) {
    if (!isToken(m[0])) continue;
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
