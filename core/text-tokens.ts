// Words of a text as explanations (occlusion) and drift (token frequencies) count them: runs of
// letters, digits, marks, apostrophes and underscores in any script, compared case-insensitively.

const WORD = /[\p{L}\p{N}\p{M}_']+/gu;

/** Every word of a text, lower-cased, in order (repeats kept). */
export function textWords(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(WORD)) out.push(m[0].toLowerCase());
  return out;
}

/** The distinct words of a text, in order of first appearance, as first written (compared case-insensitively). */
export function textTokens(text: string): string[] {
  const seen = new Map<string, string>();
  for (const m of text.matchAll(WORD)) {
    const key = m[0].toLowerCase();
    if (!seen.has(key)) seen.set(key, m[0]);
  }
  return [...seen.values()];
}

/** The text with every occurrence of `token` (case-insensitively, as a whole word) removed, spaces closed up. */
export function withoutToken(text: string, token: string): string {
  const key = token.toLowerCase();
  return text
    .replace(WORD, (w) => (w.toLowerCase() === key ? '' : w))
    .replace(/\s{2,}/g, ' ')
    .trim();
}

/** Model evaluations an occlusion explanation of these texts costs: each row, each of its distinct words, and the empty text once. */
export const occlusionEvaluations = (texts: string[]) => 1 + texts.reduce((n, t) => n + 1 + textTokens(t).length, 0);
