// Token attributions for text models by occlusion: for each distinct token of a row, the row is
// re-run with every occurrence of that token removed, and the token's attribution is the drop of
// the attributed class's score, f(x) - f(x without the token). Every occluded text of a request
// (plus the rows themselves and the empty text, the base) runs in a few large runs. Deterministic:
// no sampling. Unlike Shapley values, the attributions need not sum to f(x) - base (interactions
// between tokens are counted in neither or both).

/** Evaluates the model on texts; returns [texts, classes] scores. */
export type EvaluateText = (texts: string[]) => Promise<{ scores: Float32Array; classes: number }>;

/** Words: runs of letters, digits, marks, apostrophes and underscores (any script). */
const WORD = /[\p{L}\p{N}\p{M}_']+/gu;

/** The distinct tokens of a text, in order of first appearance, compared case-insensitively. */
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

export interface OcclusionRow {
  tokens: string[];
  attributions: number[];
  /** The empty text's score of the attributed class. */
  base: number;
  value: number;
  class: number;
}

/** Model evaluations an explanation of these texts costs: each row, each of its distinct tokens, and the empty text once. */
export const occlusionEvaluations = (texts: string[]) => 1 + texts.reduce((n, t) => n + 1 + textTokens(t).length, 0);

export async function occlusion(texts: string[], evaluate: EvaluateText, o: { classIndex?: number; runRows: number }): Promise<OcclusionRow[]> {
  const tokens = texts.map(textTokens);
  // Order: the empty text, the rows, then each row's occluded texts.
  const all: string[] = ['', ...texts];
  for (let r = 0; r < texts.length; r++) for (const t of tokens[r]!) all.push(withoutToken(texts[r]!, t));
  const parts: { scores: Float32Array; classes: number }[] = [];
  for (let at = 0; at < all.length; at += Math.max(1, o.runRows)) parts.push(await evaluate(all.slice(at, at + Math.max(1, o.runRows))));
  const C = parts[0]!.classes;
  const score = (i: number, c: number) => {
    const run = Math.floor(i / Math.max(1, o.runRows));
    return parts[run]!.scores[(i - run * Math.max(1, o.runRows)) * C + c]!;
  };
  if (o.classIndex !== undefined && o.classIndex >= C)
    throw new RangeError(`explainClass ${o.classIndex} is out of range: the output has ${C} column${C > 1 ? 's' : ''}`);
  let next = 1 + texts.length;
  return texts.map((_, r) => {
    let c = o.classIndex ?? 0;
    if (o.classIndex === undefined) for (let k = 1; k < C; k++) if (score(1 + r, k) > score(1 + r, c)) c = k;
    const value = score(1 + r, c);
    const attributions = tokens[r]!.map(() => value - score(next++, c));
    return { tokens: tokens[r]!, attributions, base: score(0, c), value, class: c };
  });
}
